//! How long a watch waits after an error before it tries again.

use std::time::Duration;

use kube::runtime::utils::Backoff;
use kube::runtime::watcher;

use super::backoff::api_backoff;

/// The pause before a watch's next attempt: the exponential [`api_backoff`], except that the
/// first `410 Expired` since the last success relists at once.
///
/// A restarted API server refuses the resource version a watch held before the outage, so
/// the first successful reconnect answers `410 Expired`. Waiting a full backoff step before
/// the relist that this calls for only delays the node (seconds, after an outage that already
/// cost many). Only one `410` in a row is free: a server that keeps answering it gets the
/// usual backoff.
pub struct WatchRetry<B = watcher::ExponentialBackoff> {
    backoff: B,
    expired_relist_used: bool,
}

impl WatchRetry {
    /// The policy seccompd's watches use.
    pub fn new() -> Self {
        Self::with_backoff(api_backoff())
    }
}

impl Default for WatchRetry {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backoff> WatchRetry<B> {
    /// The policy around a given backoff.
    pub fn with_backoff(backoff: B) -> Self {
        Self {
            backoff,
            expired_relist_used: false,
        }
    }

    /// The watch delivered an event: the next error starts from the shortest pause again.
    pub fn succeeded(&mut self) {
        self.backoff.reset();
        self.expired_relist_used = false;
    }

    /// Takes each event of a watch before the next is polled: a success resets the policy;
    /// an error waits out its pause here, since the watcher makes its next request only when
    /// polled again.
    pub async fn settle<T>(&mut self, event: &Result<T, watcher::Error>) {
        match event {
            Ok(_) => self.succeeded(),
            Err(err) => tokio::time::sleep(self.pause_after(err)).await,
        }
    }

    /// The pause before the next attempt after `err`.
    pub fn pause_after(&mut self, err: &watcher::Error) -> Duration {
        let expired = matches!(err, watcher::Error::WatchError(status) if status.code == 410);
        if expired && !self.expired_relist_used {
            self.expired_relist_used = true;
            return Duration::ZERO;
        }
        // The backoff is endless (`without_max_times`); should one end, keep its last cap.
        self.backoff.next().unwrap_or(super::MAX_API_BACKOFF)
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    /// A backoff that counts its pauses in whole seconds: 1, 2, 3, ...
    struct Counting(u64);

    impl Iterator for Counting {
        type Item = Duration;
        fn next(&mut self) -> Option<Duration> {
            self.0 += 1;
            Some(Duration::from_secs(self.0))
        }
    }

    impl Backoff for Counting {
        fn reset(&mut self) {
            self.0 = 0;
        }
    }

    fn expired() -> watcher::Error {
        watcher::Error::WatchError(
            Status::failure("too old resource version", "Expired")
                .with_code(410)
                .boxed(),
        )
    }

    fn other() -> watcher::Error {
        watcher::Error::NoResourceVersion
    }

    #[test]
    fn other_errors_back_off_further_each_time() {
        let mut retry = WatchRetry::with_backoff(Counting(0));
        let pauses: Vec<u64> = (0..3)
            .map(|_| retry.pause_after(&other()).as_secs())
            .collect();
        assert_eq!(pauses, [1, 2, 3]);
    }

    #[test]
    fn the_first_expired_after_errors_relists_at_once_without_resetting_the_backoff() {
        let mut retry = WatchRetry::with_backoff(Counting(0));
        retry.pause_after(&other());
        retry.pause_after(&other());
        assert_eq!(retry.pause_after(&expired()), Duration::ZERO);
        // Still failing after the relist: the backoff goes on where it was.
        assert_eq!(retry.pause_after(&other()), Duration::from_secs(3));
    }

    #[test]
    fn expired_again_before_any_success_backs_off() {
        let mut retry = WatchRetry::with_backoff(Counting(0));
        assert_eq!(retry.pause_after(&expired()), Duration::ZERO);
        assert_eq!(retry.pause_after(&expired()), Duration::from_secs(1));
        assert_eq!(retry.pause_after(&expired()), Duration::from_secs(2));
    }

    #[test]
    fn success_resets_both_the_backoff_and_the_free_relist() {
        let mut retry = WatchRetry::with_backoff(Counting(0));
        retry.pause_after(&expired());
        retry.pause_after(&other());
        retry.pause_after(&other());
        retry.succeeded();
        assert_eq!(retry.pause_after(&expired()), Duration::ZERO);
        assert_eq!(retry.pause_after(&other()), Duration::from_secs(1));
    }
}
