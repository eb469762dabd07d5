//! What the controller's `/healthz`, `/readyz` and `/metrics` answer (served by
//! [`seccompd_runtime::health`]): alive and ready while it serves, since a replica that is not
//! elected is a ready standby.

use std::sync::Arc;

use axum::http::StatusCode;
use seccompd_runtime::health::Probed;

use crate::metrics::ControllerMetrics;

/// The controller's probes.
#[derive(Clone, Debug)]
pub struct ControllerProbes {
    /// What `/metrics` serves.
    pub metrics: Arc<ControllerMetrics>,
}

impl Probed for ControllerProbes {
    fn liveness(&self) -> (StatusCode, String) {
        (StatusCode::OK, "ok\n".into())
    }

    fn readiness(&self) -> (StatusCode, String) {
        (StatusCode::OK, "serving\n".into())
    }

    fn exposition(&self) -> Result<String, std::fmt::Error> {
        self.metrics.render()
    }
}

#[cfg(test)]
mod tests {
    use seccompd_runtime::health::answer;

    use super::*;

    #[tokio::test]
    async fn the_controller_is_alive_and_ready_while_it_serves() {
        let probes = Arc::new(ControllerProbes {
            metrics: Arc::new(ControllerMetrics::new()),
        });
        for path in ["/healthz", "/readyz", "/metrics"] {
            assert_eq!(
                answer(probes.clone(), path).await.0,
                StatusCode::OK,
                "{path}"
            );
        }
    }
}
