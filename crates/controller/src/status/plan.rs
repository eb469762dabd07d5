//! The status writer's schedule, apart from I/O: from a consistent view of the writer's caches
//! and the clock, which statuses to write now and when to look again. A pass revisits the
//! profiles the [`Tracker`] says may have changed, together with the ones left for this pass
//! (progress held back, failed writes whose retry is due), each once; it holds back
//! progress-only changes ([`ProgressPacer`]), for longer while other profiles have news to
//! write. Every other write due is in the [`Plan`]: the elected writer (`super::writer`) sends
//! them, as fast as the API server's flow control lets it, and tells the planner how each went.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::rate::ProgressPacer;
use super::summary::summarize;
use super::tracker::{Revisit, Snapshot, Tracker};
use seccompd_api::SeccompProfileStatus;

/// How long the writer waits, when nothing is due, before it looks again anyway.
pub const RESYNC: Duration = Duration::from_secs(300);

/// The pauses before each new attempt of a status write that keeps failing, one per failure.
pub type RetryDelays = Box<dyn Iterator<Item = Duration> + Send>;

/// Per name whose last write failed, the pauses before its next attempts: the API's backoff,
/// then the resync's period once they run out (an end to the pauses does not end the retries).
pub struct RetryPauses {
    by_name: BTreeMap<String, RetryDelays>,
    new_retry: fn() -> RetryDelays,
}

impl RetryPauses {
    /// Pauses as `new_retry` gives them, afresh for each name.
    pub fn new(new_retry: fn() -> RetryDelays) -> Self {
        Self {
            by_name: BTreeMap::new(),
            new_retry,
        }
    }

    /// When `name` is due again after a write that failed at `at`.
    pub fn after_failure(&mut self, name: &str, at: Instant) -> Instant {
        let pauses = self
            .by_name
            .entry(name.to_string())
            .or_insert_with(self.new_retry);
        at + pauses.next().unwrap_or(RESYNC)
    }

    /// `name` was written (or is gone): its next failure starts the pauses afresh.
    pub fn forget(&mut self, name: &str) {
        self.by_name.remove(name);
    }

    /// Keeps the names `keep` holds for.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.by_name.retain(|name, _| keep(name));
    }
}

/// One status write: `status` applied to profile `name`'s status subresource. It carries no
/// precondition: the one elected writer owns every status and applies it with force, and a
/// resourceVersion would make it conflict with its own writes its cache has not seen yet.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusWrite {
    /// The profile.
    pub name: String,
    /// Its whole status.
    pub status: SeccompProfileStatus,
}

/// What a pass writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The writes due now, at most one per profile, by profile name.
    pub writes: Vec<StatusWrite>,
}

/// Why a profile is looked at again without a change of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    /// Progress held back until then.
    Held(Instant),
    /// Its last write failed; tried again then.
    Retry(Instant),
}

/// What the writer remembers between passes: the tracker, the progress held back, the
/// profiles due again and the retries of failed writes.
pub struct Planner {
    tracker: Tracker,
    progress: ProgressPacer,
    /// Per profile, at most one reason to look at it again.
    due: BTreeMap<String, Due>,
    /// Per profile whose last write failed: the pauses before its next attempts.
    retries: RetryPauses,
}

impl Planner {
    /// A planner that retries a failed write after the pauses `new_retry` gives.
    pub fn new(new_retry: fn() -> RetryDelays) -> Self {
        Self {
            tracker: Tracker::default(),
            progress: ProgressPacer::default(),
            due: BTreeMap::new(),
            retries: RetryPauses::new(new_retry),
        }
    }

    /// The writes due at `now` from `snap`; `stamp` is the wall-clock time a changed Ready
    /// condition carries.
    pub fn plan(&mut self, snap: &Snapshot, now: Instant, stamp: &Time) -> Plan {
        let mut names = match self.tracker.update(snap) {
            Revisit::All => snap.profiles.keys().cloned().collect(),
            Revisit::Some(names) => names,
        };
        let exists = |name: &str| snap.profiles.contains_key(name);
        self.due.retain(|name, _| exists(name));
        self.retries.retain(exists);
        self.progress.retain(exists);
        names.extend(
            self.due
                .iter()
                .filter(|(_, Due::Held(at) | Due::Retry(at))| *at <= now)
                .map(|(name, _)| name.clone()),
        );
        let mut plan = Plan::default();
        let mut progress = Vec::new();
        for name in names {
            let Some(profile) = snap.profiles.get(&name) else {
                continue;
            };
            self.due.remove(&name);
            let previous = profile.status.as_ref();
            let status = summarize(&self.tracker.facts(snap, profile), previous, stamp);
            // status.denials is the denial writer's (another field manager): not compared.
            let unchanged = previous.is_some_and(|p| match p.denials {
                None => *p == status,
                Some(_) => {
                    let without = SeccompProfileStatus {
                        denials: None,
                        ..p.clone()
                    };
                    without == status
                }
            });
            if unchanged {
                self.retries.forget(&name);
                continue;
            }
            if let Some(at) = self.progress.hold(&name, previous, &status, now) {
                self.due.insert(name, Due::Held(at));
                continue;
            }
            let write = StatusWrite { name, status };
            if ProgressPacer::only_progress(previous, &write.status) {
                progress.push(write);
            } else {
                plan.writes.push(write);
            }
        }
        // Progress yields to news (ProgressPacer::yield_to_news), for a while.
        let news = !plan.writes.is_empty();
        for write in progress {
            let wait = if news {
                self.progress.yield_to_news(&write.name, now)
            } else {
                None
            };
            match wait {
                Some(at) => {
                    self.due.insert(write.name, Due::Held(at));
                }
                None => plan.writes.push(write),
            }
        }
        plan
    }

    /// Profile `name`'s planned write was made at `at`.
    pub fn written(&mut self, name: &str, at: Instant) {
        self.progress.written(name, at);
        self.retries.forget(name);
    }

    /// Profile `name`'s planned write failed at `at`: it is tried again after the next pause
    /// of its retries (or sooner, if the profile changes meanwhile).
    pub fn failed(&mut self, name: &str, at: Instant) {
        let due = self.retries.after_failure(name, at);
        self.due.insert(name.to_string(), Due::Retry(due));
    }

    /// When the next pass is due, if nothing changes before: the earliest held write or
    /// retry, or the resync after `now`.
    pub fn wake_at(&self, now: Instant) -> Instant {
        self.due
            .values()
            .map(|(Due::Held(at) | Due::Retry(at))| *at)
            .min()
            .unwrap_or(now + RESYNC)
    }

    /// Whether every change taken in so far has been carried out: nothing is held back or
    /// failed.
    pub fn settled(&self) -> bool {
        self.due.is_empty()
    }
}

#[cfg(test)]
mod tests;
