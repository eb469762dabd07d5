//! The status writer's budget of API writes: a token bucket, so that a burst of report
//! changes on a large cluster becomes a steady trickle of status writes instead of a storm.

use std::time::{Duration, Instant};

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
