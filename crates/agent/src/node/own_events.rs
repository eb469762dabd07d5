//! Which of the directory's change events the agent caused itself, so that its own writes do
//! not wake it for a second pass (one change costs one pass).
//!
//! The agent changes the directory in two ways only: it writes a file under a fresh temporary
//! name and renames it into place ([`super::dir::ProfileDir::commit`]), and it removes names
//! ([`super::dir::ProfileDir::remove`]). The kernel reports the first as events on the
//! temporary name, then a rename whose cookie ties the temporary name to the final one; the
//! second as a removal, which the directory announces in [`OwnRemovals`] just before it
//! unlinks. Anything else (a file edited, deleted or created by someone else, an overflow of
//! the kernel's queue) still wakes the agent.
//!
//! Temporary names are the agent's own pattern ([`super::dir::is_temp_name`]); whoever can
//! write into the directory is root on the node and could hide a change by imitating them, but
//! drift repair is for accidents, and the periodic resync still catches such a change.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use notify::event::{EventKind, ModifyKind, RenameMode};

use super::dir::is_temp_name;

/// How long an announced removal waits for its event. The kernel reports it at once; the
/// bound keeps a removal whose event was lost (a queue overflow, which wakes the agent
/// anyway) from hiding a later one at the same name.
const REMOVAL_EVENT_WAIT: Duration = Duration::from_secs(5);

/// Most renames from a temporary name whose other half has not been seen yet (the halves
/// come in one read of the kernel's queue; the bound keeps lost ones from piling up).
const MAX_PENDING_RENAMES: usize = 64;

/// The removals the agent is about to make, shared by the directory (which announces them)
/// and the event filter (which consumes them).
#[derive(Clone, Debug, Default)]
pub struct OwnRemovals(Arc<Mutex<HashMap<OsString, Instant>>>);

impl OwnRemovals {
    /// The agent is about to remove `name`.
    pub fn announce(&self, name: &OsStr) {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pending.insert(name.to_os_string(), Instant::now());
    }

    /// The removal of `name` did not happen (it failed or there was nothing to remove), so
    /// no event is coming for it.
    pub fn withdraw(&self, name: &OsStr) {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pending.remove(name);
    }

    /// Whether the removal of `name` was announced in the last [`REMOVAL_EVENT_WAIT`];
    /// consumes the announcement.
    fn take(&self, name: &OsStr, now: Instant) -> bool {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pending.retain(|_, at| now.duration_since(*at) < REMOVAL_EVENT_WAIT);
        pending.remove(name).is_some()
    }
}

/// Tells the agent's own events from the others, event by event, in the order the kernel
/// reported them.
#[derive(Debug, Default)]
pub struct OwnEvents {
    removals: OwnRemovals,
    /// Cookies of renames away from a temporary name whose arrival half is still to come.
    renames_from_temp: HashSet<usize>,
}

impl OwnEvents {
    /// A filter that consumes the removals announced in `removals`.
    pub fn new(removals: OwnRemovals) -> Self {
        Self {
            removals,
            renames_from_temp: HashSet::new(),
        }
    }

    /// Whether `event` is the agent's own doing (and so needs no pass). Reads of the
    /// directory count as its own too: they change nothing.
    pub fn is_own(&mut self, event: &notify::Event, now: Instant) -> bool {
        if event.kind.is_access() {
            return true;
        }
        let names: Vec<&OsStr> = event.paths.iter().filter_map(|p| file_name(p)).collect();
        if names.len() != event.paths.len() || names.is_empty() {
            return false;
        }
        match event.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                let from_temp = names.iter().all(|n| is_temp_name(n));
                if from_temp && let Some(cookie) = event.tracker() {
                    if self.renames_from_temp.len() >= MAX_PENDING_RENAMES {
                        self.renames_from_temp.clear();
                    }
                    self.renames_from_temp.insert(cookie);
                }
                from_temp
            }
            // The arrival half of a rename away from a temporary name: the file the agent
            // wrote, put in place.
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => event
                .tracker()
                .is_some_and(|cookie| self.renames_from_temp.contains(&cookie)),
            // Both halves again, as one event: from a temporary name, it is done.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let Some(cookie) = event.tracker() {
                    self.renames_from_temp.remove(&cookie);
                }
                names.first().is_some_and(|n| is_temp_name(n))
            }
            EventKind::Remove(_) if names.iter().all(|n| is_temp_name(n)) => true,
            EventKind::Remove(_) => names.iter().all(|n| self.removals.take(n, now)),
            // Created, written, closed or changed in its attributes: the agent's own only
            // under a temporary name.
            _ => names.iter().all(|n| is_temp_name(n)),
        }
    }
}

