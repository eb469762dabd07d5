//! When the earliest change not yet carried out was observed, for the latency histograms: a
//! watch notes each change as it arrives, and the loop that carries changes out asks, when it
//! writes something, how long ago the oldest change its pass took in was seen.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::apiserver::Wake;

/// Shared by a watch (which observes changes) and the loop that carries them out.
#[derive(Debug, Default)]
pub struct ChangeClock {
    state: Mutex<ClockState>,
}

impl ChangeClock {
    /// A change arrived.
    pub fn observed(&self) {
        self.with(|s| s.observed(Instant::now()));
    }

    /// A pass starts: it takes in every change observed so far.
    pub fn pass_begins(&self) {
        self.with(ClockState::pass_begins);
    }

    /// How long ago the oldest change the current pass took in was observed; `None` when the
    /// pass took in no change (a timer, a file changed behind the agent's back).
    pub fn age(&self) -> Option<Duration> {
        self.with(|s| s.age(Instant::now()))
    }

    /// The pass ended; `complete` when it carried out everything, otherwise its changes stay
    /// pending for the next pass, which is then measured from when they were observed.
    pub fn pass_ends(&self, complete: bool) {
        self.with(|s| s.pass_ends(complete));
    }

    /// Forgets every change (a new watch starts from its own first list).
    pub fn reset(&self) {
        self.with(|s| *s = ClockState::default());
    }

    fn with<T>(&self, f: impl FnOnce(&mut ClockState) -> T) -> T {
        // The state stays consistent whatever a panicking holder did: each step is one store.
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The clock's state, apart from the lock and the system clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ClockState {
    /// The oldest change observed since the current pass began.
    pending: Option<Instant>,
    /// The oldest change the current pass took in (kept across incomplete passes).
    taken: Option<Instant>,
}

impl ClockState {
    fn observed(&mut self, now: Instant) {
        self.pending = earliest(self.pending, Some(now));
    }

    fn pass_begins(&mut self) {
        self.taken = earliest(self.taken, self.pending.take());
    }

    fn age(&self, now: Instant) -> Option<Duration> {
        self.taken.map(|seen| now.saturating_duration_since(seen))
    }

    fn pass_ends(&mut self, complete: bool) {
        if complete {
            self.taken = None;
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A watch's [`Wake`] that notes the change on a clock before it wakes the loop.
#[derive(Debug)]
pub struct ClockedWake {
    notify: Arc<Notify>,
    clock: Arc<ChangeClock>,
}

impl ClockedWake {
    /// Wakes `notify` and notes every change on `clock`.
    pub fn new(notify: Arc<Notify>, clock: Arc<ChangeClock>) -> Self {
        Self { notify, clock }
    }
}

impl Wake for ClockedWake {
    fn wake(&self) {
        // Noted first: the pass the notification starts must find it.
        self.clock.observed();
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_pass_is_measured_from_the_oldest_change_it_took_in() {
        let t0 = Instant::now();
        let mut s = ClockState::default();
        s.observed(t0);
        s.observed(t0 + secs(1));
        s.pass_begins();
        assert_eq!(s.age(t0 + secs(3)), Some(secs(3)));
        // Seen during the pass: belongs to the next one.
        s.observed(t0 + secs(4));
        s.pass_ends(true);
        assert_eq!(
            s.age(t0 + secs(5)),
            None,
            "between passes nothing is measured"
        );
        s.pass_begins();
        assert_eq!(s.age(t0 + secs(5)), Some(secs(1)));
    }

    #[test]
    fn a_pass_without_changes_measures_nothing() {
        let t0 = Instant::now();
        let mut s = ClockState::default();
        s.pass_begins();
        assert_eq!(s.age(t0), None);
        s.pass_ends(true);
        s.pass_begins();
        assert_eq!(s.age(t0), None);
    }

    #[test]
    fn changes_of_an_incomplete_pass_are_measured_from_when_they_were_seen() {
        let t0 = Instant::now();
        let mut s = ClockState::default();
        s.observed(t0);
        s.pass_begins();
        s.pass_ends(false);
        s.observed(t0 + secs(2));
        s.pass_begins();
        assert_eq!(
            s.age(t0 + secs(4)),
            Some(secs(4)),
            "the retry still owes t0's change"
        );
        s.pass_ends(true);
        s.pass_begins();
        assert_eq!(s.age(t0 + secs(5)), None);
    }

    #[test]
    fn a_pass_that_never_ends_keeps_its_changes_for_the_next() {
        // The agent's loop skips pass_ends when the directory scan fails.
        let t0 = Instant::now();
        let mut s = ClockState::default();
        s.observed(t0);
        s.pass_begins();
        s.pass_begins();
        assert_eq!(s.age(t0 + secs(1)), Some(secs(1)));
    }

    #[test]
    fn clocked_wake_notes_the_change_before_waking() {
        let notify = Arc::new(Notify::new());
        let clock = Arc::new(ChangeClock::default());
        ClockedWake::new(notify.clone(), clock.clone()).wake();
        clock.pass_begins();
        assert!(clock.age().is_some());
        clock.reset();
        clock.pass_begins();
        assert_eq!(clock.age(), None);
        // The permit is stored: the loop's next wait returns at once.
        use futures::FutureExt as _;
        assert!(notify.notified().now_or_never().is_some());
    }
}
