//! Logs and metrics: the tracing subscriber and the counters the metrics endpoint serves.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Installs the log subscriber: plain text to stderr, level from `RUST_LOG` (default info).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Counters and flags of one agent, shared by its tasks.
#[derive(Debug, Default)]
pub struct Metrics {
    installs: AtomicU64,
    repairs: AtomicU64,
    removals: AtomicU64,
    errors: AtomicU64,
    passes: AtomicU64,
    synced: AtomicBool,
}

impl Metrics {
    /// A file was written: a first install, or a replacement of what was there.
    pub fn record_write(&self, replaced: bool) {
        let counter = if replaced {
            &self.repairs
        } else {
            &self.installs
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// An entry was removed from the directory.
    pub fn record_removal(&self) {
        self.removals.fetch_add(1, Ordering::Relaxed);
    }

    /// A file operation failed.
    pub fn record_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A sync pass completed.
    pub fn record_pass(&self) {
        self.passes.fetch_add(1, Ordering::Relaxed);
    }

    /// The first complete sync is done: the node holds every profile the API has.
    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// Whether the first complete sync is done.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                "seccompd_profile_installs_total",
                "Profile files written where none was",
                &self.installs,
            ),
            (
                "seccompd_profile_repairs_total",
                "Profile files rewritten because their content or type differed",
                &self.repairs,
            ),
            (
                "seccompd_profile_removals_total",
                "Entries removed from the profile directory",
                &self.removals,
            ),
            (
                "seccompd_file_errors_total",
                "Failed file operations",
                &self.errors,
            ),
            (
                "seccompd_sync_passes_total",
                "Completed sync passes",
                &self.passes,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP seccompd_synced 1 once the first complete sync is done\n# TYPE seccompd_synced gauge\nseccompd_synced {}",
            u8::from(self.synced())
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_exposition() {
        let m = Metrics::default();
        m.record_write(false);
        m.record_write(true);
        m.record_write(true);
        m.set_synced();
        let text = m.render();
        assert!(text.contains("seccompd_profile_installs_total 1\n"));
        assert!(text.contains("seccompd_profile_repairs_total 2\n"));
        assert!(text.contains("seccompd_synced 1\n"));
    }
}
