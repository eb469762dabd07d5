//! What the agent's probes answer from: whether the first complete sync is done, whether the
//! node is free of the agent-not-ready taint, and when the loop last completed a pass. Shared
//! by the loop, the taint task and the probes; `/metrics` shows the two conditions as it reads
//! them here (`seccompd_synced`, `seccompd_ready`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// The agent's readiness conditions and its loop's progress.
#[derive(Debug)]
pub struct Readiness {
    synced: AtomicBool,
    untainted: AtomicBool,
    /// The last completed pass, or the agent's start before the first.
    last_progress: Mutex<Instant>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            synced: AtomicBool::new(false),
            untainted: AtomicBool::new(false),
            last_progress: Mutex::new(Instant::now()),
        }
    }
}

impl Readiness {
    /// The first complete sync is done: the node holds every profile the API has.
    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// Whether the first complete sync is done.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// The node no longer carries the agent-not-ready taint (removed, or never there).
    pub fn set_untainted(&self) {
        self.untainted.store(true, Ordering::Release);
    }

    /// Ready for confined pods: the first complete sync is done and the node is untainted.
    pub fn ready(&self) -> bool {
        self.synced() && self.untainted.load(Ordering::Acquire)
    }

    /// The loop completed a pass at `at`.
    pub fn progressed(&self, at: Instant) {
        *self.progress() = at;
    }

    /// When the loop last completed a pass, or when the agent started if it has not yet.
    pub fn last_progress(&self) -> Instant {
        *self.progress()
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Instant> {
        // A plain store under the lock: the value is whole whatever a panicking holder did.
        self.last_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_the_first_sync_and_no_taint() {
        let r = Readiness::default();
        assert!(!r.synced() && !r.ready());
        r.set_untainted();
        assert!(!r.ready(), "untainted before the first sync");
        r.set_synced();
        assert!(r.synced() && r.ready());
    }

    #[test]
    fn a_completed_pass_is_progress() {
        let r = Readiness::default();
        let later = r.last_progress() + std::time::Duration::from_secs(1);
        r.progressed(later);
        assert_eq!(r.last_progress(), later);
    }
}
