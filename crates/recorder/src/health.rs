//! What the recorder's probes answer: alive while it serves, ready once its watches have
//! listed everything (whether it can hear audit records is a metric and a part of each
//! recording, not a readiness condition: a node that cannot hear them is still a working
//! recorder that says so).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;

use super::metrics::RecorderMetrics;
use seccompd_runtime::health::Probed;

/// Whether the recorder is ready: its watches have listed everything once.
#[derive(Debug, Default)]
pub struct Readiness {
    watching: AtomicBool,
}

impl Readiness {
    /// The watches have listed everything once.
    pub fn set_watching(&self) {
        self.watching.store(true, Ordering::Relaxed);
    }

    /// Whether the watches have listed everything once.
    pub fn watching(&self) -> bool {
        self.watching.load(Ordering::Relaxed)
    }
}

/// The recorder's probes.
#[derive(Debug)]
pub struct RecorderProbes {
    /// What `/metrics` exports.
    pub metrics: Arc<RecorderMetrics>,
    /// What `/readyz` answers from.
    pub readiness: Arc<Readiness>,
}

impl Probed for RecorderProbes {
    fn liveness(&self) -> (StatusCode, String) {
        (StatusCode::OK, "ok\n".into())
    }

    fn readiness(&self) -> (StatusCode, String) {
        if self.readiness.watching() {
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
        let readiness = Arc::new(Readiness::default());
        let probes = RecorderProbes {
            metrics: Arc::new(RecorderMetrics::new()),
            readiness: readiness.clone(),
        };
        assert_eq!(probes.liveness().0, StatusCode::OK);
        assert_eq!(probes.readiness().0, StatusCode::SERVICE_UNAVAILABLE);
        readiness.set_watching();
        assert_eq!(probes.readiness().0, StatusCode::OK);
        assert!(
            probes
                .exposition()
                .unwrap()
                .contains("seccompd_recorder_records_read_total")
        );
    }
}
