//! Helpers shared by the lifecycle tests (tests/cluster/lifecycle_*.rs): profiles and pods that
//! use them, the in-cluster agent's metrics and logs, events, the directory as a whole.

pub mod component;
pub mod host_agent;
pub mod storm;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use seccompd_api::{SeccompProfile, SeccompProfileSpec};
use seccompd_profile::model::ProfileSpec;
use seccompd_profile::render::{Rendered, render};
use seccompd_profile::resolve::resolve;
use serde_json::{Value, json};

use crate::cluster::{eventually, kubectl_ok};

/// The namespace of the agent's DaemonSet.
pub const AGENT_NAMESPACE: &str = "seccompd-system";

/// The node these tests work on: its directories are the host's own (`node_dir`), its pods
/// are the ones they create. node2 (hack/node2.sh) has tests of its own (tests/cluster/two_nodes.rs).
pub const NODE: &str = "node1";

/// The image test pods run (imported by hack/cluster-up.sh, never pulled).
pub const BUSYBOX: &str = "localhost/busybox:e2e";

/// The directory the in-cluster agent owns on the node.
pub fn node_dir() -> PathBuf {
    PathBuf::from("/var/lib/kubelet/seccomp/seccompd")
}

/// A denylist profile that lets busybox run: everything allowed except the given calls.
pub fn denylist(denied: &[&str]) -> ProfileSpec {
    serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": denied, "action": "SCMP_ACT_ERRNO"}],
    }))
    .expect("a valid spec")
}

/// Rules that allow every system call the installed libseccomp knows by name except
/// `except`, in rules of at most 400 names (under the bound on names per rule).
pub fn allow_every_call_but(except: &[&str]) -> Vec<seccompd_profile::model::SyscallRule> {
    let names: Vec<seccompd_profile::model::SyscallName> = seccompd_profile::syscalls::all_names()
        .into_iter()
        .filter(|n| !except.contains(n) && seccompd_profile::syscalls::is_known_to_libseccomp(n))
        .map(Into::into)
        .collect();
    names
        .chunks(400)
        .map(|chunk| seccompd_profile::model::SyscallRule {
            names: chunk.to_vec(),
            action: seccompd_profile::model::Action::Allow,
            errno_ret: None,
            args: vec![],
        })
        .collect()
}

/// What the agent writes for a profile without base.
pub fn rendered(spec: &ProfileSpec) -> Rendered {
    render(&resolve("x", spec, |_| None).expect("no base to resolve"))
}

/// Creates SeccompProfile `name` and returns the bytes its file must hold.
pub async fn create_profile(client: &Client, name: &str, spec: &ProfileSpec) -> Rendered {
    let api: Api<SeccompProfile> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &SeccompProfile::new(name, SeccompProfileSpec(spec.clone())),
    )
    .await
    .unwrap_or_else(|e| panic!("create SeccompProfile {name}: {e}"));
    rendered(spec)
}

