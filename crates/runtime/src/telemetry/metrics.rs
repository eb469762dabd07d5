//! The metrics of an agent or of the controller: one `prometheus-client` registry, recorded by
//! its tasks and encoded in the Prometheus text format for `/metrics`. Names follow Prometheus
//! conventions (docs/operations.md's metrics table lists them): base units in the name, `_total` on
//! counters (added by the encoder).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::change_clock::ChangeClock;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Bucket bounds in seconds of every latency histogram: from a millisecond (a pass with
/// nothing to do) to five minutes (the default resync, and beyond what any healthy path takes).
const LATENCY_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

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

/// Metrics and flags of one agent, shared by its tasks.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    installs: Counter,
    updates: Counter,
    removals: Counter,
    drift_repairs: Family<DriftLabel, Counter>,
    file_errors: Counter,
    api_errors: Counter,
    passes: Counter,
    status_writes: Counter,
    status_write_throttles: Counter,
    retained: Gauge,
    synced_gauge: Gauge,
    ready_gauge: Gauge,
    last_pass_timestamp: Gauge<f64, AtomicU64>,
    pass_duration: Histogram,
    change_to_file: Histogram,
    report_to_status: Histogram,
    synced: AtomicBool,
    untainted: AtomicBool,
    passes_clock: Mutex<PassClock>,
    profile_changes: Arc<ChangeClock>,
    report_changes: Arc<ChangeClock>,
}

/// When the loop's current pass started, and when it last got through one.
#[derive(Clone, Copy, Debug)]
struct PassClock {
    started: Option<Instant>,
    /// The last completed pass, or the agent's start before the first.
    last_progress: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered.
    pub fn new() -> Self {
        let latency = || Histogram::new(LATENCY_BUCKETS);
        let m = Self {
            registry: Registry::default(),
            installs: Counter::default(),
            updates: Counter::default(),
            removals: Counter::default(),
            drift_repairs: Family::default(),
            file_errors: Counter::default(),
            api_errors: Counter::default(),
            passes: Counter::default(),
            status_writes: Counter::default(),
            status_write_throttles: Counter::default(),
            retained: Gauge::default(),
            synced_gauge: Gauge::default(),
            ready_gauge: Gauge::default(),
            last_pass_timestamp: Gauge::default(),
            pass_duration: latency(),
            change_to_file: latency(),
            report_to_status: latency(),
            synced: AtomicBool::new(false),
            untainted: AtomicBool::new(false),
            passes_clock: Mutex::new(PassClock {
                started: None,
                last_progress: Instant::now(),
            }),
            profile_changes: Arc::default(),
            report_changes: Arc::default(),
        };
        // Both kinds from the start, so a query sees 0 rather than no series.
        for kind in [RESTORED, STRAY_REMOVED] {
            drop(m.drift_repairs.get_or_create(&kind));
        }
        m.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        let counters = [
            (
                "seccompd_profile_installs",
                "Profile files written where none was",
                &self.installs,
            ),
            (
                "seccompd_profile_updates",
                "Profile files rewritten because their profile changed",
                &self.updates,
            ),
            (
                "seccompd_profile_removals",
                "Files of deleted profiles removed",
                &self.removals,
            ),
            (
                "seccompd_file_errors",
                "Failed file operations",
                &self.file_errors,
            ),
            (
                "seccompd_api_errors",
                "Failed API calls (node report, events, taint removal, status writes)",
                &self.api_errors,
            ),
            (
                "seccompd_sync_passes",
                "Completed sync passes",
                &self.passes,
            ),
            (
                "seccompd_status_writes",
                "SeccompProfile statuses written by the elected controller",
                &self.status_writes,
            ),
            (
                "seccompd_status_write_throttles",
                "Status writes that waited for the controller's write budget",
                &self.status_write_throttles,
            ),
        ];
        for (name, help, counter) in counters {
            r.register(name, help, counter.clone());
        }
        r.register(
            "seccompd_drift_repairs",
            "Changes behind the agent's back that it repaired",
            self.drift_repairs.clone(),
        );
        let gauges = [
            (
                "seccompd_retained_profiles",
                "Deleted profiles kept because pods on the node use them",
                &self.retained,
            ),
            (
                "seccompd_synced",
                "1 once the first complete sync is done",
                &self.synced_gauge,
            ),
            (
                "seccompd_ready",
                "1 once synced and the node's agent-not-ready taint is gone",
                &self.ready_gauge,
            ),
        ];
        for (name, help, gauge) in gauges {
            r.register(name, help, gauge.clone());
        }
        r.register_with_unit(
            "seccompd_last_sync_pass_timestamp",
            "Unix time of the last completed sync pass",
            Unit::Seconds,
            self.last_pass_timestamp.clone(),
        );
        let histograms = [
            (
                "seccompd_sync_pass_duration",
                "Duration of completed sync passes",
                &self.pass_duration,
            ),
            (
                "seccompd_profile_change_to_file",
                "From a SeccompProfile change seen by the agent to its profile file written",
                &self.change_to_file,
            ),
            (
                "seccompd_report_to_status",
                "From a node report change seen by the status writer to a profile status written",
                &self.report_to_status,
            ),
        ];
        for (name, help, histogram) in histograms {
            r.register_with_unit(name, help, Unit::Seconds, histogram.clone());
        }
        self
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
        self.with_passes(|p| p.started = Some(Instant::now()));
    }

