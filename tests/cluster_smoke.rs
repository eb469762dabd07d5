//! Smoke test of the test cluster that `make cluster-up` (hack/cluster-up.sh) brings up:
//! exactly one node, Ready, and the seccompd agent DaemonSet fully rolled out on it.
//!
//! Reads the admin kubeconfig from `SECCOMPD_KUBECONFIG` (the Makefile sets it to
//! `.cluster/kubeconfig`; see tests/common). Without a cluster the test fails: it never
//! skips itself.

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use common::{client, eventually};

const NAMESPACE: &str = "seccompd-system";
const DAEMONSET: &str = "seccompd-agent";

fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[tokio::test]
async fn one_node_is_ready() {
    let nodes: Api<Node> = Api::all(client().await);
    let list = nodes
        .list(&ListParams::default())
        .await
        .expect("listing nodes");
    let names: Vec<_> = list.items.iter().map(|n| n.metadata.name.clone()).collect();
    assert_eq!(
        list.items.len(),
        1,
        "expected exactly one node, got {names:?}"
    );
    assert!(
        is_ready(&list.items[0]),
        "node {:?} is not Ready: {:?}",
        names[0],
        list.items[0]
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
    );
}

/// Fully rolled out: the controller has seen the current spec, and every node that should
/// run the agent runs the current version of it, ready and available.
fn rolled_out(ds: &DaemonSet) -> bool {
    let Some(status) = ds.status.as_ref() else {
        return false;
    };
    let desired = status.desired_number_scheduled;
    status.observed_generation == ds.metadata.generation
        && desired >= 1
        && status.number_ready == desired
        && status.updated_number_scheduled == Some(desired)
        && status.number_available == Some(desired)
}

#[tokio::test]
async fn agent_daemonset_is_ready() {
    let daemonsets: Api<DaemonSet> = Api::namespaced(client().await, NAMESPACE);
    // cluster-up already waited for the rollout; allow a little slack all the same.
    eventually(
        &format!("daemonset {NAMESPACE}/{DAEMONSET} fully ready"),
        Duration::from_secs(60),
        || async {
            let ds = daemonsets.get(DAEMONSET).await.map_err(|e| e.to_string())?;
            if rolled_out(&ds) {
                Ok(())
            } else {
                Err(format!("{:?}", ds.status))
            }
        },
    )
    .await;
}
