//! The controller's metrics: the elected status writer's writes, the ones the API server
//! pushed back, its failed API calls, and how long a node report's change takes to reach a
//! status. A registry of the controller's own: it exports none of the agents' metrics.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use seccompd_runtime::telemetry::{ChangeClock, Exposition};

/// The metrics of one controller replica (only the elected one writes statuses).
#[derive(Debug)]
pub struct ControllerMetrics {
    exposition: Exposition,
    status_writes: Counter,
    status_write_pushbacks: Counter,
    api_errors: Counter,
    report_to_status: Histogram,
    report_changes: Arc<ChangeClock>,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ControllerMetrics {
    /// Every metric at zero, registered.
    pub fn new() -> Self {
        let mut e = Exposition::new();
        Self {
            status_writes: e.register(
                "status_writes",
                "SeccompProfile statuses written by the elected controller",
            ),
            status_write_pushbacks: e.register(
                "status_write_pushbacks",
                "Status writes the API server answered with 429 Too Many Requests (its flow control); each is tried again after a backoff",
            ),
            api_errors: e.register("api_errors", "Failed API calls (status writes)"),
            report_to_status: e.register_latency(
                "report_to_status",
                "From a node report change seen by the status writer to a profile status written",
            ),
            exposition: e,
            report_changes: Arc::default(),
        }
    }

    /// A call to the API server failed (a status write).
    pub fn record_api_error(&self) {
        self.api_errors.inc();
    }

    /// The clock the status writer's report watch notes its changes on.
    pub fn report_changes(&self) -> Arc<ChangeClock> {
        self.report_changes.clone()
    }

    /// The API server answered a status write with 429 (it is tried again later).
    pub fn record_status_write_pushed_back(&self) {
        self.status_write_pushbacks.inc();
    }

    /// A status write was made: counted, and timed from the report change its pass took in,
    /// if any.
    pub fn record_status_written(&self) {
        self.status_writes.inc();
        if let Some(age) = self.report_changes.age() {
            self.report_to_status.observe(age.as_secs_f64());
        }
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        self.exposition.render()
    }
}

#[cfg(test)]
mod tests {
    use seccompd_runtime::telemetry::exposition::{assert_families, sample};

    use super::*;

    fn count(m: &ControllerMetrics, series: &str) -> f64 {
        let text = m.render().unwrap();
        sample(&text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
    }

    #[test]
    fn a_controller_exports_its_own_metrics_and_no_others() {
        assert_families(
            &ControllerMetrics::new().render().unwrap(),
            &[
                ("seccompd_api_errors_total", "counter"),
                ("seccompd_report_to_status_seconds", "histogram"),
                ("seccompd_status_write_pushbacks_total", "counter"),
                ("seccompd_status_writes_total", "counter"),
            ],
        );
    }

    #[test]
    fn status_writes_are_counted_and_timed_from_the_report_change() {
        let m = ControllerMetrics::new();
        let clock = m.report_changes();
        clock.pass_begins();
        m.record_status_written();
        clock.pass_ends(true);
        assert_eq!(count(&m, "seccompd_status_writes_total"), 1.0);
        assert_eq!(count(&m, "seccompd_report_to_status_seconds_count"), 0.0);
        clock.observed();
        clock.pass_begins();
        m.record_status_written();
        m.record_status_write_pushed_back();
        m.record_api_error();
        clock.pass_ends(true);
        assert_eq!(count(&m, "seccompd_report_to_status_seconds_count"), 1.0);
        assert_eq!(count(&m, "seccompd_status_write_pushbacks_total"), 1.0);
        assert_eq!(count(&m, "seccompd_api_errors_total"), 1.0);
    }
}
