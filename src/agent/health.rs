//! The HTTP endpoint for probes and metrics (axum) of every daemon; what it answers is each
//! role's [`Probed`]. The agent's and the controller's:
//! `/healthz` (the agent's: 503 once the loop has not completed a pass for far longer than it
//! should, see [`super::liveness`]), `/readyz` (the agent's: 503 until the first complete sync
//! is done and the node's agent-not-ready taint is gone) and `/metrics` (Prometheus text
//! format). The controller is alive and ready while it serves: a replica that is not elected
//! is a ready standby.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tracing::warn;

use super::decide::liveness::{Liveness, StallLimit, judge};
use crate::telemetry::Metrics;
use crate::telemetry::metrics::CONTENT_TYPE;

/// Whose probes are served.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// A node agent, whose loop must complete a pass within `stall`.
    Agent {
        /// How long the loop may go without completing a pass.
        stall: StallLimit,
    },
    /// The controller: alive and ready while it serves.
    Controller,
}

/// What a daemon's probes answer; each role has its own.
pub trait Probed: Send + Sync + 'static {
    /// `/healthz`.
    fn liveness(&self) -> (StatusCode, String);
    /// `/readyz`.
    fn readiness(&self) -> (StatusCode, String);
    /// `/metrics`, in the Prometheus text format.
    fn exposition(&self) -> Result<String, std::fmt::Error>;
}

/// The agent's and the controller's probes, from their metrics.
#[derive(Clone, Debug)]
struct RoleProbes {
    metrics: Arc<Metrics>,
    role: Role,
}

impl Probed for RoleProbes {
    fn liveness(&self) -> (StatusCode, String) {
        let Role::Agent { stall } = self.role else {
            return (StatusCode::OK, "ok\n".into());
        };
        match judge(self.metrics.last_progress(), Instant::now(), stall) {
            Liveness::Alive => (StatusCode::OK, "ok\n".into()),
            Liveness::Stalled { since, limit } => {
                warn!(
                    ?since,
                    ?limit,
                    "no sync pass completed for too long; failing liveness"
                );
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("no sync pass completed for {since:?} (limit {limit:?})\n"),
                )
            }
        }
    }

    fn readiness(&self) -> (StatusCode, String) {
        let (status, text) = match self.role {
            Role::Agent { .. } => readiness(self.metrics.synced(), self.metrics.ready()),
            Role::Controller => (StatusCode::OK, "serving\n"),
        };
        (status, text.to_string())
    }

    fn exposition(&self) -> Result<String, std::fmt::Error> {
        self.metrics.render()
    }
}

/// Serves probes and metrics on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, role: Role) -> std::io::Result<()> {
    serve_probes(addr, Arc::new(RoleProbes { metrics, role })).await
}

/// Serves `probes` on `addr` until the task is dropped.
pub async fn serve_probes(addr: SocketAddr, probes: Arc<dyn Probed>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    axum::serve(listener, probes_router(probes)).await
}

#[cfg(test)]
fn router(metrics: Arc<Metrics>, role: Role) -> Router {
    probes_router(Arc::new(RoleProbes { metrics, role }))
}

fn probes_router(probes: Arc<dyn Probed>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(exposition))
        .with_state(probes)
}

async fn healthz(State(p): State<Arc<dyn Probed>>) -> (StatusCode, String) {
    p.liveness()
}

async fn readyz(State(p): State<Arc<dyn Probed>>) -> (StatusCode, String) {
    p.readiness()
}

/// `/readyz`'s answer from the agent's two conditions.
fn readiness(synced: bool, ready: bool) -> (StatusCode, &'static str) {
    match (synced, ready) {
        (_, true) => (StatusCode::OK, "synced\n"),
        (true, false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "synced; removing the node's agent-not-ready taint\n",
        ),
        (false, false) => (StatusCode::SERVICE_UNAVAILABLE, "first sync not complete\n"),
    }
}

async fn exposition(State(p): State<Arc<dyn Probed>>) -> Response {
    match p.exposition() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(err) => {
            warn!(%err, "cannot encode the metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the metrics\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    async fn get(router: &Router, path: &str) -> (StatusCode, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn agent() -> Role {
        Role::Agent {
            stall: StallLimit::for_longest_wait(Duration::from_secs(300)),
        }
    }

    #[tokio::test]
    async fn readiness_follows_the_first_sync_and_the_taint() {
        let m = Arc::new(Metrics::default());
        let router = router(m.clone(), agent());
        assert_eq!(
            get(&router, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        m.set_synced();
        let (status, body) = get(&router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("taint"), "{body}");
        m.set_untainted();
        assert_eq!(get(&router, "/readyz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_fresh_agent_is_alive() {
        let router = router(Arc::new(Metrics::default()), agent());
        assert_eq!(
            get(&router, "/healthz").await,
            (StatusCode::OK, "ok\n".into())
        );
    }

    #[tokio::test]
    async fn a_loop_without_a_pass_for_longer_than_the_limit_fails_liveness() {
        let m = Arc::new(Metrics::default());
        let router = router(
            m.clone(),
            Role::Agent {
                stall: StallLimit::exactly(Duration::ZERO),
            },
        );
        let (status, body) = get(&router, "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("no sync pass completed for"), "{body}");
    }

    #[tokio::test]
    async fn metrics_are_served_in_the_prometheus_text_format() {
        let m = Arc::new(Metrics::default());
        m.set_synced();
        let response = router(m, agent())
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("\nseccompd_synced 1\n"), "{text}");
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found() {
        let router = router(Arc::new(Metrics::default()), agent());
        assert_eq!(get(&router, "/nope").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_controller_is_alive_and_ready_while_it_serves() {
        let router = router(Arc::new(Metrics::default()), Role::Controller);
        assert_eq!(get(&router, "/healthz").await.0, StatusCode::OK);
        assert_eq!(get(&router, "/readyz").await.0, StatusCode::OK);
        assert_eq!(get(&router, "/metrics").await.0, StatusCode::OK);
    }

    #[test]
    fn readiness_needs_both_conditions() {
        assert_eq!(readiness(false, false).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readiness(true, false).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readiness(true, true).0, StatusCode::OK);
    }
}
