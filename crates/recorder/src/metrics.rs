//! The recorder's own metrics (a registry of its own: the agent's and the controller's
//! counters mean nothing on a recorder's `/metrics`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use seccompd_profile::model::Action;
use seccompd_runtime::telemetry::Exposition;

/// Why a record was lost, as the `cause` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostCause {
    /// Its process had ended before its cgroup could be read.
    Unmapped,
    /// The socket's buffer overflowed (each overflow drops an unknown number of records).
    Overflow,
    /// A container's pod did not tell its profile in time (or the queue of such records was
    /// full): a possible denial not counted.
    Unresolved,
}

impl LostCause {
    fn label(self) -> CauseLabel {
        match self {
            Self::Unmapped => [("cause", "unmapped")],
            Self::Overflow => [("cause", "overflow")],
            Self::Unresolved => [("cause", "unresolved")],
        }
    }
}

type CauseLabel = [(&'static str, &'static str); 1];

/// The labels of a denial count: profile, syscall and action. Bounded by the node's tally
/// (`MAX_NODE_DENIAL_ENTRIES` keys): a record of a key the tally has no room for counts in
/// `denials_omitted` instead.
type DenialLabels = [(&'static str, String); 3];

/// Metrics and probe state of one recorder.
#[derive(Debug)]
pub struct RecorderMetrics {
    exposition: Exposition,
    /// Seccomp audit records read from the multicast group (a counter the reading thread
    /// holds a handle of).
    pub records_read: Counter,
    records_attributed: Counter,
    records_lost: Family<CauseLabel, Counter>,
    kernel_lost: Gauge,
    audit_available: Gauge,
    part_writes: Counter,
    denials: Family<DenialLabels, Counter>,
    denials_omitted: Counter,
    denial_report_writes: Counter,
    api_errors: Counter,
}

impl Default for RecorderMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RecorderMetrics {
    /// Every metric at zero, registered.
    pub fn new() -> Self {
        let mut e = Exposition::with_subsystem("recorder");
        let m = Self {
            records_read: e.register(
                "records_read",
                "Seccomp audit records read from the kernel's audit multicast group",
            ),
            records_attributed: e.register(
                "records_attributed",
                "Seccomp audit records attributed to a container",
            ),
            records_lost: e.register(
                "records_lost",
                "Records this recorder lost, by cause (overflow counts overflows, each of an unknown number of records)",
            ),
            kernel_lost: e.register(
                "kernel_audit_lost",
                "The kernel's count of dropped audit records (audit_lost, of every kind, since boot), as last read",
            ),
            audit_available: e.register(
                "audit_available",
                "1 once this recorder heard the audit record of its own probe; 0 while it cannot hear audit records",
            ),
            part_writes: e.register("part_writes", "Node parts of recordings written"),
            denials: e.register(
                "denials",
                "Calls refused (an errno, kill or trap action logged) or, under an Audit profile, that would have been (SCMP_ACT_LOG), by SeccompProfile, system call and action; at most as many series as the node's tally has entries",
            ),
            denials_omitted: e.register(
                "denials_omitted",
                "Records of containers under a seccompd profile not counted by profile because the node's tally was full",
            ),
            denial_report_writes: e.register(
                "denial_report_writes",
                "Writes of this node's SeccompDenialReport",
            ),
            api_errors: e.register("api_errors", "Failed API calls"),
            exposition: e,
        };
        // Both causes from the start, so a query sees 0 rather than no series.
        for cause in [
            LostCause::Unmapped,
            LostCause::Overflow,
            LostCause::Unresolved,
        ] {
            drop(m.records_lost.get_or_create(&cause.label()));
        }
        m
    }

    /// A record attributed to a container.
    pub fn record_attributed(&self) {
        self.records_attributed.inc();
    }

    /// A record (or an overflow) lost.
    pub fn record_lost(&self, cause: LostCause) {
        self.records_lost.get_or_create(&cause.label()).inc();
    }

    /// The kernel's `audit_lost` as just read.
    pub fn set_kernel_lost(&self, lost: u32) {
        self.kernel_lost.set(i64::from(lost));
    }

    /// Whether the recorder hears audit records.
    pub fn set_audit_available(&self, available: bool) {
        self.audit_available.set(i64::from(available));
    }

    /// `count` records of `syscall` under `profile` taken with `action`.
    pub fn record_denials(&self, profile: &str, syscall: &str, action: Action, count: u64) {
        let labels = [
            ("profile", profile.to_string()),
            ("syscall", syscall.to_string()),
            ("action", action.as_str().to_string()),
        ];
        self.denials.get_or_create(&labels).inc_by(count);
    }

    /// `count` records left out of a full tally.
    pub fn record_denials_omitted(&self, count: u64) {
        self.denials_omitted.inc_by(count);
    }

    /// `count` records lost for `cause`.
    pub fn record_lost_many(&self, cause: LostCause, count: u64) {
        self.records_lost
            .get_or_create(&cause.label())
            .inc_by(count);
    }

    /// The node's denial report written.
    pub fn record_denial_report_write(&self) {
        self.denial_report_writes.inc();
    }

    /// A node part written.
    pub fn record_part_write(&self) {
        self.part_writes.inc();
    }

    /// An API call failed.
    pub fn record_api_error(&self) {
        self.api_errors.inc();
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        self.exposition.render()
    }
}

#[cfg(test)]
mod tests {
    use seccompd_runtime::telemetry::exposition::assert_families;

    use super::*;

    #[test]
    fn a_recorder_exports_its_own_metrics_and_no_others() {
        let m = RecorderMetrics::new();
        // The denial family has a series per (profile, syscall, action) counted, none before.
        m.record_denials("ls", "mkdir", Action::Log, 1);
        assert_families(
            &m.render().unwrap(),
            &[
                ("seccompd_recorder_api_errors_total", "counter"),
                ("seccompd_recorder_audit_available", "gauge"),
                ("seccompd_recorder_denial_report_writes_total", "counter"),
                ("seccompd_recorder_denials_omitted_total", "counter"),
                ("seccompd_recorder_denials_total", "counter"),
                ("seccompd_recorder_kernel_audit_lost", "gauge"),
                ("seccompd_recorder_part_writes_total", "counter"),
                ("seccompd_recorder_records_attributed_total", "counter"),
                ("seccompd_recorder_records_lost_total", "counter"),
                ("seccompd_recorder_records_read_total", "counter"),
            ],
        );
    }

    #[test]
    fn every_series_is_exposed_from_the_start_and_counts() {
        let m = RecorderMetrics::new();
        m.records_read.inc();
        m.record_attributed();
        m.record_lost(LostCause::Overflow);
        m.set_audit_available(true);
        m.record_denials("ls", "mkdir", Action::Log, 2);
        let text = m.render().unwrap();
        for line in [
            "seccompd_recorder_records_read_total 1",
            "seccompd_recorder_records_attributed_total 1",
            "seccompd_recorder_records_lost_total{cause=\"overflow\"} 1",
            "seccompd_recorder_records_lost_total{cause=\"unmapped\"} 0",
            "seccompd_recorder_records_lost_total{cause=\"unresolved\"} 0",
            "seccompd_recorder_denials_total{profile=\"ls\",syscall=\"mkdir\",action=\"SCMP_ACT_LOG\"} 2",
            "seccompd_recorder_audit_available 1",
            "seccompd_recorder_kernel_audit_lost 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
    }
}
