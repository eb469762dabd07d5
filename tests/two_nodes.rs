//! The promise "on every node", on two real nodes: node1 (the host) and node2, a second
//! kubelet with its own containerd in namespaces of its own (hack/node2.sh), whose kubelet root
//! is a different directory of the host. One DaemonSet, one hostPath, two directories.
//!
//! Needs the default two-node cluster (`make cluster-up`); with `NODES=1` every test here fails
//! saying so.

mod common;
mod lifecycle_support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{client, eventually, kubectl, kubectl_ok, node_names, node_profile_path, unique};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use lifecycle_support::component::{StoppedComponent, signal};
use lifecycle_support::{
    AGENT_NAMESPACE, BUSYBOX, create_profile, delete_profile, denylist, rendered, time_until_bytes,
    wait_agents_rolled_out, wait_for_bytes,
};
use seccompd::api::SeccompProfile;
use seccompd::api::node_report::SeccompNodeReport;
use serde_json::{Value, json};

const NODE2: &str = "node2";
/// node2's kubelet root as the host sees it (hack/lib.sh: NODE2_KUBELET_ROOT); inside node2
/// it is /var/lib/kubelet.
const NODE2_KUBELET_ROOT: &str = "/var/lib/seccompd-e2e/node2/kubelet";
const LEASE: &str = "seccompd-status-writer";
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

/// Waits until the profile's status says `phase` with INSTALLED `installed` for the current
/// generation; returns the status.
async fn wait_status(name: &str, phase: &str, installed: &str, timeout: Duration) -> Value {
    eventually(
        &format!("{name} to be {phase} {installed}"),
        timeout,
        || async {
            let out = kubectl_ok(&["get", "seccompprofile", name, "-o", "json"]);
            let profile: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
            let status = &profile["status"];
            if status["phase"] == phase
                && status["installed"] == installed
                && status["observedGeneration"] == profile["metadata"]["generation"]
            {
                Ok(status.clone())
            } else {
                Err(status.to_string())
            }
        },
    )
    .await
}

/// The host PID of the seccompd agent running on node2: node2's pods live in cgroups under
/// /node2 (its kubelet's cgroupRoot), node1's under /kubepods.
fn node2_agent_pid() -> Option<u32> {
    agent_pid_where(|cgroup| cgroup.contains(":/node2/kubepods"))
}

fn agent_pid_where(in_cgroup: impl Fn(&str) -> bool) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let exe = fs::read_link(entry.path().join("exe")).ok()?;
        if exe.file_name()? != "seccompd" {
            return None;
        }
        let cgroup = fs::read_to_string(entry.path().join("cgroup")).ok()?;
        in_cgroup(&cgroup).then_some(pid)
    })
}

/// The agent's host PID on `node`.
fn agent_pid_on(node: &str) -> Option<u32> {
    if node == NODE2 {
        node2_agent_pid()
    } else {
        agent_pid_where(|cgroup| cgroup.contains(":/kubepods/"))
    }
}

/// The node whose agent holds the status writer's Lease (its identity is `<node>_<start>`).
async fn lease_holder(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), AGENT_NAMESPACE);
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// The node of the agent holding the Lease.
async fn writer_node(client: &Client) -> Option<String> {
    let holder = lease_holder(client).await?;
    Some(seccompd::status::writer::candidate_node(&holder).to_string())
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
    assert_eq!(fs::read(&on1).expect("node1's file"), want.bytes);
    assert_eq!(fs::read(&on2).expect("node2's file"), want.bytes);
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

/// The status writer runs in one of the agents; the lagging-node test stops node2's agent, so
/// it first makes sure the writer is node1's (by restarting node2's agent if it holds the lease).
async fn writer_on_node1(client: &Client) {
    if writer_node(client).await.as_deref() == Some(NODE2) {
        let pid = node2_agent_pid().expect("node2's agent runs");
        signal(pid, "-KILL");
        eventually("the lease to move to node1", WAIT, || async {
            match writer_node(client).await {
                Some(h) if h == "node1" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        wait_agents_rolled_out();
    }
}

#[tokio::test]
async fn with_node2s_agent_kept_away_an_update_is_partial_naming_node2_then_catches_up() {
    require_two_nodes();
    let client = client().await;
    let name = unique("lag");
    create_profile(&client, &name, &denylist(&["mkdir"])).await;
    wait_status(&name, "Installed", "2/2", WAIT).await;
    writer_on_node1(&client).await;

    // Kept away: node2's agent is frozen (SIGSTOP), so it neither installs nor reports. Its
    // liveness probe would restart it after about 30 s; the test needs a few seconds.
    let frozen = node2_agent_pid().expect("node2's agent runs");
    signal(frozen, "-STOP");
    struct Thaw(u32);
    impl Drop for Thaw {
        fn drop(&mut self) {
            signal(self.0, "-CONT");
        }
    }
    let thaw = Thaw(frozen);

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
        want.bytes,
        "node2's frozen agent cannot have written the update"
    );

    let back = Instant::now();
    drop(thaw);
    wait_status(&name, "Installed", "2/2", Duration::from_secs(10)).await;
    println!("node2 back: Installed 2/2 after {:?}", back.elapsed());
    assert_eq!(fs::read(node2_profile_path(&name)).unwrap(), want.bytes);
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

#[tokio::test]
async fn killing_the_status_writer_moves_the_lease_and_statuses_keep_following() {
    require_two_nodes();
    let client = client().await;
    wait_agents_rolled_out();
    let holder = eventually("a status writer", WAIT, || async {
        lease_holder(&client)
            .await
            .ok_or_else(|| "no holder".to_string())
    })
    .await;
    let node = seccompd::status::writer::candidate_node(&holder).to_string();
    let pid = agent_pid_on(&node).unwrap_or_else(|| panic!("the agent on {node} runs"));
    let killed = Instant::now();
    signal(pid, "-KILL");
    let next = eventually("the lease to move to another agent", WAIT, || async {
        match lease_holder(&client).await {
            Some(h) if h != holder => Ok(h),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let failover = killed.elapsed();

    // Statuses keep following: a profile created now is reported on both nodes.
    let name = unique("failover");
    create_profile(&client, &name, &denylist(&["mkdir"])).await;
    wait_status(&name, "Installed", "2/2", WAIT).await;
    println!(
        "status writer failover: {holder} (on {node}) killed, {next} took the lease after \
         {failover:?}; \
         a new profile Installed 2/2 {:?} after the kill",
        killed.elapsed()
    );
    delete_profile(&client, &name).await;
    wait_agents_rolled_out();
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