    /// A sync pass completed; `complete` when every installable profile's file is written
    /// (otherwise the changes it took in are still owed and timed on).
    pub fn record_pass(&self, complete: bool) {
        let now = Instant::now();
        let started = self.with_passes(|p| {
            p.last_progress = now;
            p.started.take()
        });
        self.passes.inc();
        if let Some(started) = started {
            self.pass_duration
                .observe(now.saturating_duration_since(started).as_secs_f64());
        }
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        self.last_pass_timestamp.set(unix.as_secs_f64());
        self.profile_changes.pass_ends(complete);
    }

    /// When the loop last completed a pass, or when the agent started if it has not yet.
    pub fn last_progress(&self) -> Instant {
        self.with_passes(|p| p.last_progress)
    }

    /// The clock the SeccompProfile watch notes its changes on.
    pub fn profile_changes(&self) -> Arc<ChangeClock> {
        self.profile_changes.clone()
    }

    /// The clock the status writer's report watch notes its changes on.
    pub fn report_changes(&self) -> Arc<ChangeClock> {
        self.report_changes.clone()
    }

    /// A status write waits for the write budget (`--writes-per-second`).
    pub fn record_status_write_throttled(&self) {
        self.status_write_throttles.inc();
    }

    /// A status write was made: counted, and timed from the report change its pass took in,
    /// if any.
    pub fn record_status_written(&self) {
        self.status_writes.inc();
        if let Some(age) = self.report_changes.age() {
            self.report_to_status.observe(age.as_secs_f64());
        }
    }

    /// How many deleted profiles are kept because pods on the node use them.
    pub fn set_retained(&self, count: usize) {
        self.retained.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The first complete sync is done: the node holds every profile the API has.
    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::Release);
        self.synced_gauge.set(1);
        self.update_ready();
    }

    /// Whether the first complete sync is done.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// The node no longer carries the agent-not-ready taint (removed, or never there).
    pub fn set_untainted(&self) {
        self.untainted.store(true, Ordering::Release);
        self.update_ready();
    }

    /// Ready for confined pods: the first complete sync is done and the node is untainted.
    pub fn ready(&self) -> bool {
        self.synced() && self.untainted.load(Ordering::Acquire)
    }

    fn update_ready(&self) {
        self.ready_gauge.set(i64::from(self.ready()));
    }

    /// Every metric in the Prometheus text exposition format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    fn with_passes<T>(&self, f: impl FnOnce(&mut PassClock) -> T) -> T {
        // Each step is a plain store: the state is whole whatever a panicking holder did.
        f(&mut self
            .passes_clock
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line that starts with `series` (name and labels).
    fn sample(m: &Metrics, series: &str) -> f64 {
        let text = m.render().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
    }

    #[test]
    fn counters_and_gauges_appear_in_the_exposition() {
        let m = Metrics::default();
        m.record(FileChange::Installed);
        m.record(FileChange::Restored);
        m.record(FileChange::Restored);
        m.record(FileChange::StrayRemoved);
        m.record_error();
        m.set_retained(3);
        m.set_synced();
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
        m.set_untainted();
        assert!(m.ready());
        assert_eq!(sample(&m, "seccompd_ready"), 1.0);
    }

    #[test]
    fn names_follow_the_prometheus_conventions() {
        let text = Metrics::default().render().unwrap();
        for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let (name, kind) = line.split_once(' ').unwrap();
            assert!(name.starts_with("seccompd_"), "{name}");
            match kind {
                "counter" => assert!(name.ends_with("_total"), "{name}"),
                "histogram" => assert!(name.ends_with("_seconds"), "{name}"),
                _ => assert!(!name.ends_with("_total"), "{name}"),
            }
        }
        assert!(text.contains("# TYPE seccompd_sync_pass_duration_seconds histogram\n"));
        assert!(text.contains("# TYPE seccompd_profile_change_to_file_seconds histogram\n"));
        assert!(text.contains("# TYPE seccompd_report_to_status_seconds histogram\n"));
        assert!(text.contains("# TYPE seccompd_last_sync_pass_timestamp_seconds gauge\n"));
    }

    #[test]
    fn a_pass_is_timed_counted_and_marks_progress() {
        let m = Metrics::default();
        let before = m.last_progress();
        m.pass_begins();
        m.record_pass(true);
        assert!(m.last_progress() > before);
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
        let m = Metrics::default();
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

    #[test]
    fn status_writes_are_timed_from_the_report_change() {
        let m = Metrics::default();
        let clock = m.report_changes();
        clock.pass_begins();
        m.record_status_written();
        clock.pass_ends(true);
        assert_eq!(sample(&m, "seccompd_report_to_status_seconds_count"), 0.0);
        clock.observed();
        clock.pass_begins();
        m.record_status_written();
        clock.pass_ends(true);
        assert_eq!(sample(&m, "seccompd_report_to_status_seconds_count"), 1.0);
    }
}