/// Deletes SeccompProfile `name` (if it is there).
pub async fn delete_profile(client: &Client, name: &str) {
    let api: Api<SeccompProfile> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

/// Waits until `path` holds exactly `want`.
pub async fn wait_for_bytes(path: &Path, want: &[u8], timeout: Duration) {
    eventually(
        &format!("{} to hold the rendered profile", path.display()),
        timeout,
        || async {
            match fs::read(path) {
                Ok(bytes) if bytes == want => Ok(()),
                Ok(bytes) => Err(format!("differs: {}", String::from_utf8_lossy(&bytes))),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
}

/// Waits until nothing is at `path`.
pub async fn wait_for_absence(path: &Path, timeout: Duration) {
    eventually(&format!("{} to go", path.display()), timeout, || async {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Ok(_) => Err("still there".to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// Polls fast until `path` holds `want`; returns how long that took. Panics after `limit`.
pub fn time_until_bytes(path: &Path, want: &[u8], limit: Duration) -> Duration {
    time_until(&format!("{} restored", path.display()), limit, || {
        fs::read(path).is_ok_and(|b| b == want)
    })
}

/// Polls fast until nothing is at `path`; returns how long that took. Panics after `limit`.
pub fn time_until_absent(path: &Path, limit: Duration) -> Duration {
    time_until(&format!("{} removed", path.display()), limit, || {
        fs::symlink_metadata(path).is_err()
    })
}

/// Polls `done` every 5 ms; returns how long until it held. Panics after `limit`, saying
/// `what` did not happen.
fn time_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if done() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A pod in `default` on node1 (by its nodeSelector: it is still scheduled, so taints count)
/// that sleeps under the given seccomp settings.
/// `pod_level` and `container_level` are localhostProfile values.
pub fn sleeper(name: &str, pod_level: Option<&str>, container_level: Option<&str>) -> Pod {
    let localhost = |p: &str| json!({"type": "Localhost", "localhostProfile": p});
    let mut container = json!({
        "name": "sleep",
        "image": BUSYBOX,
        "imagePullPolicy": "Never",
        "command": ["sleep", "3600"],
        "securityContext": {"allowPrivilegeEscalation": false},
    });
    if let Some(p) = container_level {
        container["securityContext"]["seccompProfile"] = localhost(p);
    }
    let mut spec = json!({
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
        "nodeSelector": {"kubernetes.io/hostname": NODE},
        "containers": [container],
    });
    if let Some(p) = pod_level {
        spec["securityContext"] = json!({"seccompProfile": localhost(p)});
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "seccompd-lifecycle-test"}},
        "spec": spec,
    }))
    .expect("a valid pod")
}

/// Creates `pod` in `default`.
pub async fn create_pod(client: &Client, pod: &Pod) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), pod)
        .await
        .unwrap_or_else(|e| panic!("create pod {}: {e}", pod.name_any()));
}

/// Deletes pod `name` in `default` at once and waits until it is gone.
pub async fn delete_pod(client: &Client, name: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let _ = pods
        .delete(name, &DeleteParams::default().grace_period(0))
        .await;
    eventually(
        &format!("pod {name} to be gone"),
        Duration::from_secs(60),
        || async {
            match pods.get_opt(name).await {
                Ok(None) => Ok(()),
                Ok(Some(p)) => Err(format!("{:?}", p.status.and_then(|s| s.phase))),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
}

/// Waits until pod `name` in `default` is Running.
pub async fn wait_running(client: &Client, name: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    eventually(
        &format!("pod {name} to run"),
        Duration::from_secs(120),
        || async {
            let p = pods.get(name).await.map_err(|e| e.to_string())?;
            let status = p.status.unwrap_or_default();
            match status.phase.as_deref() {
                Some("Running") => Ok(()),
                other => Err(format!("{other:?} {:?}", status.container_statuses)),
            }
        },
    )
    .await
}

/// Events (events.k8s.io) in `namespace` with `reason` about the object named `regarding`.
pub async fn events(client: &Client, namespace: &str, regarding: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let all = api
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    all.into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(regarding))
        .collect()
}

/// The agent's pods on node1 (normally one), each with whether it is Ready.
pub fn agent_pods() -> Vec<(String, bool)> {
    kubectl_ok(&[
        "-n",
        AGENT_NAMESPACE,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/component=agent",
        "--field-selector",
        &format!("spec.nodeName={NODE}"),
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
    ])
    .lines()
    .filter_map(|l| {
        let (name, ready) = l.split_once(' ')?;
        Some((name.to_string(), ready == "True"))
    })
    .collect()
}

/// Waits until every agent pod of the DaemonSet runs the current template and is ready.
pub fn wait_agents_rolled_out() {
    kubectl_ok(&[
        "-n",
        AGENT_NAMESPACE,
        "rollout",
        "status",
        "ds/seccompd-agent",
        "--timeout=180s",
    ]);
}

/// The name of the agent pod on node1.
pub fn agent_pod() -> String {
    agent_pods()
        .into_iter()
        .next()
        .map(|(name, _)| name)
        .expect("an agent pod on node1")
}

/// The in-cluster agent's metrics, by series (`name{labels}`), read through the API server's
/// pod proxy.
pub fn agent_metrics() -> BTreeMap<String, f64> {
    let pod = agent_pod();
    let text = kubectl_ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/{AGENT_NAMESPACE}/pods/{pod}:9810/proxy/metrics"),
    ]);
    parse_metrics(&text)
}

/// Waits until the in-cluster agent has completed `more` sync passes beyond those it had
/// done when called, waking it meanwhile by creating and deleting a scratch SeccompProfile.
/// Tests that assert something did NOT happen wait for this instead of sleeping: the agent has
/// then looked at the unchanged state again, and would have acted on it.
pub async fn wait_for_agent_passes(client: &Client, more: u64) {
    const PASSES: &str = "seccompd_sync_passes_total";
    let passes = || agent_metrics().get(PASSES).copied().unwrap_or(0.0);
    let target = passes() + more as f64;
    let scratch = crate::cluster::unique("wake");
    let present = std::sync::atomic::AtomicBool::new(false);
    eventually(
        &format!("{more} more passes of the agent"),
        Duration::from_secs(60),
        || async {
            let done = passes();
            if done >= target {
                return Ok(());
            }
            // Each change of the profile list wakes one pass.
            if present.fetch_xor(true, std::sync::atomic::Ordering::AcqRel) {
                delete_profile(client, &scratch).await;
            } else {
                create_profile(client, &scratch, &denylist(&["mkdir"])).await;
            }
            Err(format!("{done} passes, waiting for {target}"))
        },
    )
    .await;
    delete_profile(client, &scratch).await;
}

/// The metrics of a host agent serving on `port`, by series; empty while it does not answer.
pub fn host_metrics(port: u16) -> std::collections::BTreeMap<String, f64> {
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "2",
            &format!("http://127.0.0.1:{port}/metrics"),
        ])
        .output()
        .expect("running curl");
    parse_metrics(&String::from_utf8_lossy(&out.stdout))
}

