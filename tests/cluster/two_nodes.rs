//! The promise "on every node", on two real nodes: node1 (the host) and node2, a second
//! kubelet with its own containerd in namespaces of its own (hack/node2.sh), whose kubelet root
//! is a different directory of the host. One DaemonSet, one hostPath, two directories.
//!
//! Needs the default two-node cluster (`make cluster-up`); with `NODES=1` every test here fails
//! saying so.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use seccompd_api::SeccompProfile;
use seccompd_api::node_report::SeccompNodeReport;
use seccompd_controller::status::writer::LEASE_NAME;
use seccompd_e2e::cluster::{
    client, eventually, kubectl, kubectl_ok, node_names, node_profile_path, unique,
};
use seccompd_e2e::lifecycle::component::{StoppedComponent, signal};
use seccompd_e2e::lifecycle::{
    AGENT_NAMESPACE, BUSYBOX, create_profile, delete_profile, denylist, rendered, time_until_bytes,
    wait_agents_rolled_out, wait_controller_ready, wait_for_bytes, wait_status,
};
use serde_json::{Value, json};

const NODE2: &str = "node2";
/// node2's kubelet root as the host sees it (hack/lib.sh: NODE2_KUBELET_ROOT); inside node2
/// it is /var/lib/kubelet.
const NODE2_KUBELET_ROOT: &str = "/var/lib/seccompd-e2e/node2/kubelet";
/// The controller's pods (manifests/controller.yaml).
const CONTROLLER_SELECTOR: &str =
    "app.kubernetes.io/name=seccompd,app.kubernetes.io/component=controller";
const WAIT: Duration = Duration::from_secs(90);

/// Where node2's agent installs profile `name`, as seen from the host.
fn node2_profile_path(name: &str) -> PathBuf {
    Path::new(NODE2_KUBELET_ROOT)
        .join("seccomp/seccompd")
        .join(format!("{name}.json"))
}

fn require_two_nodes() {
    let nodes = node_names();
    assert!(
        nodes.iter().any(|n| n == NODE2),
        "these tests need node2: bring the cluster up with two nodes (`make cluster-up`, not \
         NODES=1); nodes: {nodes:?}"
    );
}

/// The host PID of the seccompd agent running on node2: node2's pods live in cgroups under
/// /node2 (its kubelet's cgroupRoot), node1's under /kubepods.
fn node2_agent_pid() -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let exe = fs::read_link(entry.path().join("exe")).ok()?;
        if exe.file_name()? != "seccompd-agent" {
            return None;
        }
        let cgroup = fs::read_to_string(entry.path().join("cgroup")).ok()?;
        cgroup.contains(":/node2/kubepods").then_some(pid)
    })
}

/// The controller replica holding the status writer's Lease: its pod's name.
async fn lease_holder(client: &Client) -> Option<String> {
    lease_holder_identity(client)
        .await
        .map(|identity| seccompd_controller::status::writer::candidate_pod(&identity).to_string())
}

/// The identity holding the status writer's Lease (`<pod>_<start time>`), if any.
pub(crate) async fn lease_holder_identity(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), AGENT_NAMESPACE);
    leases
        .get_opt(LEASE_NAME)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|identity| !identity.is_empty())
}

/// A pod pinned to `node` that tries `mkdir` under the given pod-level seccomp profile and
/// prints the outcome.
fn mkdir_pod(name: &str, node: &str, seccomp: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": {"kubernetes.io/hostname": node},
            "securityContext": {"seccompProfile": seccomp},
            "containers": [{
                "name": "mkdir",
                "image": BUSYBOX,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", "mkdir /made && echo MKDIR_OK"],
                "securityContext": {"allowPrivilegeEscalation": false},
            }],
        },
    })
}

/// Runs `pod` to completion; returns its node, phase and log.
async fn run_to_completion(client: &Client, pod: Value) -> (String, String, String) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let name = pod["metadata"]["name"].as_str().expect("name").to_string();
    let pod: Pod = serde_json::from_value(pod).expect("a pod");
    pods.create(&Default::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create pod {name}: {e}"));
    let (node, phase) = eventually(&format!("pod {name} to finish"), WAIT, || async {
        let p = pods.get(&name).await.map_err(|e| e.to_string())?;
        let node = p.spec.and_then(|s| s.node_name).unwrap_or_default();
        let status = p.status.unwrap_or_default();
        match status.phase.as_deref() {
            Some(phase @ ("Succeeded" | "Failed")) => Ok((node, phase.to_string())),
            other => Err(format!("{other:?} {:?}", status.container_statuses)),
        }
    })
    .await;
    let log =
        String::from_utf8_lossy(&kubectl(&["-n", "default", "logs", &name]).stdout).into_owned();
    let _ = pods
        .delete(&name, &DeleteParams::default().grace_period(0))
        .await;
    (node, phase, log)
}

