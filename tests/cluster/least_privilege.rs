//! Least privilege on the test cluster: what each ServiceAccount may do is exactly what the
//! docs/security-model.md lists; an agent's pod-bound token can write only its own node's
//! objects (manifests/admission-policies.yaml); the controller, not the agents, writes
//! statuses; and only the nodes the agents' DaemonSet selects count in a status.
//!
//! Needs the cluster of `make cluster-up` with seccompd deployed from manifests/. The writes
//! made with an agent's token are dry runs (admission still judges them), so no test here
//! changes what the real agents wrote.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use seccompd_api::SeccompProfile;
use seccompd_api::node_report::SeccompNodeReport;
use seccompd_e2e::cluster::tokens::{
    self, allowed, client_with_token, dry_patch, dry_post, forbidden, token_bound_to_pod,
};
use seccompd_e2e::cluster::{
    self, client, eventually, granted_and_documented_can_i, kubectl, kubectl_ok, node_names, unique,
};
use seccompd_e2e::lifecycle::{
    AGENT_NAMESPACE, NODE, create_profile, delete_profile, denylist, wait_controller_ready,
    wait_for_bytes, wait_status,
};
use serde_json::{Value, json};

const AGENT_SA: &str = "system:serviceaccount:seccompd-system:seccompd-agent";
const CONTROLLER_SA: &str = "system:serviceaccount:seccompd-system:seccompd-controller";
const AGENT_SELECTOR: &str = "app.kubernetes.io/name=seccompd,app.kubernetes.io/component=agent";
const CONTROLLER_SELECTOR: &str =
    "app.kubernetes.io/name=seccompd,app.kubernetes.io/component=controller";
const TAINT: &str = "seccompd.dev/agent-not-ready";
/// The policy's name, which the API server puts into every denial it makes.
const POLICY: &str = "ValidatingAdmissionPolicy 'seccompd-agent-node-restriction'";
/// node2's kubelet root as the host sees it (hack/lib.sh: NODE2_KUBELET_ROOT).
const NODE2_KUBELET_ROOT: &str = "/var/lib/seccompd-e2e/node2/kubelet";
const WAIT: Duration = Duration::from_secs(90);

/// Tests that scale the controller or add Nodes must not overlap with each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[test]
fn each_service_account_may_do_exactly_what_the_readme_lists() {
    for user in [AGENT_SA, CONTROLLER_SA] {
        let (granted, documented) = granted_and_documented_can_i(user, AGENT_NAMESPACE);
        assert!(
            granted
                .iter()
                .any(|row| row.starts_with("seccompprofiles.seccompd.dev ")),
            "{user} reads the profiles: {granted:?}"
        );
        assert_eq!(
            granted, documented,
            "`kubectl auth can-i --list --as={user}` (left) and docs/security-model.md (right)"
        );
    }
}

/// A token of the agents' ServiceAccount bound to the agent pod on `node`.
fn agent_token_bound_to_pod_on(node: &str) -> String {
    token_bound_to_pod("seccompd-agent", AGENT_SELECTOR, node)
}

fn dry_apply() -> PatchParams {
    tokens::dry_apply("seccompd-agent")
}

fn report(node: &str) -> Value {
    json!({
        "apiVersion": "seccompd.dev/v1alpha1",
        "kind": "SeccompNodeReport",
        "metadata": {"name": node},
        "spec": {"synced": true, "exceptions": []},
    })
}

fn event(regarding: Value, related: Option<Value>) -> Event {
    serde_json::from_value(json!({
        "metadata": {"generateName": "least-privilege-", "namespace": "default"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "type": "Normal",
        "reason": "LeastPrivilegeTest",
        "action": "Test",
        "note": "tests/cluster/least_privilege.rs",
        "reportingController": "seccompd.dev/agent",
        "reportingInstance": NODE,
        "regarding": regarding,
        "related": related,
    }))
    .expect("an event")
}

fn node_ref(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "name": name})
}

