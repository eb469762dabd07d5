//! The status writer's pace of API writes: a token bucket, so that a burst of report changes
//! on a large cluster becomes a steady trickle of status writes instead of a storm, and a
//! pacer, so that a profile on its way to many nodes is not rewritten for every node that
//! confirms it (each status write reaches every agent's watch).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::api::{Phase, SeccompProfileStatus};

/// How often at most the status of a profile still on its way to every node (Pending or
/// Partial, same generation) is rewritten only to move its count.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// When each profile's status was last written.
#[derive(Clone, Debug, Default)]
pub struct ProgressPacer {
    written: BTreeMap<String, Instant>,
}

impl ProgressPacer {
    /// `None` to write `next` now; `Some(due)` when it only moves the progress of a profile on
    /// its way (see [`PROGRESS_INTERVAL`]) and can wait until `due`. Every other change (a
    /// new generation, Installed, Invalid, Error, the first status) is written at once.
    pub fn hold(
        &self,
        name: &str,
        previous: Option<&SeccompProfileStatus>,
        next: &SeccompProfileStatus,
        now: Instant,
    ) -> Option<Instant> {
        let on_the_way =
            |s: &SeccompProfileStatus| matches!(s.phase, Some(Phase::Pending | Phase::Partial));
        let previous = previous?;
        let only_progress = on_the_way(previous)
            && on_the_way(next)
            && previous.observed_generation == next.observed_generation;
        let due = *self.written.get(name)? + PROGRESS_INTERVAL;
        (only_progress && due > now).then_some(due)
    }

    /// Notes that `name`'s status was written at `now`.
    pub fn written(&mut self, name: &str, now: Instant) {
        self.written.insert(name.to_string(), now);
    }

    /// Forgets the profiles for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.written.retain(|name, _| keep(name));
    }
}

/// A token bucket holding at most `per_second` tokens, refilled at `per_second` a second.
#[derive(Clone, Debug)]
pub struct WriteBudget {
    per_second: f64,
    /// May go negative: writes already promised to callers that wait for their turn.
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

    /// Takes one write at `now`: `None` to write at once, or how long to wait first (the
    /// write is counted already, so waiting callers queue up in order).
    pub fn take(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = self.refilled.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second) - 1.0;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.per_second))
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
        assert_eq!(
            pacer.hold("p", None, &partial, t0),
            None,
            "the first status"
        );
        pacer.written("p", t0);
        let pending = status(Phase::Pending, 2);
        let soon = t0 + Duration::from_millis(300);
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
        assert_eq!(
            pacer.hold("q", Some(&pending), &partial, soon),
            None,
            "another profile"
        );
        pacer.retain(|name| name != "p");
        assert_eq!(
            pacer.hold("p", Some(&pending), &partial, soon),
            None,
            "forgotten"
        );
    }

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_spaces_writes() {
        let start = Instant::now();
        let mut budget = WriteBudget::new(4, start);
        for _ in 0..4 {
            assert_eq!(budget.take(start), None);
        }
        assert_eq!(budget.take(start), Some(Duration::from_millis(250)));
        assert_eq!(budget.take(start), Some(Duration::from_millis(500)));
    }

    #[test]
    fn tokens_come_back_with_time_up_to_the_bucket_size() {
        let start = Instant::now();
        let mut budget = WriteBudget::new(2, start);
        assert_eq!(budget.take(start), None);
        assert_eq!(budget.take(start), None);
        assert!(budget.take(start).is_some());
        // After a long pause the bucket is full again, not fuller.
        let later = start + Duration::from_secs(60);
        assert_eq!(budget.take(later), None);
        assert_eq!(budget.take(later), None);
        assert!(budget.take(later).is_some());
    }

    #[test]
    fn a_waiting_write_is_due_when_its_token_has_grown_back() {
        let start = Instant::now();
        let mut budget = WriteBudget::new(1, start);
        assert_eq!(budget.take(start), None);
        let wait = budget.take(start).unwrap();
        assert_eq!(wait, Duration::from_secs(1));
        assert_eq!(budget.take(start + wait), Some(Duration::from_secs(1)));
    }
}
