//! What the recorder's probes answer: alive while it serves, ready once its watches have
//! listed everything (whether it can hear audit records is a metric and a part of each
//! recording, not a readiness condition: a node that cannot hear them is still a working
//! recorder that says so).

use std::sync::Arc;

use axum::http::StatusCode;

use super::metrics::RecorderMetrics;
use seccompd_runtime::health::Probed;

/// The recorder's probes.
#[derive(Debug)]
pub struct RecorderProbes {
    /// Its metrics and flags.
    pub metrics: Arc<RecorderMetrics>,
}

impl Probed for RecorderProbes {
    fn liveness(&self) -> (StatusCode, String) {
        (StatusCode::OK, "ok\n".into())
    }

    fn readiness(&self) -> (StatusCode, String) {
        if self.metrics.watching() {
            (StatusCode::OK, "watching\n".into())
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the pod and recording watches have not listed yet\n".into(),
            )
        }
    }

    fn exposition(&self) -> Result<String, std::fmt::Error> {
        self.metrics.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_watching() {
        let metrics = Arc::new(RecorderMetrics::new());
        let probes = RecorderProbes {
            metrics: metrics.clone(),
        };
        assert_eq!(probes.liveness().0, StatusCode::OK);
        assert_eq!(probes.readiness().0, StatusCode::SERVICE_UNAVAILABLE);
        metrics.set_watching();
        assert_eq!(probes.readiness().0, StatusCode::OK);
        assert!(
            probes
                .exposition()
                .unwrap()
                .contains("seccompd_recorder_records_read_total")
        );
    }
}
