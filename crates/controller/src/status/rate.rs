//! The status writer's pacer, so that a profile on its way to many nodes is not rewritten for
//! every node that confirms it (each status write reaches every agent's watch). How fast the
//! writes that remain go out is the API server's to decide (`super::writer`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use seccompd_api::{Phase, SeccompProfileStatus};

/// How often at most the status of a profile still on its way to every node (Pending or
/// Partial, same generation) is rewritten only to move its count.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// When each profile's status was last written (or the profile first seen).
#[derive(Clone, Debug, Default)]
pub struct ProgressPacer {
    since: BTreeMap<String, Instant>,
}

impl ProgressPacer {
    /// `None` to write `next` now; `Some(due)` when it only tells of a profile on its way
    /// (Pending or Partial: its first status, or progress within the same generation) and
    /// can wait until `due`, [`PROGRESS_INTERVAL`] after the last write or after the profile
    /// was first seen here: a new profile usually goes straight to `Installed` within it.
    /// Every other change (a new generation, Installed, Invalid, Error) is written at once.
    pub fn hold(
        &mut self,
        name: &str,
        previous: Option<&SeccompProfileStatus>,
        next: &SeccompProfileStatus,
        now: Instant,
    ) -> Option<Instant> {
        let on_the_way =
            |s: &SeccompProfileStatus| matches!(s.phase, Some(Phase::Pending | Phase::Partial));
        let only_progress = on_the_way(next)
            && previous.is_none_or(|previous| {
                on_the_way(previous) && previous.observed_generation == next.observed_generation
            });
        let due = *self.since.entry(name.to_string()).or_insert(now) + PROGRESS_INTERVAL;
        (only_progress && due > now).then_some(due)
    }

    /// Notes that `name`'s status was written at `now`.
    pub fn written(&mut self, name: &str, now: Instant) {
        self.since.insert(name.to_string(), now);
    }

    /// Forgets the profiles for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.since.retain(|name, _| keep(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: Phase, generation: i64) -> SeccompProfileStatus {
        SeccompProfileStatus {
            phase: Some(phase),
            observed_generation: Some(generation),
            ..Default::default()
        }
    }

    #[test]
    fn progress_alone_waits_for_its_interval_and_news_does_not() {
        let t0 = Instant::now();
        let mut pacer = ProgressPacer::default();
        let partial = status(Phase::Partial, 2);
        let pending = status(Phase::Pending, 2);
        let soon = t0 + Duration::from_millis(300);
        assert_eq!(
            pacer.hold("new", None, &pending, t0),
            Some(t0 + PROGRESS_INTERVAL),
            "a new profile's Pending waits a moment"
        );
        assert_eq!(
            pacer.hold("new", None, &status(Phase::Installed, 1), soon),
            None,
            "its Installed does not"
        );
        assert_eq!(
            pacer.hold("new", None, &pending, t0 + PROGRESS_INTERVAL),
            None
        );
        pacer.written("p", t0);
        assert_eq!(
            pacer.hold("p", Some(&pending), &partial, soon),
            Some(t0 + PROGRESS_INTERVAL)
        );
        assert_eq!(
            pacer.hold("p", Some(&pending), &partial, t0 + PROGRESS_INTERVAL),
            None
        );
        for news in [
            status(Phase::Installed, 2),
            status(Phase::Error, 2),
            status(Phase::Invalid, 2),
            status(Phase::Partial, 3),
        ] {
            assert_eq!(
                pacer.hold("p", Some(&partial), &news, soon),
                None,
                "{news:?}"
            );
        }
        pacer.retain(|name| name != "p");
        assert_eq!(
            pacer.hold("p", Some(&pending), &partial, soon),
            Some(soon + PROGRESS_INTERVAL),
            "forgotten: first seen now"
        );
    }
}
