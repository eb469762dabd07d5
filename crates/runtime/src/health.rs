//! The HTTP endpoint every daemon serves (axum): `/healthz`, `/readyz` and `/metrics`. What each
//! answers is the role's own [`Probed`] (the agent's, the controller's and the recorder's live in
//! their crates); this module only routes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tracing::warn;

use crate::telemetry::CONTENT_TYPE;

/// What a daemon's probes answer; each role has its own.
pub trait Probed: Send + Sync + 'static {
    /// `/healthz`.
    fn liveness(&self) -> (StatusCode, String);
    /// `/readyz`.
    fn readiness(&self) -> (StatusCode, String);
    /// `/metrics`, in the Prometheus text format.
    fn exposition(&self) -> Result<String, std::fmt::Error>;
}

/// Serves `probes` on `addr` until the task is dropped.
pub async fn serve_probes(addr: SocketAddr, probes: Arc<dyn Probed>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    axum::serve(listener, probes_router(probes)).await
}

/// The routes, answered by `probes`.
pub fn probes_router(probes: Arc<dyn Probed>) -> Router {
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

/// What `probes` answer on `path`: for the roles' unit tests.
#[cfg(feature = "test-support")]
pub async fn answer(probes: Arc<dyn Probed>, path: &str) -> (StatusCode, Option<String>, String) {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt as _;

    let request = Request::get(path).body(Body::empty());
    let Ok(request) = request else {
        return (StatusCode::BAD_REQUEST, None, String::new());
    };
    let Ok(response) = probes_router(probes).oneshot(request).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    (status, content_type, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Probed for Fixed {
        fn liveness(&self) -> (StatusCode, String) {
            (StatusCode::OK, "alive\n".into())
        }
        fn readiness(&self) -> (StatusCode, String) {
            (StatusCode::SERVICE_UNAVAILABLE, "not yet\n".into())
        }
        fn exposition(&self) -> Result<String, std::fmt::Error> {
            Ok("# EOF\n".into())
        }
    }

    #[tokio::test]
    async fn each_path_answers_from_the_roles_probes() {
        let probes: Arc<dyn Probed> = Arc::new(Fixed);
        let (status, _, body) = answer(probes.clone(), "/healthz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alive\n"));
        let (status, _, body) = answer(probes.clone(), "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "not yet\n")
        );
        let (status, content_type, _) = answer(probes, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE));
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found() {
        assert_eq!(
            answer(Arc::new(Fixed), "/nope").await.0,
            StatusCode::NOT_FOUND
        );
    }
}
