//! The agent's metrics: what its loop did in the directory, its passes, its failed file and
//! API operations, and its readiness conditions as [`Readiness`] holds them. A registry of
//! the agent's own: an agent exports none of the controller's metrics.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::readiness::Readiness;
use seccompd_runtime::telemetry::{ChangeClock, Exposition};

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
    /// Drift repaired: a leftover temporary file of seccompd's, or something swapped in at a
    /// name seccompd owns (a symlink, a fifo, an unreadable file) that no profile needs, was
    /// removed. Entries seccompd did not write are never removed.
    StrayRemoved,
    /// The file of a deleted profile was removed.
    ProfileRemoved,
}

/// The `kind` label of `seccompd_drift_repairs_total`.
type DriftLabel = [(&'static str, &'static str); 1];
const RESTORED: DriftLabel = [("kind", "restored")];
/// The label of [`FileChange::StrayRemoved`]; it keeps the name it had when the agent also
/// removed entries it did not write, so that dashboards and alerts keep working.
const STRAY_REMOVED: DriftLabel = [("kind", "foreign_removed")];

/// The metrics of one agent, shared by its tasks.
#[derive(Debug)]
pub struct AgentMetrics {
    exposition: Exposition,
    installs: Counter,
    updates: Counter,
    removals: Counter,
    drift_repairs: Family<DriftLabel, Counter>,
    file_errors: Counter,
    api_errors: Counter,
    passes: Counter,
    retained: Gauge,
    last_pass_timestamp: Gauge<f64, AtomicU64>,
    pass_duration: Histogram,
    change_to_file: Histogram,
    /// When the current sync pass started.
    pass_started: Mutex<Option<Instant>>,
    profile_changes: Arc<ChangeClock>,
}

impl AgentMetrics {
    /// Every metric at zero, registered; `seccompd_synced` and `seccompd_ready` say what
    /// `readiness` holds at each scrape.
    pub fn new(readiness: &Arc<Readiness>) -> Self {
        let mut e = Exposition::new();
        let synced = readiness.clone();
        e.register_gauge_fn(
            "synced",
            "1 once the first complete sync is done",
            move || i64::from(synced.synced()),
        );
        let ready = readiness.clone();
        e.register_gauge_fn(
            "ready",
            "1 once synced and the node's agent-not-ready taint is gone",
            move || i64::from(ready.ready()),
        );
        let m = Self {
            installs: e.register("profile_installs", "Profile files written where none was"),
            updates: e.register(
                "profile_updates",
                "Profile files rewritten because their profile changed",
            ),
            removals: e.register("profile_removals", "Files of deleted profiles removed"),
            drift_repairs: e.register(
                "drift_repairs",
                "Changes behind the agent's back that it repaired",
            ),
            file_errors: e.register("file_errors", "Failed file operations"),
            api_errors: e.register(
                "api_errors",
                "Failed API calls (node report, events, taint removal)",
            ),
            passes: e.register("sync_passes", "Completed sync passes"),
            retained: e.register(
                "retained_profiles",
                "Deleted profiles kept because pods on the node use them",
            ),
            last_pass_timestamp: e.register_seconds(
                "last_sync_pass_timestamp",
                "Unix time of the last completed sync pass",
            ),
            pass_duration: e
                .register_latency("sync_pass_duration", "Duration of completed sync passes"),
            change_to_file: e.register_latency(
                "profile_change_to_file",
                "From a SeccompProfile change seen by the agent to its profile file written",
            ),
            exposition: e,
            pass_started: Mutex::new(None),
            profile_changes: Arc::default(),
        };
        // Both kinds from the start, so a query sees 0 rather than no series.
        for kind in [RESTORED, STRAY_REMOVED] {
            drop(m.drift_repairs.get_or_create(&kind));
        }
        m
    }

    /// Counts a change in the directory; an install or update is also timed from the
    /// profile change that caused it.
    pub fn record(&self, change: FileChange) {
        match change {
            FileChange::Installed => self.installs.inc(),
            FileChange::Updated => self.updates.inc(),
            FileChange::Restored => self.drift_repairs.get_or_create(&RESTORED).inc(),
            FileChange::StrayRemoved => self.drift_repairs.get_or_create(&STRAY_REMOVED).inc(),
            FileChange::ProfileRemoved => self.removals.inc(),
        };
        if matches!(change, FileChange::Installed | FileChange::Updated)
            && let Some(age) = self.profile_changes.age()
        {
            self.change_to_file.observe(age.as_secs_f64());
        }
    }

    /// A file operation failed.
    pub fn record_error(&self) {
        self.file_errors.inc();
    }

    /// A call to the API server failed (report, event, taint).
    pub fn record_api_error(&self) {
        self.api_errors.inc();
    }

