//! New nodes on the real node: node1 is registered anew by its kubelet, with the taint
//! `seccompd.dev/agent-not-ready:NoSchedule` from its configuration (hack/cluster-up.sh), before
//! any agent runs there. A pod that references a seccompd profile stays Pending; once the agent
//! runs, it installs the profile, removes the taint and only then reports ready, and the pod
//! lands on the node after its file exists.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use seccompd_e2e::cluster::{client, eventually, kubectl, kubectl_ok, node_profile_path, unique};
use seccompd_e2e::lifecycle::component::StoppedComponent;
use seccompd_e2e::lifecycle::{
    self, AGENT_NAMESPACE, agent_pods, create_pod, create_profile, delete_pod, delete_profile,
    denylist, sleeper,
};

const TAINT: &str = "seccompd.dev/agent-not-ready";

/// Keeps the DaemonSet's pods off every node (a nodeSelector label no node has, beside the
/// DaemonSet's own `kubernetes.io/os`); dropping it lets them back, also when the test fails.
struct ParkedAgent;

impl ParkedAgent {
    fn park() -> Self {
        kubectl_ok(&[
            "-n",
            AGENT_NAMESPACE,
            "patch",
            "ds/seccompd-agent",
            "--type=merge",
            "-p",
            r#"{"spec":{"template":{"spec":{"nodeSelector":{"seccompd.dev/test-parked":"true"}}}}}"#,
        ]);
        Self
    }

    /// Lets the DaemonSet place its pod again.
    fn unpark(&self) {
        kubectl_ok(&UNPARK);
    }
}

impl Drop for ParkedAgent {
    fn drop(&mut self) {
        // Best effort: it may be undone already. The agent then removes the taint.
        let _ = kubectl(&UNPARK);
    }
}

/// Removes the nodeSelector label that parks the DaemonSet (a merge patch's null), and only
/// that one.
const UNPARK: [&str; 7] = [
    "-n",
    AGENT_NAMESPACE,
    "patch",
    "ds/seccompd-agent",
    "--type=merge",
    "-p",
    r#"{"spec":{"template":{"spec":{"nodeSelector":{"seccompd.dev/test-parked":null}}}}}"#,
];

/// Puts the taint back on node1, as an admin or a tool might.
fn taint_node1() {
    kubectl_ok(&[
        "taint",
        "node",
        "node1",
        &format!("{TAINT}:NoSchedule"),
        "--overwrite",
    ]);
}

fn has_taint(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| t.key == TAINT))
}

#[tokio::test]
async fn node_registered_with_the_taint_gets_no_confined_pod_before_its_profile_file_exists() {
    let client = client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let parked = ParkedAgent::park();
    eventually(
        "the agent pod to be gone",
        Duration::from_secs(60),
        || async {
            let left = agent_pods();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    )
    .await;

    // node1 joins anew: with its kubelet stopped, its Node object is deleted; the restarted
    // kubelet registers it again, with the taints of its configuration, as on a new node.
    let old_uid = nodes.get("node1").await.expect("get node1").metadata.uid;
    let kubelet = StoppedComponent::stop("kubelet");
    kubectl_ok(&["delete", "node", "node1", "--wait=true", "--timeout=60s"]);
    kubelet.restart();
    let registered = eventually(
        "the kubelet to register node1 again",
        Duration::from_secs(120),
        || async {
            match nodes.get_opt("node1").await.map_err(|e| e.to_string())? {
                Some(node) if node.metadata.uid != old_uid => Ok(node),
                Some(_) => Err("still the old Node object".to_string()),
                None => Err("not registered yet".to_string()),
            }
        },
    )
    .await;
    assert!(
        has_taint(&registered),
        "node1 was registered without {TAINT}: {:?}",
        registered.spec.and_then(|s| s.taints)
    );
    // Ready and without the node controller's not-ready taint, so that only seccompd's taint
    // can hold pods back.
    eventually(
        "node1 to be Ready with only seccompd's taint",
        Duration::from_secs(120),
        || async {
            let node = nodes.get("node1").await.map_err(|e| e.to_string())?;
            let ready = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            let taints: Vec<String> = node
                .spec
                .and_then(|s| s.taints)
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.key)
                .collect();
            if ready && taints == [TAINT] {
                Ok(())
            } else {
                Err(format!("ready: {ready}, taints: {taints:?}"))
            }
        },
    )
    .await;

    // A profile and a pod using it, created while no agent runs on the tainted node.
    let profile = unique("new-node");
    let path = node_profile_path(&profile);
    let want = create_profile(&client, &profile, &denylist(&["mkdir"])).await;
    let pod = unique("early");
    create_pod(
        &client,
        &sleeper(&pod, None, Some(&format!("seccompd/{profile}.json"))),
    )
    .await;
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(5) {
        let p = pods.get(&pod).await.expect("get pod");
        let node_name = p.spec.as_ref().and_then(|s| s.node_name.clone());
        assert_eq!(node_name, None, "no pod may land on the tainted node");
        assert!(!path.exists(), "no agent, no file");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let p = pods.get(&pod).await.expect("get pod");
    let unschedulable = p
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
    // The scheduler's message does not name the taint (1.35: "had untolerated taint(s)");
    // seccompd's is the only taint node1 has (checked above).
    assert!(
        unschedulable,
        "the scheduler holds the pod back because of the taint"
    );

    // The agent arrives: every observation must have the file before the pod's binding and
    // before the agent's readiness.
    parked.unpark();
    let mut bound_seen = false;
    let mut ready_seen = false;
    let start = Instant::now();
    while !(bound_seen && ready_seen) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "bound: {bound_seen}, agent ready: {ready_seen}"
        );
        // Observe first, then look at the file: it is never removed once written, so a
        // file missing now was missing when the binding or the readiness was observed.
        let ready_now = agent_pods().iter().any(|(_, ready)| *ready);
        let bound_now = pods
            .get(&pod)
            .await
            .expect("get pod")
            .spec
            .and_then(|s| s.node_name)
            .is_some();
        let file_there = std::fs::read(&path).is_ok_and(|b| b == *want.bytes);
        if bound_now && !bound_seen {
            assert!(
                file_there,
                "the pod was bound before its profile file existed"
            );
            bound_seen = true;
        }
        if ready_now && !ready_seen {
            assert!(
                file_there,
                "the agent was ready before the profile file existed"
            );
            let node = nodes.get("node1").await.expect("get node1");
            assert!(
                !has_taint(&node),
                "the agent was ready while the taint was still on"
            );
            ready_seen = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "pod bound and agent ready {:?} after the agent came back",
        start.elapsed()
    );
    let node = nodes.get("node1").await.expect("get node1");
    assert!(!has_taint(&node), "the agent removed the taint");
    lifecycle::wait_agents_rolled_out();
    lifecycle::wait_running(&client, &pod).await;
    drop(parked);

    // The taint put back on a node whose agent runs is removed again.
    taint_node1();
    eventually(
        "the agent to remove the taint again",
        Duration::from_secs(30),
        || async {
            let node = nodes.get("node1").await.map_err(|e| e.to_string())?;
            if has_taint(&node) {
                Err("still tainted".to_string())
            } else {
                Ok(())
            }
        },
    )
    .await;

    delete_pod(&client, &pod).await;
    delete_profile(&client, &profile).await;
}