/// Writes with a token bound to node1's agent pod: its own node's report and events are
/// allowed; anything about another node, any other change of its Node and any status are not.
#[tokio::test]
async fn an_agent_token_bound_to_its_pod_writes_only_its_own_nodes_objects() {
    let other = unique("elsewhere");
    let agent = client_with_token(&agent_token_bound_to_pod_on(NODE)).await;
    let reports: Api<SeccompNodeReport> = Api::all(agent.clone());
    let nodes: Api<Node> = Api::all(agent.clone());
    let events: Api<Event> = Api::namespaced(agent.clone(), "default");

    allowed(
        "applying its own report",
        reports
            .patch(NODE, &dry_apply(), &Patch::Apply(report(NODE)))
            .await,
    );
    let message = forbidden(
        "applying another node's report",
        reports
            .patch(&other, &dry_apply(), &Patch::Apply(report(&other)))
            .await,
    );
    assert!(message.contains(POLICY), "{message}");
    assert!(
        message.contains(&format!(
            "may create and patch only the SeccompNodeReport named {NODE}"
        )),
        "{message}"
    );

    // Another node's real Node object.
    let others: Vec<String> = node_names().into_iter().filter(|n| n != NODE).collect();
    assert!(
        !others.is_empty(),
        "this test needs node2 (`make cluster-up`, not NODES=1)"
    );
    for node in others {
        let message = forbidden(
            "patching another node",
            nodes
                .patch(
                    &node,
                    &dry_patch(),
                    &Patch::Merge(json!({"metadata": {"labels": {"seccompd.dev/test": "x"}}})),
                )
                .await,
        );
        assert!(message.contains(POLICY), "{message}");
        assert!(message.contains("may patch only its own Node"), "{message}");
    }

    let own_node_changes = [
        (
            "adding a label",
            json!({"metadata": {"labels": {"seccompd.dev/test": "x"}}}),
        ),
        (
            "adding an annotation",
            json!({"metadata": {"annotations": {"seccompd.dev/test": "x"}}}),
        ),
        ("cordoning", json!({"spec": {"unschedulable": true}})),
    ];
    for (what, patch) in own_node_changes {
        let message = forbidden(
            what,
            nodes.patch(NODE, &dry_patch(), &Patch::Merge(patch)).await,
        );
        assert!(message.contains(POLICY), "{what}: {message}");
        assert!(
            message.contains("may only remove the seccompd.dev/agent-not-ready:NoSchedule taint"),
            "{what}: {message}"
        );
    }
    let message = forbidden(
        "adding a different taint",
        nodes
            .patch(
                NODE,
                &dry_patch(),
                &Patch::Json::<()>(
                    serde_json::from_value(json!([
                        {"op": "add", "path": "/spec/taints", "value": []},
                        {"op": "add", "path": "/spec/taints/-",
                         "value": {"key": "seccompd.dev/test", "effect": "NoSchedule"}},
                    ]))
                    .expect("a JSON patch"),
                ),
            )
            .await,
    );
    assert!(message.contains(POLICY), "{message}");

    // Statuses are the controller's: RBAC already refuses the agents (the policy would too).
    let profiles: Api<SeccompProfile> = Api::all(agent.clone());
    let message = forbidden(
        "patching a SeccompProfile status",
        profiles
            .patch_status(
                "any",
                &dry_patch(),
                &Patch::Merge(json!({"status": {"phase": "Installed"}})),
            )
            .await,
    );
    assert!(
        message.contains("cannot patch resource \"seccompprofiles/status\""),
        "{message}"
    );

    let dry = dry_post();
    allowed(
        "an event regarding its own Node",
        events.create(&dry, &event(node_ref(NODE), None)).await,
    );
    let message = forbidden(
        "an event regarding another node",
        events.create(&dry, &event(node_ref(&other), None)).await,
    );
    assert!(message.contains(POLICY), "{message}");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": "web"});
    allowed(
        "an event regarding a pod with its Node related",
        events
            .create(&dry, &event(pod.clone(), Some(node_ref(NODE))))
            .await,
    );
    let message = forbidden(
        "an event regarding a pod with another node related",
        events
            .create(&dry, &event(pod, Some(node_ref(&other))))
            .await,
    );
    assert!(message.contains(POLICY), "{message}");
}

/// The real agent removes the taint with its own pod-bound token: the one change of its Node
/// the policy allows.
#[tokio::test]
async fn the_agent_removes_its_own_nodes_taint_under_the_policy() {
    let admin = client().await;
    let nodes: Api<Node> = Api::all(admin);
    kubectl_ok(&[
        "taint",
        "node",
        NODE,
        &format!("{TAINT}:NoSchedule"),
        "--overwrite",
    ]);
    eventually("the agent to remove the taint", WAIT, || async {
        let node = nodes.get(NODE).await.map_err(|e| e.to_string())?;
        let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
        if taints.iter().any(|t| t.key == TAINT) {
            Err(format!("{taints:?}"))
        } else {
            Ok(())
        }
    })
    .await;
}

