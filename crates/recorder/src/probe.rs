//! Whether this recorder hears the kernel's audit records at all, found out the only way that
//! covers every cause (not in the host's initial network namespace, audit off in the kernel,
//! `log` missing from `actions_logged`, a host without the multicast group): make one record
//! and wait for it. A thread of the recorder's own loads a seccomp filter that logs one
//! system call, makes that call and ends; its filter ends with it. The kernel then writes a
//! seccomp record naming this process, which the reading thread recognises by its PID.
//!
//! [`Hearing`] is the pure part: what the recorder says while it waits, once it heard the
//! record, and when it gave up and when to try again.

use std::time::{Duration, Instant};

use libseccomp::{ScmpAction, ScmpFilterContext, ScmpSyscall};
use thiserror::Error;

/// How long a probe's record may take to arrive. The kernel delivers records within
/// milliseconds; a busy node's reader may lag behind a burst.
pub const PROBE_WAIT: Duration = Duration::from_secs(5);

/// How often a recorder that heard nothing probes again (audit may be turned on later).
pub const PROBE_AGAIN: Duration = Duration::from_secs(60);

/// The call the probe's filter logs: one the recorder's threads never make otherwise.
const PROBE_CALL: &str = "getppid";

/// Why a probe could not be made.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// The filter could not be built or loaded (seccomp refused to this process).
    #[error("cannot load the probe's logging seccomp filter: {0}")]
    Filter(#[from] libseccomp::error::SeccompError),
    /// The thread could not be started or ended abnormally.
    #[error("the probe thread failed: {0}")]
    Thread(String),
}

/// Makes one seccomp audit record naming this process (see the module's documentation).
pub fn fire() -> Result<(), ProbeError> {
    let thread = std::thread::Builder::new()
        .name("audit-probe".to_string())
        .spawn(|| -> Result<(), ProbeError> {
            let mut filter = ScmpFilterContext::new(ScmpAction::Allow)?;
            filter.add_rule(ScmpAction::Log, ScmpSyscall::from_name(PROBE_CALL)?)?;
            // Loaded on this thread only (no TSYNC): the recorder's other threads never log.
            filter.load()?;
            let _parent = rustix::process::getppid();
            Ok(())
        })
        .map_err(|e| ProbeError::Thread(e.to_string()))?;
    thread
        .join()
        .map_err(|_| ProbeError::Thread("it panicked".to_string()))?
}

/// Whether the recorder hears audit records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hearing {
    /// A probe was made at `since`; its record has not arrived yet.
    Waiting {
        /// When.
        since: Instant,
    },
    /// A probe's record arrived.
    Heard,
    /// No record arrived in time (or no probe could be made): `reason` says so, and the
    /// next probe is due at `again`.
    Deaf {
        /// What the recorder says of it, in its node's parts, its log and its metric.
        reason: String,
        /// When to probe again.
        again: Instant,
    },
}

impl Hearing {
    /// A probe was made now.
    pub fn probed(now: Instant) -> Self {
        Self::Waiting { since: now }
    }

    /// A probe could not be made.
    pub fn unprobed(err: &ProbeError, now: Instant) -> Self {
        Self::Deaf {
            reason: format!("cannot make an audit record to listen for: {err}"),
            again: now + PROBE_AGAIN,
        }
    }

    /// The probe's record arrived.
    pub fn heard(&mut self) {
        *self = Self::Heard;
    }

    /// Moves on with the clock: a probe unanswered for [`PROBE_WAIT`] means deaf. Returns
    /// true when it just turned deaf.
    pub fn tick(&mut self, now: Instant) -> bool {
        if let Self::Waiting { since } = *self
            && now.duration_since(since) >= PROBE_WAIT
        {
            *self = Self::Deaf {
                reason: format!(
                    "no audit record of this recorder's own probe arrived within {}s: it is not in the host's initial network namespace (the kernel sends audit records to that namespace only), or the kernel's audit is off",
                    PROBE_WAIT.as_secs()
                ),
                again: now + PROBE_AGAIN,
            };
            return true;
        }
        false
    }

    /// Whether a new probe is due now.
    pub fn probe_due(&self, now: Instant) -> bool {
        matches!(self, Self::Deaf { again, .. } if now >= *again)
    }

    /// Why the recorder cannot hear records, while it cannot; `None` while it does or is
    /// still waiting to know.
    pub fn deaf_reason(&self) -> Option<&str> {
        match self {
            Self::Deaf { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Whether a probe's record arrived.
    pub fn is_heard(&self) -> bool {
        *self == Self::Heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unanswered_probe_turns_deaf_after_the_wait_and_probes_again_later() {
        let t0 = Instant::now();
        let mut h = Hearing::probed(t0);
        assert!(!h.tick(t0 + PROBE_WAIT / 2));
        assert_eq!(h.deaf_reason(), None, "still waiting");
        assert!(h.tick(t0 + PROBE_WAIT));
        let reason = h.deaf_reason().unwrap().to_string();
        assert!(reason.contains("initial network namespace"), "{reason}");
        assert!(!h.tick(t0 + PROBE_WAIT * 2), "turned deaf once");
        assert!(!h.probe_due(t0 + PROBE_WAIT));
        assert!(h.probe_due(t0 + PROBE_WAIT + PROBE_AGAIN));
        // A late record (or the next probe's) is heard all the same.
        h.heard();
        assert!(h.is_heard());
        assert!(!h.tick(t0 + PROBE_WAIT * 100));
        assert!(!h.probe_due(t0 + PROBE_AGAIN * 100));
    }

    #[test]
    fn a_probe_that_cannot_be_made_is_deaf_with_its_error() {
        let t0 = Instant::now();
        let err = ProbeError::Thread("x".into());
        let h = Hearing::unprobed(&err, t0);
        assert!(h.deaf_reason().unwrap().contains("probe thread failed"));
        assert!(h.probe_due(t0 + PROBE_AGAIN));
    }
}
