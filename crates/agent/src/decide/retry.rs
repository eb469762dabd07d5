//! Backoff per failing item: a profile file that cannot be written, an entry that cannot be
//! removed, a check that could not finish. A failing item is tried again after a pause that
//! doubles with each failure, while every other item goes on as usual; so one item never
//! makes the agent spin, and never holds up the rest. Pure: the caller passes the time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Pause after the first failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Longest pause between two attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// The failing items, each with what was attempted, why it failed and when to try again.
#[derive(Debug)]
pub struct RetryBook<K> {
    failing: BTreeMap<K, Failing>,
}

impl<K> Default for RetryBook<K> {
    fn default() -> Self {
        Self {
            failing: BTreeMap::new(),
        }
    }
}

#[derive(Debug)]
struct Failing {
    /// What was attempted (for example the content hash): an attempt at something else is not
    /// held back by this failure.
    attempt: String,
    failures: u32,
    not_before: Instant,
    reason: String,
}

impl<K: Ord + Clone> RetryBook<K> {
    /// Why `key`'s `attempt` must wait, while it must; `None` when it may be tried now.
    pub fn deferred(&self, key: &K, attempt: &str, now: Instant) -> Option<&str> {
        self.failing
            .get(key)
            .filter(|f| f.attempt == attempt && now < f.not_before)
            .map(|f| f.reason.as_str())
    }

    /// Records that `attempt` of `key` failed at `now`; the next try waits twice as long as
    /// the last (from [`FIRST_RETRY`] up to [`MAX_RETRY`]).
    pub fn failed(&mut self, key: &K, attempt: &str, reason: String, now: Instant) {
        let failures = match self.failing.get(key) {
            Some(f) if f.attempt == attempt => f.failures.saturating_add(1),
            _ => 1,
        };
        let pause = FIRST_RETRY
            .saturating_mul(1u32 << (failures - 1).min(16))
            .min(MAX_RETRY);
        self.failing.insert(
            key.clone(),
            Failing {
                attempt: attempt.to_string(),
                failures,
                not_before: now + pause,
                reason,
            },
        );
    }

    /// Records that `key` succeeded: its next failure starts from the shortest pause again.
    pub fn succeeded(&mut self, key: &K) {
        self.failing.remove(key);
    }

    /// Forgets items `keep` says are gone.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.failing.retain(|k, _| keep(k));
    }

    /// When the earliest waiting item may be tried again.
    pub fn next_due(&self) -> Option<Instant> {
        self.failing.values().map(|f| f.not_before).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_item_waits_twice_as_long_each_time_up_to_the_cap() {
        let t0 = Instant::now();
        let mut book = RetryBook::default();
        let key = "p".to_string();
        book.failed(&key, "h1", "ENAMETOOLONG".into(), t0);
        assert_eq!(book.deferred(&key, "h1", t0), Some("ENAMETOOLONG"));
        assert_eq!(book.next_due(), Some(t0 + FIRST_RETRY));
        assert_eq!(book.deferred(&key, "h1", t0 + FIRST_RETRY), None);

        let mut now = t0 + FIRST_RETRY;
        let mut pauses = Vec::new();
        for _ in 0..9 {
            book.failed(&key, "h1", "again".into(), now);
            let due = book.next_due().unwrap();
            pauses.push((due - now).as_secs());
            now = due;
        }
        assert_eq!(pauses, [2, 4, 8, 16, 32, 60, 60, 60, 60]);
    }

    #[test]
    fn another_attempt_is_not_held_back_and_success_resets() {
        let t0 = Instant::now();
        let mut book = RetryBook::default();
        let key = "p".to_string();
        book.failed(&key, "h1", "no".into(), t0);
        book.failed(&key, "h1", "no".into(), t0);
        assert_eq!(
            book.deferred(&key, "h2", t0),
            None,
            "a changed profile goes at once"
        );
        book.failed(&key, "h2", "no".into(), t0);
        assert_eq!(book.next_due(), Some(t0 + FIRST_RETRY), "counted afresh");
        book.succeeded(&key);
        assert_eq!(book.next_due(), None);
        assert_eq!(book.deferred(&key, "h2", t0), None);
    }

    #[test]
    fn forgotten_items_no_longer_wait() {
        let t0 = Instant::now();
        let mut book = RetryBook::default();
        book.failed(&"a".to_string(), "x", "no".into(), t0);
        book.failed(&"b".to_string(), "x", "no".into(), t0);
        book.retain(|k| k == "b");
        assert_eq!(book.deferred(&"a".to_string(), "x", t0), None);
        assert!(book.deferred(&"b".to_string(), "x", t0).is_some());
    }
}