/// A token of the agents' ServiceAccount that is not bound to a pod carries no node name:
/// the policy refuses every write of it.
#[tokio::test]
async fn an_agent_token_bound_to_no_pod_may_write_nothing() {
    let token = kubectl_ok(&["-n", AGENT_NAMESPACE, "create", "token", "seccompd-agent"]);
    let agent = client_with_token(token.trim()).await;
    let reports: Api<SeccompNodeReport> = Api::all(agent.clone());
    let message = forbidden(
        "applying node1's report",
        reports
            .patch(NODE, &dry_apply(), &Patch::Apply(report(NODE)))
            .await,
    );
    assert!(message.contains(POLICY), "{message}");
    assert!(message.contains("carries no node name"), "{message}");
    let nodes: Api<Node> = Api::all(agent.clone());
    let message = forbidden(
        "patching node1",
        nodes
            .patch(NODE, &dry_patch(), &Patch::Merge(json!({"metadata": {}})))
            .await,
    );
    assert!(message.contains("carries no node name"), "{message}");
    let events: Api<Event> = Api::namespaced(agent, "default");
    let dry = dry_post();
    let message = forbidden(
        "an event regarding node1",
        events.create(&dry, &event(node_ref(NODE), None)).await,
    );
    assert!(message.contains("carries no node name"), "{message}");
}

/// The nodes the agents run on (the DaemonSet's `kubernetes.io/os: linux`).
fn linux_nodes() -> usize {
    kubectl_ok(&["get", "nodes", "-l", "kubernetes.io/os=linux", "-o", "name"])
        .lines()
        .count()
}

fn scale_controller(replicas: u32) {
    kubectl_ok(&[
        "-n",
        AGENT_NAMESPACE,
        "scale",
        "deployment/seccompd-controller",
        &format!("--replicas={replicas}"),
    ]);
}

/// Brings the controller back to its two replicas, also when the test fails.
struct ControllerBack;

impl Drop for ControllerBack {
    fn drop(&mut self) {
        let _ = kubectl(&[
            "-n",
            AGENT_NAMESPACE,
            "scale",
            "deployment/seccompd-controller",
            "--replicas=2",
        ]);
    }
}

/// Where the agent on `node` installs profile `name`, as the host sees it.
fn profile_path_on(node: &str, name: &str) -> PathBuf {
    if node == NODE {
        cluster::node_profile_path(name)
    } else {
        Path::new(NODE2_KUBELET_ROOT)
            .join("seccomp/seccompd")
            .join(format!("{name}.json"))
    }
}

#[tokio::test]
async fn without_the_controller_files_are_installed_and_statuses_follow_once_it_is_back() {
    let _serial = SERIAL.lock().await;
    let client = client().await;
    let back = ControllerBack;
    scale_controller(0);
    eventually("the controller pods to be gone", WAIT, || async {
        let left = kubectl_ok(&[
            "-n",
            AGENT_NAMESPACE,
            "get",
            "pods",
            "-l",
            CONTROLLER_SELECTOR,
            "-o",
            "name",
        ]);
        if left.trim().is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    })
    .await;

    let name = unique("nocontroller");
    let want = create_profile(&client, &name, &denylist(&["mkdir"])).await;
    for node in node_names() {
        wait_for_bytes(&profile_path_on(&node, &name), &want.bytes, WAIT).await;
    }
    // Every node has its file, and no one wrote a status.
    let profiles: Api<SeccompProfile> = Api::all(client.clone());
    let profile = profiles.get(&name).await.expect("the profile");
    assert_eq!(profile.status, None, "no controller, no status");

    drop(back);
    let n = linux_nodes();
    wait_status(&name, "Installed", &format!("{n}/{n}"), WAIT).await;
    wait_controller_ready();
    delete_profile(&client, &name).await;
}

/// Deletes the Node object, also when the test fails.
struct DeleteNode(String);

impl Drop for DeleteNode {
    fn drop(&mut self) {
        let _ = kubectl(&[
            "delete",
            "node",
            &self.0,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

#[tokio::test]
async fn a_node_the_daemonset_does_not_select_does_not_count() {
    let _serial = SERIAL.lock().await;
    let client = client().await;
    let linux = linux_nodes();
    let windows = unique("windows");
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": windows, "labels": {"kubernetes.io/os": "windows"}},
    }))
    .expect("a Node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create a Node without an agent");
    let _delete = DeleteNode(windows.clone());

    let name = unique("linuxonly");
    create_profile(&client, &name, &denylist(&["mkdir"])).await;
    let status = wait_status(&name, "Installed", &format!("{linux}/{linux}"), WAIT).await;
    assert_eq!(status["totalNodes"], linux, "{status}");
    let lagging = status["nodes"].as_array().cloned().unwrap_or_default();
    assert!(
        lagging.iter().all(|n| n["nodeName"] != windows.as_str()),
        "{status}"
    );
    delete_profile(&client, &name).await;
}