#[tokio::test]
async fn a_profile_reaches_both_nodes_with_the_same_bytes_in_two_directories() {
    require_two_nodes();
    let client = client().await;
    let name = unique("both");
    let want = create_profile(&client, &name, &denylist(&["mkdir"])).await;
    let status = wait_status(&name, "Installed", "2/2", WAIT).await;
    assert_eq!(status["totalNodes"], 2, "{status}");

    let (on1, on2) = (node_profile_path(&name), node2_profile_path(&name));
    assert_eq!(fs::read(&on1).expect("node1's file"), want.bytes.to_vec());
    assert_eq!(fs::read(&on2).expect("node2's file"), want.bytes.to_vec());
    let (m1, m2) = (fs::metadata(&on1).unwrap(), fs::metadata(&on2).unwrap());
    assert_ne!(
        (m1.dev(), m1.ino()),
        (m2.dev(), m2.ino()),
        "{} and {} must be two files",
        on1.display(),
        on2.display()
    );
    delete_profile(&client, &name).await;
}

#[tokio::test]
async fn a_pod_on_node2_is_confined_by_a_seccompd_profile_and_not_by_runtime_default() {
    require_two_nodes();
    let client = client().await;
    let name = unique("confine2");
    create_profile(&client, &name, &denylist(&["mkdir", "mkdirat"])).await;
    wait_status(&name, "Installed", "2/2", WAIT).await;

    let localhost =
        json!({"type": "Localhost", "localhostProfile": format!("seccompd/{name}.json")});
    let (node, phase, log) =
        run_to_completion(&client, mkdir_pod(&unique("confined"), NODE2, localhost)).await;
    println!("under seccompd/{name}.json on {node}: {phase}: {log}");
    assert_eq!(node, NODE2);
    assert_eq!(phase, "Failed", "{log}");
    assert!(log.contains("Operation not permitted"), "{log}");

    let (node, phase, log) = run_to_completion(
        &client,
        mkdir_pod(&unique("default"), NODE2, json!({"type": "RuntimeDefault"})),
    )
    .await;
    println!("under RuntimeDefault on {node}: {phase}: {log}");
    assert_eq!(node, NODE2);
    assert_eq!(phase, "Succeeded", "{log}");
    assert!(log.contains("MKDIR_OK"), "{log}");
    delete_profile(&client, &name).await;
}

/// A process stopped with SIGSTOP; continued (SIGCONT) when dropped, also on a panic.
struct Frozen(u32);

impl Frozen {
    fn freeze(pid: u32) -> Self {
        signal(pid, "-STOP");
        Self(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

#[tokio::test]
async fn with_node2s_agent_kept_away_an_update_is_partial_naming_node2_then_catches_up() {
    require_two_nodes();
    let client = client().await;
    let name = unique("lag");
    create_profile(&client, &name, &denylist(&["mkdir"])).await;
    wait_status(&name, "Installed", "2/2", WAIT).await;

    // Kept away: node2's agent is frozen (SIGSTOP), so it neither installs nor reports. Its
    // liveness probe would restart it after about 30 s; the test needs a few seconds.
    let frozen = Frozen::freeze(node2_agent_pid().expect("node2's agent runs"));

    let updated = denylist(&["mkdir", "rmdir"]);
    let profiles: Api<SeccompProfile> = Api::all(client.clone());
    profiles
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"syscalls": updated.syscalls}})),
        )
        .await
        .expect("update the profile");
    let want = rendered(&updated);
    wait_for_bytes(&node_profile_path(&name), &want.bytes, WAIT).await;
    let partial = wait_status(&name, "Partial", "1/2", Duration::from_secs(20)).await;
    println!("while node2's agent is away: {partial}");
    let lagging = partial["nodes"].as_array().expect("the lagging nodes");
    assert_eq!(lagging.len(), 1, "{partial}");
    assert_eq!(lagging[0]["nodeName"], NODE2, "{partial}");
    assert!(
        !lagging[0]["reason"].as_str().unwrap_or_default().is_empty(),
        "a reason: {partial}"
    );
    assert_ne!(
        fs::read(node2_profile_path(&name)).expect("node2's old file"),
        want.bytes.to_vec(),
        "node2's frozen agent cannot have written the update"
    );

    let back = Instant::now();
    drop(frozen);
    wait_status(&name, "Installed", "2/2", Duration::from_secs(10)).await;
    println!("node2 back: Installed 2/2 after {:?}", back.elapsed());
    assert_eq!(
        fs::read(node2_profile_path(&name)).unwrap(),
        want.bytes.to_vec()
    );
    delete_profile(&client, &name).await;
}