fn file_name(path: &Path) -> Option<&OsStr> {
    path.file_name()
}

#[cfg(test)]
mod tests {
    use notify::Event;
    use notify::event::{AccessKind, CreateKind, DataChange, RemoveKind};

    use super::*;

    const TEMP: &str = ".seccompd-tmp-abcdefghijklmnopqrstuvwxy";

    fn event(kind: EventKind, names: &[&str]) -> Event {
        names
            .iter()
            .fold(Event::new(kind), |e, n| e.add_path(Path::new("/d").join(n)))
    }

    fn renamed(mode: RenameMode, names: &[&str], cookie: usize) -> Event {
        event(EventKind::Modify(ModifyKind::Name(mode)), names).set_tracker(cookie)
    }

    /// The events of one atomic write of `final_name` by the agent, in the kernel's order.
    fn own_write(final_name: &str, cookie: usize) -> Vec<Event> {
        vec![
            event(EventKind::Create(CreateKind::File), &[TEMP]),
            event(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &[TEMP],
            ),
            renamed(RenameMode::From, &[TEMP], cookie),
            renamed(RenameMode::To, &[final_name], cookie),
            renamed(RenameMode::Both, &[TEMP, final_name], cookie),
        ]
    }

    #[test]
    fn the_temp_name_must_look_like_the_agents_own() {
        assert!(
            is_temp_name(OsStr::new(TEMP)),
            "fix TEMP to the dir's pattern"
        );
    }

    #[test]
    fn an_atomic_write_by_the_agent_is_its_own_from_first_event_to_last() {
        let mut own = OwnEvents::default();
        let now = Instant::now();
        for e in own_write("web.json", 7) {
            assert!(own.is_own(&e, now), "{e:?}");
        }
        assert!(own.renames_from_temp.is_empty());
    }

    #[test]
    fn someone_elses_change_to_a_profile_file_wakes_the_agent() {
        let mut own = OwnEvents::default();
        let now = Instant::now();
        for e in [
            event(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                &["web.json"],
            ),
            event(EventKind::Remove(RemoveKind::File), &["web.json"]),
            event(EventKind::Create(CreateKind::File), &["web.json"]),
            // A rename onto a profile's name from a name that is not the agent's temp.
            renamed(RenameMode::From, &["other"], 9),
            renamed(RenameMode::To, &["web.json"], 9),
            renamed(RenameMode::Both, &["other", "web.json"], 9),
            // An error or overflow names no path.
            Event::new(EventKind::Other),
        ] {
            assert!(!own.is_own(&e, now), "{e:?}");
        }
    }

    #[test]
    fn an_announced_removal_is_the_agents_own_once_and_only_while_fresh() {
        let removals = OwnRemovals::default();
        let mut own = OwnEvents::new(removals.clone());
        let now = Instant::now();
        let removed = event(EventKind::Remove(RemoveKind::File), &["old.json"]);
        removals.announce(OsStr::new("old.json"));
        assert!(own.is_own(&removed, now));
        assert!(!own.is_own(&removed, now), "consumed by the first event");
        removals.announce(OsStr::new("old.json"));
        let later = Instant::now() + REMOVAL_EVENT_WAIT;
        assert!(!own.is_own(&removed, later), "stale");
        removals.announce(OsStr::new("old.json"));
        removals.withdraw(OsStr::new("old.json"));
        assert!(!own.is_own(&removed, now), "withdrawn");
    }

    #[test]
    fn reads_are_never_a_reason_to_look_again() {
        let mut own = OwnEvents::default();
        let read = event(EventKind::Access(AccessKind::Any), &["web.json"]);
        assert!(own.is_own(&read, Instant::now()));
    }
}
