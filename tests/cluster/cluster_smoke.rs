//! Smoke test of the test cluster that `make cluster-up` (hack/cluster-up.sh) brings up:
//! node1 and node2 (node1 alone with `NODES=1`, as hack/lib.sh reads it), Ready, and the
//! seccompd agent DaemonSet fully rolled out on them.
//!
//! Reads the admin kubeconfig from `SECCOMPD_KUBECONFIG` (the Makefile sets it to
//! `.cluster/kubeconfig`; see crates/e2e/src/cluster). Without a cluster the test fails: it never
//! skips itself.

use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use seccompd_e2e::cluster::{client, eventually};

const NAMESPACE: &str = "seccompd-system";
const DAEMONSET: &str = "seccompd-agent";

fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The nodes hack/cluster-up.sh brings up: `NODES` (default 2) of node1, node2.
fn expected_nodes() -> Vec<String> {
    let count: usize = std::env::var("NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    (1..=count).map(|i| format!("node{i}")).collect()
}

#[tokio::test]
async fn the_nodes_are_ready() {
    let nodes: Api<Node> = Api::all(client().await);
    let list = nodes
        .list(&ListParams::default())
        .await
        .expect("listing nodes");
    let mut names: Vec<String> = list
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, expected_nodes());
    for node in &list.items {
        assert!(
            is_ready(node),
            "node {:?} is not Ready: {:?}",
            node.metadata.name,
            node.status.as_ref().and_then(|s| s.conditions.as_ref())
        );
    }
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