#[tokio::test]
async fn drift_on_node2_is_repaired_like_on_node1() {
    require_two_nodes();
    let client = client().await;
    let name = unique("drift2");
    let want = create_profile(&client, &name, &denylist(&["mkdir"])).await;
    let path = node2_profile_path(&name);
    wait_for_bytes(&path, &want.bytes, WAIT).await;

    fs::write(&path, br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).expect("tamper with node2's file");
    let edited = time_until_bytes(&path, &want.bytes, Duration::from_secs(2));
    fs::remove_file(&path).expect("delete node2's file");
    let deleted = time_until_bytes(&path, &want.bytes, Duration::from_secs(2));
    println!("node2 repaired: edited file in {edited:?}, deleted file in {deleted:?}");
    delete_profile(&client, &name).await;
}

/// The status writer is the controller replica holding the Lease (its pod's name). Killing
/// it (its pod deleted without grace, so that the same name never comes back) moves the Lease
/// to the other replica.
#[tokio::test]
async fn killing_the_status_writer_moves_the_lease_and_statuses_keep_following() {
    require_two_nodes();
    let client = client().await;
    wait_agents_rolled_out();
    wait_controller_ready();
    let holder = eventually("a status writer", WAIT, || async {
        lease_holder(&client)
            .await
            .ok_or_else(|| "no holder".to_string())
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), AGENT_NAMESPACE);
    let standby: Vec<String> = pods
        .list(&kube::api::ListParams::default().labels(CONTROLLER_SELECTOR))
        .await
        .expect("list the controller pods")
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .filter(|name| *name != holder)
        .collect();
    assert_eq!(standby.len(), 1, "one standby replica besides {holder}");
    let killed = Instant::now();
    kubectl_ok(&[
        "-n",
        AGENT_NAMESPACE,
        "delete",
        "pod",
        &holder,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    let next = eventually("the lease to move to the other replica", WAIT, || async {
        match lease_holder(&client).await {
            Some(h) if h != holder => Ok(h),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let failover = killed.elapsed();
    // The standby replica, or the one the Deployment started in place of the killed pod:
    // whichever renews first once the lease has expired.
    let live: Vec<String> = pods
        .list(&kube::api::ListParams::default().labels(CONTROLLER_SELECTOR))
        .await
        .expect("list the controller pods")
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert!(
        live.contains(&next),
        "the lease is held by a live replica: {next} not in {live:?}"
    );

    // Statuses keep following: a profile created now is reported on both nodes.
    let name = unique("failover");
    create_profile(&client, &name, &denylist(&["mkdir"])).await;
    wait_status(&name, "Installed", "2/2", WAIT).await;
    println!(
        "status writer failover: {holder} killed, {next} took the lease after {failover:?}; \
         a new profile Installed 2/2 {:?} after the kill",
        killed.elapsed()
    );
    delete_profile(&client, &name).await;
    wait_controller_ready();
}

#[tokio::test]
async fn deleting_node2s_node_object_removes_its_report_and_the_status_counts_one_node() {
    require_two_nodes();
    let client = client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let reports: Api<SeccompNodeReport> = Api::all(client.clone());
    let name = unique("gone2");
    create_profile(&client, &name, &denylist(&["mkdir"])).await;
    wait_status(&name, "Installed", "2/2", WAIT).await;
    assert!(reports.get_opt(NODE2).await.expect("get report").is_some());

    // With its kubelet stopped, so that it does not register the node again at once.
    let kubelet = StoppedComponent::stop("node2-kubelet");
    nodes
        .delete(NODE2, &DeleteParams::default())
        .await
        .expect("delete node2");
    eventually("node2's report to be collected", WAIT, || async {
        match reports.get_opt(NODE2).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;
    let status = wait_status(&name, "Installed", "1/1", WAIT).await;
    assert_eq!(status["totalNodes"], 1, "{status}");

    // node2 joins again (registering with the taint) and its new agent catches up.
    kubelet.restart();
    eventually("node2 to register again", WAIT, || async {
        nodes
            .get_opt(NODE2)
            .await
            .map_err(|e| e.to_string())?
            .map(|_| ())
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    wait_status(&name, "Installed", "2/2", Duration::from_secs(240)).await;
    wait_agents_rolled_out();
    delete_profile(&client, &name).await;
}