/// Waits until the host agent serving on `port` has completed its first sync (what makes a
/// node's agent ready and lifts the node's taint).
pub async fn wait_host_synced(port: u16) {
    eventually(
        "the agent's first sync",
        Duration::from_secs(60),
        || async {
            match host_metrics(port).get("seccompd_synced") {
                Some(v) if *v == 1.0 => Ok(()),
                other => Err(format!("seccompd_synced = {other:?}")),
            }
        },
    )
    .await;
}

/// Prometheus text to series → value.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The log lines of node1's agent of the last `since` (e.g. "2m").
pub fn agent_logs(since: &str) -> String {
    kubectl_ok(&[
        "-n",
        AGENT_NAMESPACE,
        "logs",
        &agent_pod(),
        &format!("--since={since}"),
    ])
}

/// Path, kind, size, mtime and content of everything below `root` (symlinks not followed).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = fs::symlink_metadata(&path).expect("stat");
        let what = if meta.file_type().is_symlink() {
            format!("link -> {:?}", fs::read_link(&path).expect("readlink"))
        } else if meta.is_dir() {
            for e in fs::read_dir(&path).expect("list") {
                todo.push(e.expect("entry").path());
            }
            "dir".to_string()
        } else {
            let content = fs::read(&path).expect("read");
            format!(
                "file {} bytes mtime {} ino {} nlink {} {:?}",
                meta.len(),
                meta.mtime_nsec(),
                meta.ino(),
                meta.nlink(),
                content
            )
        };
        out.insert(path, what);
    }
    out
}

/// Every entry of `dir` with its content (`None` for anything but a regular file).
pub fn dir_contents(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let content = match e.file_type() {
                Ok(t) if t.is_file() => fs::read(e.path()).ok(),
                _ => None,
            };
            (name, content)
        })
        .collect()
}

/// What a directory must hold for the API's current profiles: `<name>.json` with the rendered
/// bytes of every profile valid on this node (resolved with bases, checked as the agent does).
pub async fn expected_dir(client: &Client) -> Result<storm::ExpectedDir, String> {
    let api: Api<SeccompProfile> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(storm::expected_files(&list.items))
}

/// Waits until the profile's status says `phase` with INSTALLED `installed` for the current
/// generation; returns the status.
pub async fn wait_status(name: &str, phase: &str, installed: &str, timeout: Duration) -> Value {
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

/// What `kubectl get seccompprofile NAME` prints in `column` (as its header names it,
/// `MODE`): what a user sees. kubectl aligns each value with its header, so the value is read
/// at the header's offset up to the next blank.
pub fn shown_column(name: &str, column: &str) -> String {
    let out = kubectl_ok(&["get", "seccompprofile", name]);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    let at = header
        .match_indices(column)
        .map(|(at, _)| at)
        .find(|&at| {
            let before = header[..at].chars().next_back();
            let after = header[at + column.len()..].chars().next();
            before.is_none_or(char::is_whitespace) && after.is_none_or(char::is_whitespace)
        })
        .unwrap_or_else(|| panic!("no column {column} in {out}"));
    row.get(at..)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no value under {column} in {out}"))
        .to_string()
}

/// Waits until both controller replicas are ready.
pub fn wait_controller_ready() {
    kubectl_ok(&[
        "-n",
        AGENT_NAMESPACE,
        "rollout",
        "status",
        "deployment/seccompd-controller",
        "--timeout=180s",
    ]);
}
