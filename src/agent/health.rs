//! The agent's HTTP endpoint for probes and metrics (axum): `/healthz` (503 once the loop has
//! not completed a pass for far longer than it should, see [`super::liveness`]), `/readyz`
//! (503 until the first complete sync is done and the node's agent-not-ready taint is gone)
//! and `/metrics` (Prometheus text format).

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

/// What the handlers read.
#[derive(Clone, Debug)]
struct Probes {
    metrics: Arc<Metrics>,
    stall: StallLimit,
}

/// Serves probes and metrics on `addr` until the task is dropped; `/healthz` fails once the
/// loop has gone `stall` without completing a pass.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stall: StallLimit,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    axum::serve(listener, router(metrics, stall)).await
}

fn router(metrics: Arc<Metrics>, stall: StallLimit) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(exposition))
        .with_state(Probes { metrics, stall })
}

async fn healthz(State(p): State<Probes>) -> (StatusCode, String) {
    match judge(p.metrics.last_progress(), Instant::now(), p.stall) {
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

async fn readyz(State(p): State<Probes>) -> (StatusCode, &'static str) {
    readiness(p.metrics.synced(), p.metrics.ready())
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

async fn exposition(State(p): State<Probes>) -> Response {
    match p.metrics.render() {
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

    fn limit() -> StallLimit {
        StallLimit::for_longest_wait(Duration::from_secs(300))
    }

    #[tokio::test]
    async fn readiness_follows_the_first_sync_and_the_taint() {
        let m = Arc::new(Metrics::default());
        let router = router(m.clone(), limit());
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
        let router = router(Arc::new(Metrics::default()), limit());
        assert_eq!(
            get(&router, "/healthz").await,
            (StatusCode::OK, "ok\n".into())
        );
    }

    #[tokio::test]
    async fn a_loop_without_a_pass_for_longer_than_the_limit_fails_liveness() {
        let m = Arc::new(Metrics::default());
        let router = router(m.clone(), StallLimit::exactly(Duration::ZERO));
        let (status, body) = get(&router, "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("no sync pass completed for"), "{body}");
    }

    #[tokio::test]
    async fn metrics_are_served_in_the_prometheus_text_format() {
        let m = Arc::new(Metrics::default());
        m.set_synced();
        let response = router(m, limit())
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
        let router = router(Arc::new(Metrics::default()), limit());
        assert_eq!(get(&router, "/nope").await.0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn readiness_needs_both_conditions() {
        assert_eq!(readiness(false, false).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readiness(true, false).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readiness(true, true).0, StatusCode::OK);
    }
}
