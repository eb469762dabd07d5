//! The recorder's own metrics (a registry of its own: the agent's and the controller's
//! counters mean nothing on a recorder's `/metrics`), and the state its probes answer from.

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use seccompd_runtime::telemetry::Exposition;

/// Why a record was lost, as the `cause` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostCause {
    /// Its process had ended before its cgroup could be read.
    Unmapped,
    /// The socket's buffer overflowed (each overflow drops an unknown number of records).
    Overflow,
}

impl LostCause {
    fn label(self) -> CauseLabel {
        match self {
            Self::Unmapped => [("cause", "unmapped")],
            Self::Overflow => [("cause", "overflow")],
        }
    }
}

type CauseLabel = [(&'static str, &'static str); 1];

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
    api_errors: Counter,
    watching: AtomicBool,
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
            api_errors: e.register("api_errors", "Failed API calls"),
            exposition: e,
            watching: AtomicBool::new(false),
        };
        // Both causes from the start, so a query sees 0 rather than no series.
        for cause in [LostCause::Unmapped, LostCause::Overflow] {
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

    /// A node part written.
    pub fn record_part_write(&self) {
        self.part_writes.inc();
    }

    /// An API call failed.
    pub fn record_api_error(&self) {
        self.api_errors.inc();
    }

    /// The watches have listed everything once: the recorder is ready.
    pub fn set_watching(&self) {
        self.watching.store(true, Ordering::Relaxed);
    }

    /// Whether the watches have listed everything once.
    pub fn watching(&self) -> bool {
        self.watching.load(Ordering::Relaxed)
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
        assert_families(
            &RecorderMetrics::new().render().unwrap(),
            &[
                ("seccompd_recorder_api_errors_total", "counter"),
                ("seccompd_recorder_audit_available", "gauge"),
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
        let text = m.render().unwrap();
        for line in [
            "seccompd_recorder_records_read_total 1",
            "seccompd_recorder_records_attributed_total 1",
            "seccompd_recorder_records_lost_total{cause=\"overflow\"} 1",
            "seccompd_recorder_records_lost_total{cause=\"unmapped\"} 0",
            "seccompd_recorder_audit_available 1",
            "seccompd_recorder_kernel_audit_lost 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
    }
}