    /// A sync pass starts: it takes in the profile changes seen so far.
    pub fn pass_begins(&self) {
        self.profile_changes.pass_begins();
        *self.started() = Some(Instant::now());
    }

    /// A sync pass completed; `complete` when every installable profile's file is written
    /// (otherwise the changes it took in are still owed and timed on).
    pub fn record_pass(&self, complete: bool) {
        self.passes.inc();
        if let Some(started) = self.started().take() {
            self.pass_duration.observe(started.elapsed().as_secs_f64());
        }
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        self.last_pass_timestamp.set(unix.as_secs_f64());
        self.profile_changes.pass_ends(complete);
    }

    /// The clock the SeccompProfile watch notes its changes on.
    pub fn profile_changes(&self) -> Arc<ChangeClock> {
        self.profile_changes.clone()
    }

    /// How many deleted profiles are kept because pods on the node use them.
    pub fn set_retained(&self, count: usize) {
        self.retained.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        self.exposition.render()
    }

    fn started(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // A plain store under the lock: the value is whole whatever a panicking holder did.
        self.pass_started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample;
    use seccompd_runtime::telemetry::exposition::assert_families;

    fn metrics() -> (AgentMetrics, Arc<Readiness>) {
        let readiness = Arc::new(Readiness::default());
        (AgentMetrics::new(&readiness), readiness)
    }

    #[test]
    fn an_agent_exports_its_own_metrics_and_no_others() {
        let (m, _) = metrics();
        assert_families(
            &m.render().unwrap(),
            &[
                ("seccompd_api_errors_total", "counter"),
                ("seccompd_drift_repairs_total", "counter"),
                ("seccompd_file_errors_total", "counter"),
                ("seccompd_last_sync_pass_timestamp_seconds", "gauge"),
                ("seccompd_profile_change_to_file_seconds", "histogram"),
                ("seccompd_profile_installs_total", "counter"),
                ("seccompd_profile_removals_total", "counter"),
                ("seccompd_profile_updates_total", "counter"),
                ("seccompd_ready", "gauge"),
                ("seccompd_retained_profiles", "gauge"),
                ("seccompd_sync_pass_duration_seconds", "histogram"),
                ("seccompd_sync_passes_total", "counter"),
                ("seccompd_synced", "gauge"),
            ],
        );
    }

    #[test]
    fn counters_and_gauges_appear_in_the_exposition() {
        let (m, readiness) = metrics();
        m.record(FileChange::Installed);
        m.record(FileChange::Restored);
        m.record(FileChange::Restored);
        m.record(FileChange::StrayRemoved);
        m.record_error();
        m.set_retained(3);
        readiness.set_synced();
        assert_eq!(sample(&m, "seccompd_profile_installs_total"), 1.0);
        assert_eq!(sample(&m, "seccompd_profile_updates_total"), 0.0);
        assert_eq!(
            sample(&m, "seccompd_drift_repairs_total{kind=\"restored\"}"),
            2.0
        );
        assert_eq!(
            sample(&m, "seccompd_drift_repairs_total{kind=\"foreign_removed\"}"),
            1.0
        );
        assert_eq!(sample(&m, "seccompd_file_errors_total"), 1.0);
        assert_eq!(sample(&m, "seccompd_retained_profiles"), 3.0);
        assert_eq!(sample(&m, "seccompd_synced"), 1.0);
        assert_eq!(sample(&m, "seccompd_ready"), 0.0, "not ready while tainted");
        readiness.set_untainted();
        assert_eq!(sample(&m, "seccompd_ready"), 1.0);
    }

    #[test]
    fn a_pass_is_timed_and_counted() {
        let (m, _) = metrics();
        m.pass_begins();
        m.record_pass(true);
        assert_eq!(sample(&m, "seccompd_sync_passes_total"), 1.0);
        assert_eq!(sample(&m, "seccompd_sync_pass_duration_seconds_count"), 1.0);
        assert_eq!(
            sample(
                &m,
                "seccompd_sync_pass_duration_seconds_bucket{le=\"+Inf\"}"
            ),
            1.0
        );
        assert!(sample(&m, "seccompd_last_sync_pass_timestamp_seconds") > 1.7e9);
    }

    #[test]
    fn writes_are_timed_only_when_a_profile_change_caused_them() {
        let (m, _) = metrics();
        // A drift repair on a timer pass: no profile change, nothing timed.
        m.pass_begins();
        m.record(FileChange::Installed);
        m.record_pass(true);
        assert_eq!(
            sample(&m, "seccompd_profile_change_to_file_seconds_count"),
            0.0
        );

        m.profile_changes().observed();
        m.pass_begins();
        m.record(FileChange::Installed);
        m.record(FileChange::Updated);
        m.record(FileChange::Restored);
        m.record_pass(true);
        assert_eq!(
            sample(&m, "seccompd_profile_change_to_file_seconds_count"),
            2.0
        );
    }
}
