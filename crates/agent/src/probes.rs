//! What the agent's `/healthz`, `/readyz` and `/metrics` answer (served by
//! [`seccompd_runtime::health`]): alive while its loop completes passes (see
//! [`crate::decide::liveness`]), ready once the first complete sync is done and the node's
//! agent-not-ready taint is gone.

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use seccompd_runtime::health::Probed;
use tracing::warn;

use crate::decide::liveness::{Liveness, StallLimit, judge};
use crate::metrics::AgentMetrics;
use crate::readiness::Readiness;

/// The agent's probes.
#[derive(Clone, Debug)]
pub struct AgentProbes {
    /// Where the loop records its progress and the two readiness conditions.
    pub readiness: Arc<Readiness>,
    /// What `/metrics` serves.
    pub metrics: Arc<AgentMetrics>,
    /// How long the loop may go without completing a pass.
    pub stall: StallLimit,
}

impl Probed for AgentProbes {
    fn liveness(&self) -> (StatusCode, String) {
        match judge(self.readiness.last_progress(), Instant::now(), self.stall) {
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
        let (status, text) = readiness(self.readiness.synced(), self.readiness.ready());
        (status, text.to_string())
    }

    fn exposition(&self) -> Result<String, std::fmt::Error> {
        self.metrics.render()
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use seccompd_runtime::health::answer;

    use super::*;

    /// The probes of an agent whose loop may stall for `stall`, and its readiness.
    fn agent(stall: StallLimit) -> (Arc<dyn Probed>, Arc<Readiness>) {
        let readiness = Arc::new(Readiness::default());
        let probes = Arc::new(AgentProbes {
            metrics: Arc::new(AgentMetrics::new(&readiness)),
            readiness: readiness.clone(),
            stall,
        });
        (probes, readiness)
    }

    fn usual() -> StallLimit {
        StallLimit::for_longest_wait(Duration::from_secs(300))
    }

    #[tokio::test]
    async fn readiness_follows_the_first_sync_and_the_taint() {
        let (probes, readiness) = agent(usual());
        let (status, _, _) = answer(probes.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        readiness.set_synced();
        let (status, _, body) = answer(probes.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("taint"), "{body}");
        readiness.set_untainted();
        assert_eq!(answer(probes, "/readyz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_fresh_agent_is_alive() {
        let (status, _, body) = answer(agent(usual()).0, "/healthz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
    }

    #[tokio::test]
    async fn a_loop_without_a_pass_for_longer_than_the_limit_fails_liveness() {
        let (probes, _) = agent(StallLimit::exactly(Duration::ZERO));
        let (status, _, body) = answer(probes, "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("no sync pass completed for"), "{body}");
    }

    #[tokio::test]
    async fn metrics_say_what_the_probes_answer() {
        let (probes, readiness) = agent(usual());
        readiness.set_synced();
        let (status, _, text) = answer(probes, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("\nseccompd_synced 1\n"), "{text}");
        assert!(text.contains("\nseccompd_ready 0\n"), "{text}");
    }

    #[test]
    fn readiness_needs_both_conditions() {
        assert_eq!(readiness(false, false).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readiness(true, false).0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(readiness(true, true).0, StatusCode::OK);
    }
}
