//! How seccompd retries the API server: watches and calls alike.

use std::time::Duration;

use backon::ExponentialBuilder;
use kube::runtime::watcher::ExponentialBackoff;

/// Shortest pause between attempts, before jitter.
const MIN_API_BACKOFF: Duration = Duration::from_millis(500);

/// Longest pause between attempts, before jitter (which adds up to as much again).
pub const MAX_API_BACKOFF: Duration = Duration::from_secs(4);

/// The pauses between attempts at an API call: exponential from half a second, capped at
/// [`MAX_API_BACKOFF`] plus a jitter of up to as much again, without end (a caller that gives
/// up bounds it with `with_total_delay`). Retry a call with `backon::Retryable`, only while
/// [`is_transient`] says the failure may pass.
///
/// kube's default for watches (client-go's) caps at 30 s. After an API server restart the
/// first reconnect then often meets `410 Expired` (the new server's watch cache starts later)
/// and pays a second pause, so a node (and the statuses) lagged a minute behind the API.
/// seccompd's watches are small (profiles, one node's pods, node reports, node metadata), so
/// reconnecting sooner is cheap.
pub fn api_retry() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(MIN_API_BACKOFF)
        .with_max_delay(MAX_API_BACKOFF)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
}

/// [`api_retry`]'s pauses for seccompd's watches, which reset them on their first success.
pub fn api_backoff() -> ExponentialBackoff {
    api_retry().into()
}

/// Whether a call that failed with `err` may succeed when made again as it was: the API server
/// did not answer (no connection, TLS, a broken stream), answered that it cannot serve it now
/// (408, 429, 5xx), or refused the credentials (401: the client reads a rotated token again).
/// Any other answer (400 bad request, 403 forbidden, 404 not found, 409 conflict, 422 invalid)
/// refuses the request itself, and the same request would be refused again.
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => matches!(status.code, 401 | 408 | 429 | 500..),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use backon::BackoffBuilder as _;
    use kube::core::Status;

    use super::*;

    #[test]
    fn backoff_grows_from_half_a_second_and_stays_capped() {
        let delays: Vec<Duration> = api_backoff().take(12).collect();
        assert!(delays[0] >= MIN_API_BACKOFF, "{delays:?}");
        assert!(delays[0] < Duration::from_secs(2), "{delays:?}");
        assert!(delays[3] > delays[0], "{delays:?}");
        // The jitter adds at most the delay itself.
        assert!(
            delays.iter().all(|d| *d <= MAX_API_BACKOFF * 2),
            "{delays:?}"
        );
        assert!(delays[11] >= MAX_API_BACKOFF, "{delays:?}");
    }

    #[test]
    fn calls_retry_with_the_pauses_of_the_watches_and_without_end() {
        let delays: Vec<Duration> = api_retry().build().take(100).collect();
        assert_eq!(delays.len(), 100, "endless");
        assert!(delays[0] >= MIN_API_BACKOFF, "{delays:?}");
        assert!(
            delays.iter().all(|d| *d <= MAX_API_BACKOFF * 2),
            "{delays:?}"
        );
    }

    fn answered(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            Status::failure("refused", "Refused").with_code(code),
        ))
    }

    #[test]
    fn only_an_answer_that_refuses_the_request_itself_is_permanent() {
        for code in [401, 408, 429, 500, 503, 504] {
            assert!(is_transient(&answered(code)), "{code}");
        }
        for code in [400, 403, 404, 409, 410, 422] {
            assert!(!is_transient(&answered(code)), "{code}");
        }
        let no_answer = kube::Error::Service("connection refused".into());
        assert!(is_transient(&no_answer));
    }
}
