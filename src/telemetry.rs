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

/// A change the agent made in its directory, as counted in the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileChange {
    /// A profile file written where none was.
    Installed,
    /// A profile file rewritten because its profile changed.
    Updated,
    /// Drift repaired: a file the agent wrote was deleted, truncated, edited or swapped
    /// behind its back, and was restored.
    Restored,
    /// Drift repaired: an entry seccompd did not write (a foreign file, a symlink, a fifo, a
    /// directory, a leftover temporary file) was removed.
    ForeignRemoved,
    /// The file of a deleted profile was removed.
    ProfileRemoved,
}

/// Counters and flags of one agent, shared by its tasks.
#[derive(Debug, Default)]
pub struct Metrics {
    installs: AtomicU64,
    updates: AtomicU64,
    restored: AtomicU64,
    foreign_removed: AtomicU64,
    removals: AtomicU64,
    errors: AtomicU64,
    api_errors: AtomicU64,
    passes: AtomicU64,
    retained: AtomicU64,
    synced: AtomicBool,
    untainted: AtomicBool,
}

impl Metrics {
    /// Counts a change in the directory.
    pub fn record(&self, change: FileChange) {
        let counter = match change {
            FileChange::Installed => &self.installs,
            FileChange::Updated => &self.updates,
            FileChange::Restored => &self.restored,
            FileChange::ForeignRemoved => &self.foreign_removed,
            FileChange::ProfileRemoved => &self.removals,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A file operation failed.
    pub fn record_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A call to the API server failed (report, event, taint).
    pub fn record_api_error(&self) {
        self.api_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A sync pass completed.
    pub fn record_pass(&self) {
        self.passes.fetch_add(1, Ordering::Relaxed);
    }

    /// How many deleted profiles are kept because pods on the node use them.
    pub fn set_retained(&self, count: usize) {
        self.retained.store(count as u64, Ordering::Relaxed);
    }

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

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let counters = [
            (
                "seccompd_profile_installs_total",
                "Profile files written where none was",
                load(&self.installs),
            ),
            (
                "seccompd_profile_updates_total",
                "Profile files rewritten because their profile changed",
                load(&self.updates),
            ),
            (
                "seccompd_profile_removals_total",
                "Files of deleted profiles removed",
                load(&self.removals),
            ),
            (
                "seccompd_file_errors_total",
                "Failed file operations",
                load(&self.errors),
            ),
            (
                "seccompd_api_errors_total",
                "Failed API calls (node report, events, taint removal)",
                load(&self.api_errors),
            ),
            (
                "seccompd_sync_passes_total",
                "Completed sync passes",
                load(&self.passes),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP seccompd_drift_repairs_total Changes behind the agent's back that it repaired\n\
             # TYPE seccompd_drift_repairs_total counter\n\
             seccompd_drift_repairs_total{{kind=\"restored\"}} {}\n\
             seccompd_drift_repairs_total{{kind=\"foreign_removed\"}} {}",
            load(&self.restored),
            load(&self.foreign_removed),
        );
        let _ = writeln!(
            out,
            "# HELP seccompd_retained_profiles Deleted profiles kept because pods on the node use them\n\
             # TYPE seccompd_retained_profiles gauge\nseccompd_retained_profiles {}",
            load(&self.retained)
        );
        let _ = writeln!(
            out,
            "# HELP seccompd_synced 1 once the first complete sync is done\n# TYPE seccompd_synced gauge\nseccompd_synced {}",
            u8::from(self.synced())
        );
        let _ = writeln!(
            out,
            "# HELP seccompd_ready 1 once synced and the node's agent-not-ready taint is gone\n# TYPE seccompd_ready gauge\nseccompd_ready {}",
            u8::from(self.ready())
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
        m.record(FileChange::Installed);
        m.record(FileChange::Restored);
        m.record(FileChange::Restored);
        m.record(FileChange::ForeignRemoved);
        m.set_retained(3);
        m.set_synced();
        let text = m.render();
        assert!(text.contains("seccompd_profile_installs_total 1\n"));
        assert!(text.contains("seccompd_drift_repairs_total{kind=\"restored\"} 2\n"));
        assert!(text.contains("seccompd_drift_repairs_total{kind=\"foreign_removed\"} 1\n"));
        assert!(text.contains("seccompd_retained_profiles 3\n"));
        assert!(text.contains("seccompd_synced 1\n"));
        assert!(
            text.contains("seccompd_ready 0\n"),
            "not ready while tainted"
        );
        m.set_untainted();
        assert!(m.ready());
    }
}
