//! Whether the agent's loop is alive, as `/healthz` answers it. The loop completes a pass at
//! least every time its longest wait ends (the resync timer), so one that has not completed a
//! pass for several of those waits is stuck: a file operation that never returns, a pass that
//! never ends. The kubelet then restarts the agent.

use std::time::{Duration, Instant};

/// How many of the loop's longest waits may go by without a completed pass.
const STALL_FACTOR: u32 = 3;

/// The least time allowed whatever the waits: a first pass checks every profile with the
/// node's seccomp library, seconds each at the size bound under the container's CPU limit.
const MIN_STALL: Duration = Duration::from_secs(120);

/// How long the loop may go without completing a pass before it counts as stuck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StallLimit(Duration);

impl StallLimit {
    /// For a loop that waits at most `longest_wait` between passes.
    pub fn for_longest_wait(longest_wait: Duration) -> Self {
        Self(longest_wait.saturating_mul(STALL_FACTOR).max(MIN_STALL))
    }

    /// Exactly `limit`, below the floor: for tests of what a stalled loop gets.
    #[cfg(test)]
    pub(crate) const fn exactly(limit: Duration) -> Self {
        Self(limit)
    }

    /// The limit as a duration.
    pub fn duration(self) -> Duration {
        self.0
    }
}

/// The loop's liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// It completed a pass recently enough.
    Alive,
    /// It has not completed a pass for `since`, more than `limit` allows.
    Stalled {
        /// Time since the last completed pass (or the agent's start, before the first).
        since: Duration,
        /// The limit it exceeds.
        limit: Duration,
    },
}

/// Judges the loop from when it last made progress: its last completed pass, or the agent's
/// start before the first (which also waits for the first complete lists from the API).
pub fn judge(last_progress: Instant, now: Instant, limit: StallLimit) -> Liveness {
    let since = now.saturating_duration_since(last_progress);
    if since > limit.0 {
        Liveness::Stalled {
            since,
            limit: limit.0,
        }
    } else {
        Liveness::Alive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_limit_is_several_of_the_longest_waits() {
        assert_eq!(
            StallLimit::for_longest_wait(secs(300)).duration(),
            secs(900)
        );
    }

    #[test]
    fn a_short_wait_still_leaves_time_for_a_long_first_pass() {
        assert_eq!(StallLimit::for_longest_wait(secs(2)).duration(), MIN_STALL);
    }

    #[test]
    fn alive_within_the_limit_stalled_beyond_it() {
        let limit = StallLimit::for_longest_wait(secs(300));
        let t0 = Instant::now();
        assert_eq!(judge(t0, t0, limit), Liveness::Alive);
        assert_eq!(judge(t0, t0 + secs(900), limit), Liveness::Alive);
        assert_eq!(
            judge(t0, t0 + secs(901), limit),
            Liveness::Stalled {
                since: secs(901),
                limit: secs(900)
            }
        );
    }

    #[test]
    fn progress_after_now_is_alive() {
        // A pass may complete between reading the clock and reading the progress.
        let t0 = Instant::now();
        let limit = StallLimit::for_longest_wait(secs(1));
        assert_eq!(judge(t0 + secs(1), t0, limit), Liveness::Alive);
    }
}
