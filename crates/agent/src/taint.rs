//! The agent-not-ready taint: nodes registered with `seccompd.dev/agent-not-ready:NoSchedule`
//! get no pods until this node's agent has installed every profile; the agent then removes
//! the taint from its own node, and again whenever it comes back (a node re-registered by its
//! kubelet carries it anew).

use backon::Retryable as _;
use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch as JsonPatch, PatchOperation, RemoveOperation, TestOperation};
use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use std::sync::Arc;
use tokio::sync::watch;
use tracing::{info, warn};

use super::AgentError;
use super::metrics::AgentMetrics;
use super::readiness::Readiness;
use seccompd_runtime::apiserver::api_retry;

/// Key of the taint that keeps pods off a node until its agent has synced.
pub const NOT_READY_TAINT_KEY: &str = "seccompd.dev/agent-not-ready";

/// Effect of that taint.
pub const NOT_READY_TAINT_EFFECT: &str = "NoSchedule";

/// True for the agent-not-ready taint.
pub fn is_not_ready_taint(taint: &Taint) -> bool {
    taint.key == NOT_READY_TAINT_KEY && taint.effect == NOT_READY_TAINT_EFFECT
}

/// A JSON patch that removes the first agent-not-ready taint from `node`, guarded by a `test`
/// of that very entry so that a concurrent change of the node's taints makes it fail instead
/// of removing another taint. `None` when the node has no such taint.
pub fn removal_patch(node: &Node) -> Option<JsonPatch> {
    let taints = node.spec.as_ref()?.taints.as_ref()?;
    let index = taints.iter().position(is_not_ready_taint)?;
    let path = PointerBuf::from_tokens(["spec".to_string(), "taints".into(), index.to_string()]);
    let value = serde_json::to_value(&taints[index]).ok()?;
    Some(JsonPatch(vec![
        PatchOperation::Test(TestOperation {
            path: path.clone(),
            value,
        }),
        PatchOperation::Remove(RemoveOperation { path }),
    ]))
}

/// Waits for the first complete sync (`synced` turns true), then keeps this node free of the
/// agent-not-ready taint for as long as the agent runs, following `tainted` (whether the Node
/// carries it, from the agent's one watch of its Node). Marks the node untainted in
/// `readiness` once it is free of it.
pub async fn keep_node_untainted(
    client: Client,
    node_name: String,
    mut synced: watch::Receiver<bool>,
    mut tainted: watch::Receiver<Option<bool>>,
    metrics: Arc<AgentMetrics>,
    readiness: Arc<Readiness>,
) {
    if synced.wait_for(|done| *done).await.is_err() {
        return;
    }
    let nodes = Api::<Node>::all(client);
    loop {
        let carries = *tainted.borrow_and_update();
        match carries {
            Some(true) => untaint(&nodes, &node_name, &metrics, &readiness).await,
            Some(false) => readiness.set_untainted(),
            None => {}
        }
        if tainted.changed().await.is_err() {
            return;
        }
    }
}

/// Removes the taint, retrying with backoff until it is gone. Every failure is retried,
/// refusals included: the guarded patch is refused when the node's taints moved since they
/// were read (the next attempt reads them again), a forbidden one passes once the agent's
/// role is fixed, and a Node deleted meanwhile is read again once its kubelet registers it
/// anew, tainted (the watch of the Node says nothing new then: it was tainted before).
async fn untaint(
    nodes: &Api<Node>,
    node_name: &str,
    metrics: &AgentMetrics,
    readiness: &Readiness,
) {
    let attempt = (|| try_untaint(nodes, node_name))
        .retry(api_retry())
        .notify(|err, _| {
            warn!(%err, "cannot remove the agent-not-ready taint; retrying");
            metrics.record_api_error();
        });
    match attempt.await {
        Ok(removed) => {
            if removed {
                info!(
                    taint = NOT_READY_TAINT_KEY,
                    "removed the agent-not-ready taint"
                );
            }
            readiness.set_untainted();
        }
        // Only a policy with an end gets here; `api_retry`'s has none.
        Err(err) => warn!(%err, "gave up removing the agent-not-ready taint"),
    }
}

