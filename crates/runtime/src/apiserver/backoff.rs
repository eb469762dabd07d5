//! How seccompd retries the API server: watches and calls alike.

use std::time::Duration;

use kube::runtime::watcher::ExponentialBackoff;

/// Longest pause between attempts, before jitter (which adds up to as much again).
pub const MAX_API_BACKOFF: Duration = Duration::from_secs(4);

/// Backoff for seccompd's watches and API calls: exponential from half a second, capped at
/// [`MAX_API_BACKOFF`] plus a jitter of up to as much again; watches reset it on their first
/// success.
///
/// kube's default for watches (client-go's) caps at 30 s. After an API server restart the
/// first reconnect then often meets `410 Expired` (the new server's watch cache starts later)
/// and pays a second pause, so a node (and the statuses) lagged a minute behind the API.
/// seccompd's watches are small (profiles, one node's pods, node reports, node metadata), so
/// reconnecting sooner is cheap.
pub fn api_backoff() -> ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(MAX_API_BACKOFF)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_from_half_a_second_and_stays_capped() {
        let delays: Vec<Duration> = api_backoff().take(12).collect();
        assert!(delays[0] >= Duration::from_millis(500), "{delays:?}");
        assert!(delays[0] < Duration::from_secs(2), "{delays:?}");
        assert!(delays[3] > delays[0], "{delays:?}");
        // The jitter adds at most the delay itself.
        assert!(
            delays.iter().all(|d| *d <= MAX_API_BACKOFF * 2),
            "{delays:?}"
        );
        assert!(delays[11] >= MAX_API_BACKOFF, "{delays:?}");
    }
}
