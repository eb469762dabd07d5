//! The status writer's pace of API writes: a token bucket, so that a burst of report changes
//! on a large cluster becomes a steady trickle of status writes instead of a storm, and a
//! pacer, so that a profile on its way to many nodes is not rewritten for every node that
//! confirms it (each status write reaches every agent's watch).

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

/// A token bucket holding at most `per_second` tokens, refilled at `per_second` a second.
#[derive(Clone, Debug)]
pub struct WriteBudget {
    per_second: f64,
    tokens: f64,
    refilled: Instant,
}

impl WriteBudget {
    /// A full bucket at `now`. `per_second` is at least 1.
    pub fn new(per_second: u32, now: Instant) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            tokens: per_second,
            refilled: now,
        }
    }

    /// Takes one write at `now` if the bucket holds a token: `Ok`, or `Err` with how long
    /// until it will (nothing is taken then: the caller decides later what to write, with
    /// fresher facts).
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = self.refilled.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
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

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_spaces_writes() {
        let start = Instant::now();
        let mut budget = WriteBudget::new(4, start);
        for _ in 0..4 {
            assert_eq!(budget.take(start), Ok(()));
        }
        assert_eq!(budget.take(start), Err(Duration::from_millis(250)));
        assert_eq!(
            budget.take(start),
            Err(Duration::from_millis(250)),
            "a refusal takes nothing"
        );
        let later = start + Duration::from_millis(250);
        assert_eq!(budget.take(later), Ok(()));
        assert_eq!(budget.take(later), Err(Duration::from_millis(250)));
    }

    #[test]
    fn tokens_come_back_with_time_up_to_the_bucket_size() {
        let start = Instant::now();
        let mut budget = WriteBudget::new(2, start);
        assert_eq!(budget.take(start), Ok(()));
        assert_eq!(budget.take(start), Ok(()));
        assert!(budget.take(start).is_err());
        // After a long pause the bucket is full again, not fuller.
        let later = start + Duration::from_secs(60);
        assert_eq!(budget.take(later), Ok(()));
        assert_eq!(budget.take(later), Ok(()));
        assert!(budget.take(later).is_err());
    }
}