/// One attempt on the node as it is now; `Ok(false)` when there was nothing to remove.
async fn try_untaint(nodes: &Api<Node>, node_name: &str) -> Result<bool, AgentError> {
    let kube_err = |context: &str| {
        let context = format!("{context} node {node_name}");
        move |source| AgentError::Kube { context, source }
    };
    let node = nodes.get(node_name).await.map_err(kube_err("get"))?;
    let Some(patch) = removal_patch(&node) else {
        return Ok(false);
    };
    nodes
        .patch(
            node_name,
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
        .map_err(kube_err("remove the agent-not-ready taint from"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, api_errors};
    use http::{Method, StatusCode};
    use seccompd_runtime::apiserver::mock::mock_client;
    use serde_json::json;

    #[tokio::test]
    async fn untainting_reads_the_node_then_patches_exactly_our_taint_away() {
        let (client, mut api) = mock_client();
        let taints = json!([
            {"key": "other", "effect": "NoExecute"},
            {"key": "seccompd.dev/agent-not-ready", "effect": "NoSchedule"},
        ]);
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1"}, "spec": {"taints": taints}});
        let server = tokio::spawn(async move {
            let get = api
                .expect(
                    Method::GET,
                    "/api/v1/nodes/node1",
                    &[],
                    StatusCode::OK,
                    node.clone(),
                )
                .await;
            assert_eq!(get.body, serde_json::Value::Null);
            let patch = api
                .expect(
                    Method::PATCH,
                    "/api/v1/nodes/node1",
                    &[],
                    StatusCode::OK,
                    node,
                )
                .await;
            (patch, api)
        });
        let nodes = Api::<Node>::all(client);
        assert!(try_untaint(&nodes, "node1").await.unwrap());
        let (patch, api) = server.await.unwrap();
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/json-patch+json")
        );
        assert_eq!(
            patch.body,
            json!([
                {"op": "test", "path": "/spec/taints/1",
                 "value": {"key": "seccompd.dev/agent-not-ready", "effect": "NoSchedule"}},
                {"op": "remove", "path": "/spec/taints/1"},
            ])
        );
        drop(nodes);
        api.expect_no_more().await;
    }

    #[tokio::test]
    async fn a_node_without_the_taint_is_only_read() {
        let (client, mut api) = mock_client();
        let server = tokio::spawn(async move {
            api.expect(
                Method::GET,
                "/api/v1/nodes/node1",
                &[],
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1"}}),
            )
            .await;
            api
        });
        let nodes = Api::<Node>::all(client);
        assert!(!try_untaint(&nodes, "node1").await.unwrap());
        let api = server.await.unwrap();
        drop(nodes);
        api.expect_no_more().await;
    }

    #[tokio::test(start_paused = true)]
    async fn every_failure_is_retried_until_the_taint_is_gone() {
        let (client, mut api) = mock_client();
        let metrics = testing::metrics();
        let readiness = Readiness::default();
        readiness.set_synced();
        let tainted = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1"},
            "spec": {"taints": [{"key": "seccompd.dev/agent-not-ready", "effect": "NoSchedule"}]}});
        let server = tokio::spawn(async move {
            const NODE: &str = "/api/v1/nodes/node1";
            api.refuse(Method::GET, NODE, &[], StatusCode::SERVICE_UNAVAILABLE)
                .await;
            // Deleted meanwhile: read again until its kubelet registers it anew.
            api.refuse(Method::GET, NODE, &[], StatusCode::NOT_FOUND)
                .await;
            api.expect(Method::GET, NODE, &[], StatusCode::OK, tainted.clone())
                .await;
            // The taints moved since they were read: the guarded patch is refused.
            api.refuse(Method::PATCH, NODE, &[], StatusCode::UNPROCESSABLE_ENTITY)
                .await;
            api.expect(Method::GET, NODE, &[], StatusCode::OK, tainted.clone())
                .await;
            api.expect(Method::PATCH, NODE, &[], StatusCode::OK, tainted)
                .await;
            api
        });
        let nodes = Api::<Node>::all(client);
        untaint(&nodes, "node1", &metrics, &readiness).await;
        let api = server.await.unwrap();
        assert!(readiness.ready(), "untainted once the patch went through");
        assert_eq!(api_errors(&metrics), 3.0);
        drop(nodes);
        api.expect_no_more().await;
    }

    fn node(taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n"}, "spec": {"taints": taints}}))
            .unwrap()
    }

    #[test]
    fn patch_tests_and_removes_exactly_our_taint() {
        let n = node(json!([
            {"key": "other", "effect": "NoExecute"},
            {"key": "seccompd.dev/agent-not-ready", "effect": "NoSchedule"},
        ]));
        let patch = removal_patch(&n).expect("a patch");
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!([
                {"op": "test", "path": "/spec/taints/1",
                 "value": {"key": "seccompd.dev/agent-not-ready", "effect": "NoSchedule"}},
                {"op": "remove", "path": "/spec/taints/1"},
            ])
        );
        let mut doc = serde_json::to_value(&n).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(
            doc["spec"]["taints"],
            json!([{"key": "other", "effect": "NoExecute"}])
        );
    }

    #[test]
    fn nothing_to_do_without_the_taint() {
        assert!(removal_patch(&node(json!([{"key": "other", "effect": "NoSchedule"}]))).is_none());
        assert!(
            removal_patch(&node(json!([
                {"key": "seccompd.dev/agent-not-ready", "effect": "NoExecute"}
            ])))
            .is_none(),
            "only the NoSchedule taint is ours"
        );
        assert!(removal_patch(&serde_json::from_value(json!({"metadata": {}})).unwrap()).is_none());
    }

    #[test]
    fn the_patch_fails_if_the_taints_moved_meanwhile() {
        let seen = node(json!([
            {"key": "a", "effect": "NoSchedule"},
            {"key": "seccompd.dev/agent-not-ready", "effect": "NoSchedule"},
        ]));
        let patch = removal_patch(&seen).unwrap();
        // Someone removed taint "a" before the patch arrived: index 1 no longer exists.
        let mut now = serde_json::to_value(node(json!([
            {"key": "seccompd.dev/agent-not-ready", "effect": "NoSchedule"},
        ])))
        .unwrap();
        assert!(json_patch::patch(&mut now, &patch).is_err());
    }
}
