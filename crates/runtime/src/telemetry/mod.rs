//! Logs and metrics: the tracing subscriber, what every role's `/metrics` shares (each role's
//! metrics live in its crate), and the clocks behind the latency histograms.

pub mod change_clock;
pub mod exposition;

pub use change_clock::{ChangeClock, ClockedWake};
pub use exposition::{CONTENT_TYPE, Exposition};

/// The audit codec's own log, kept to errors.
const QUIET_AUDIT_CODEC: &str = "netlink_packet_audit=error";

/// Installs the log subscriber: plain text to stderr, level from `RUST_LOG` (default info).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // The audit codec warns of the kernel's audit length quirk, which it mends, on every
        // record the recorder reads.
        .add_directive(QUIET_AUDIT_CODEC.parse().unwrap_or_default());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
