//! Helpers of the fault tests (tests/cluster/fault_*.rs): batches of profiles created through
//! an outage, the directories of both nodes checked file by file, a reader that looks for a
//! partial file all along, and the way back to a healthy cluster for the tests that follow.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use seccompd_api::SeccompProfile;
use seccompd_profile::model::ProfileSpec;

use crate::cluster::{
    eventually, kubectl, kubectl_ok, kubernetes_service_ip, node_names, unique, wait_for_readyz,
};
use crate::lifecycle::{
    denylist, node_dir, rendered, sleeper, wait_agents_rolled_out, wait_controller_ready,
};

/// The second node of the test cluster (hack/node2.sh).
pub const NODE2: &str = "node2";

/// Where hack/cluster-up.sh records the PID of the process that holds node2's namespaces.
const NODE2_LAUNCHER_PID: &str = "/run/seccompd-e2e/pids/node2-launcher";

/// The label every profile of one fault test carries (its value is the test's run), so that a
/// guard can delete them all whatever happened.
pub const FAULT_LABEL: &str = "e2e.seccompd.dev/fault-run";

/// How long a create may keep failing (the API server or etcd being down) before the test
/// gives up.
const CREATE_WITHIN: Duration = Duration::from_secs(180);

/// Fails at once unless node2 is part of the cluster.
pub fn require_two_nodes() {
    let nodes = node_names();
    assert!(
        nodes.iter().any(|n| n == NODE2),
        "the fault tests need node2: bring the cluster up with two nodes (`make cluster-up`, \
         not NODES=1); nodes: {nodes:?}"
    );
}

/// The PID of the process that holds node2's network and mount namespaces.
pub fn node2_launcher_pid() -> u32 {
    fs::read_to_string(NODE2_LAUNCHER_PID)
        .unwrap_or_else(|e| panic!("reading {NODE2_LAUNCHER_PID}: {e}: is node2 up?"))
        .trim()
        .parse()
        .expect("a PID in node2's launcher PID file")
}

/// seccompd's directory as node2's kubelet and runtime see it: through node2's mount
/// namespace, so that a filesystem mounted there (and only there) is what is read.
pub fn node2_dir() -> PathBuf {
    PathBuf::from(format!(
        "/proc/{}/root/var/lib/kubelet/seccomp/seccompd",
        node2_launcher_pid()
    ))
}

/// The directory node2's kubelet reads, as a path inside node2's mount namespace.
pub const NODE2_DIR_INSIDE: &str = "/var/lib/kubelet/seccomp/seccompd";

/// Runs `args` in node2's network and mount namespaces.
pub fn in_node2(args: &[&str]) -> Output {
    let launcher = node2_launcher_pid().to_string();
    Command::new("nsenter")
        .args(["-t", &launcher, "-m", "-n", "--"])
        .args(args)
        .output()
        .expect("running nsenter")
}

/// Runs `args` in node2's namespaces; panics with its stderr when it fails.
pub fn in_node2_ok(args: &[&str]) -> String {
    let out = in_node2(args);
    assert!(
        out.status.success(),
        "in node2: {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Both nodes' directories: (node, path as that node's runtime sees it).
pub fn both_dirs() -> Vec<(&'static str, PathBuf)> {
    vec![("node1", node_dir()), (NODE2, node2_dir())]
}

/// The profiles of one fault test, all labelled with its run, each with the bytes its file
/// must hold.
pub struct Batch {
    /// The label's value.
    pub run: String,
    /// Name -> spec, in creation order.
    pub specs: Vec<(String, ProfileSpec)>,
}

/// System calls the batch's profiles deny, one each (so that neighbours differ in content).
const DENIED: [&str; 8] = [
    "mkdir", "rmdir", "chmod", "chown", "link", "unlink", "rename", "symlink",
];

impl Batch {
    /// `count` profiles named `<prefix>-<run>-<i>`.
    pub fn new(prefix: &str, count: usize) -> Self {
        let run = unique(prefix);
        let specs = (0..count)
            .map(|i| (format!("{run}-{i}"), denylist(&[DENIED[i % DENIED.len()]])))
            .collect();
        Self { run, specs }
    }

    /// `kubectl`'s label selector for the batch.
    pub fn selector(&self) -> String {
        format!("{FAULT_LABEL}={}", self.run)
    }

    /// The object to create for `name` with `spec`, labelled with the run.
    pub fn object(&self, name: &str, spec: &ProfileSpec) -> SeccompProfile {
        let mut p = SeccompProfile::new(name, seccompd_api::SeccompProfileSpec(spec.clone()));
        p.metadata.labels = Some(BTreeMap::from([(
            FAULT_LABEL.to_string(),
            self.run.clone(),
        )]));
        p
    }

    /// The objects to create for every profile of the batch.
    pub fn objects(&self) -> Vec<SeccompProfile> {
        self.specs
            .iter()
            .map(|(name, spec)| self.object(name, spec))
            .collect()
    }

    /// Starts creating every profile of the batch in the background (see [`create_all`]);
    /// returns the task (its failed attempts) and the count of those done.
    pub fn spawn_creates(
        &self,
        client: &Client,
        workers: usize,
    ) -> (tokio::task::JoinHandle<usize>, Arc<AtomicUsize>) {
        let created = Arc::new(AtomicUsize::new(0));
        let (client, count, objects) = (client.clone(), created.clone(), self.objects());
        let task = tokio::spawn(async move { create_all(&client, objects, workers, count).await });
        (task, created)
    }

    /// The changes a test makes while its fault lasts: profile `updated` gets `new_spec`'s
    /// rules, `created` (one of the batch not created yet) is created, `deleted` (if any) is
    /// deleted. Returns what a node must then hold (file name -> bytes, of the profiles
    /// created before and `created`) and the deleted profile's file, which must be gone.
    pub async fn update_create_delete(
        &self,
        client: &Client,
        (updated, new_spec): (&str, &ProfileSpec),
        created: &str,
        deleted: Option<&str>,
    ) -> (BTreeMap<String, Vec<u8>>, BTreeSet<String>) {
        update_syscalls(client, updated, new_spec).await;
        let created_spec = self
            .specs
            .iter()
            .find(|(n, _)| n == created)
            .map(|(_, s)| s)
            .expect("the created profile is one of the batch");
        create_all(
            client,
            vec![self.object(created, created_spec)],
            1,
            Default::default(),
        )
        .await;
        let mut after = self.wants();
        after.insert(file_name(updated), rendered(new_spec).bytes.to_vec());
        let mut gone = BTreeSet::new();
        if let Some(deleted) = deleted {
            let api: Api<SeccompProfile> = Api::all(client.clone());
            api.delete(deleted, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("delete SeccompProfile {deleted}: {e}"));
            after.remove(&file_name(deleted));
            gone.insert(file_name(deleted));
        }
        (after, gone)
    }

    /// File name -> the bytes it must hold, for every profile of the batch.
    pub fn wants(&self) -> BTreeMap<String, Vec<u8>> {
        self.specs
            .iter()
            .map(|(name, spec)| (file_name(name), rendered(spec).bytes.to_vec()))
            .collect()
    }

    /// A guard that deletes the batch's profiles when dropped, also on a panic.
    pub fn cleanup(&self) -> DeleteOnDrop {
        DeleteOnDrop(self.selector())
    }
}

/// `<name>.json`.
pub fn file_name(profile: &str) -> String {
    format!("{profile}.json")
}

/// Where node2's kubelet writes container logs, as a host path (hack/node2.sh:
/// `$NODE2_VARLIB/pod-logs`).
const NODE2_POD_LOGS: &str = "/var/lib/seccompd-e2e/node2/pod-logs";

/// A pod in `default` on node2 whose container runs under the Localhost profile
/// `seccompd/<profile>.json`, prints the time (Unix seconds) and exits: node2's kubelet starts
/// it again and again (after its back-off), each time from the profile's file there, and needs
/// no API server to do so.
pub fn restarting_pod_on_node2(name: &str, profile: &str) -> Pod {
    let mut pod = sleeper(
        name,
        None,
        Some(&format!("seccompd/{}", file_name(profile))),
    );
    if let Some(spec) = pod.spec.as_mut() {
        spec.restart_policy = Some("Always".into());
        spec.node_selector = Some(BTreeMap::from([(
            "kubernetes.io/hostname".to_string(),
            NODE2.to_string(),
        )]));
        for c in &mut spec.containers {
            c.command = Some(vec!["sh".into(), "-c".into(), "date +%s; exit 3".into()]);
        }
    }
    pod
}

/// When node2 started the containers of pod `name` (Unix seconds), from what they printed into
/// the log files node2's kubelet keeps (the current and the previous start at least): read on
/// the host, so it works while node2 is cut off from the API server.
pub fn node2_container_starts(name: &str) -> Vec<u64> {
    let prefix = format!("default_{name}_");
    let Ok(pods) = fs::read_dir(NODE2_POD_LOGS) else {
        return Vec::new();
    };
    let mut starts = Vec::new();
    for pod in pods.flatten() {
        if !pod.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let containers = fs::read_dir(pod.path()).into_iter().flatten().flatten();
        let logs = containers.flat_map(|c| fs::read_dir(c.path()).into_iter().flatten().flatten());
        for log in logs {
            // CRI log lines: `<time> stdout F <what the container printed>`.
            let text = fs::read_to_string(log.path()).unwrap_or_default();
            starts.extend(
                text.lines()
                    .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok()),
            );
        }
    }
    starts.sort_unstable();
    starts
}

/// The current time in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Deletes pod `name` in `default` when dropped.
pub struct PodOnDrop(pub String);

impl Drop for PodOnDrop {
    fn drop(&mut self) {
        let _ = kubectl(&[
            "-n",
            "default",
            "delete",
            "pod",
            &self.0,
            "--grace-period=0",
            "--wait=false",
            "--request-timeout=60s",
        ]);
    }
}

/// Deletes every SeccompProfile with the label selector it holds when dropped.
pub struct DeleteOnDrop(String);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        let out = kubectl(&[
            "delete",
            "seccompprofiles",
            "-l",
            &self.0,
            "--wait=false",
            "--request-timeout=60s",
        ]);
        if !out.status.success() {
            eprintln!(
                "cleanup: deleting the profiles {}: {}",
                self.0,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Creates `objects` with `workers` creates in flight, retrying each until the API server
/// takes it (an outage is what the fault tests make); `created` counts those done. A create
/// answered `409 AlreadyExists` counts as done: an earlier attempt got through and only its
/// answer was lost. Returns the number of failed attempts.
pub async fn create_all(
    client: &Client,
    objects: Vec<SeccompProfile>,
    workers: usize,
    created: Arc<AtomicUsize>,
) -> usize {
    let api: Api<SeccompProfile> = Api::all(client.clone());
    let mut queues: Vec<Vec<SeccompProfile>> = vec![Vec::new(); workers.max(1)];
    for (i, p) in objects.into_iter().enumerate() {
        queues[i % workers.max(1)].push(p);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for queue in queues {
        let api = api.clone();
        let created = created.clone();
        tasks.spawn(async move {
            let mut failures = 0;
            for p in queue {
                failures += create_retrying(&api, &p).await;
                created.fetch_add(1, Ordering::SeqCst);
            }
            failures
        });
    }
    let mut failures = 0;
    while let Some(done) = tasks.join_next().await {
        failures += done.expect("a create worker panicked");
    }
    failures
}

/// Waits until `created` (of [`create_all`]) counts at least `n`.
pub async fn wait_created(created: &AtomicUsize, n: usize) {
    eventually(
        &format!("{n} profiles created"),
        Duration::from_secs(120),
        || async {
            match created.load(Ordering::SeqCst) {
                done if done >= n => Ok(()),
                done => Err(format!("{done} created")),
            }
        },
    )
    .await;
}

/// Gives profile `name` the rules of `spec` (a merge patch of `spec.syscalls`).
pub async fn update_syscalls(client: &Client, name: &str, spec: &ProfileSpec) {
    let api: Api<SeccompProfile> = Api::all(client.clone());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"syscalls": spec.syscalls}})),
    )
    .await
    .unwrap_or_else(|e| panic!("update SeccompProfile {name}: {e}"));
}

/// Creates `p`, retrying until it exists; returns the failed attempts.
async fn create_retrying(api: &Api<SeccompProfile>, p: &SeccompProfile) -> usize {
    let start = Instant::now();
    let name = p.metadata.name.clone().unwrap_or_default();
    let mut failures = 0;
    loop {
        match api.create(&PostParams::default(), p).await {
            Ok(_) => return failures,
            Err(kube::Error::Api(status)) if status.code == 409 => return failures,
            Err(e) => {
                failures += 1;
                assert!(
                    start.elapsed() < CREATE_WITHIN,
                    "create SeccompProfile {name} kept failing for {CREATE_WITHIN:?}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// `Ok` when `dir` holds exactly `wants` for these names (the bytes, whole) and nothing at
/// the names in `gone`; otherwise the first differences.
pub fn dir_matches(
    dir: &Path,
    wants: &BTreeMap<String, Vec<u8>>,
    gone: &BTreeSet<String>,
) -> Result<(), String> {
    let mut wrong = Vec::new();
    for (file, want) in wants {
        match fs::read(dir.join(file)) {
            Ok(bytes) if bytes == *want => {}
            Ok(bytes) => wrong.push(format!("{file}: {} other bytes", bytes.len())),
            Err(e) => wrong.push(format!("{file}: {e}")),
        }
    }
    for file in gone {
        if fs::symlink_metadata(dir.join(file)).is_ok() {
            wrong.push(format!("{file}: still there"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} entries differ in {}, e.g. {:?}",
            wrong.len(),
            wants.len() + gone.len(),
            dir.display(),
            &wrong[..wrong.len().min(3)]
        ))
    }
}

/// `Ok` when both nodes' directories match (see [`dir_matches`]).
pub fn both_match(
    wants: &BTreeMap<String, Vec<u8>>,
    gone: &BTreeSet<String>,
) -> Result<(), String> {
    for (_, dir) in both_dirs() {
        dir_matches(&dir, wants, gone)?;
    }
    Ok(())
}

/// `Ok` when every SeccompProfile matching `selector` (exactly `count` of them) says
/// `Installed` on all `nodes` nodes for its current generation; otherwise how many do not,
/// with an example.
pub async fn all_installed(
    client: &Client,
    selector: &str,
    count: usize,
    nodes: usize,
) -> Result<(), String> {
    let api: Api<SeccompProfile> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| e.to_string())?;
    if list.items.len() != count {
        return Err(format!("{} profiles, not {count}", list.items.len()));
    }
    let everywhere = format!("{nodes}/{nodes}");
    let not_yet: Vec<String> = list
        .items
        .iter()
        .filter_map(|p| {
            let s = p.status.as_ref();
            let ok = s.and_then(|s| s.phase) == Some(seccompd_api::Phase::Installed)
                && s.and_then(|s| s.installed.as_deref()) == Some(everywhere.as_str())
                && s.and_then(|s| s.observed_generation) == p.metadata.generation;
            (!ok).then(|| {
                format!(
                    "{}: {:?}",
                    p.metadata.name.as_deref().unwrap_or_default(),
                    s.map(|s| (s.phase, s.installed.clone(), s.observed_generation))
                )
            })
        })
        .collect();
    match not_yet.first() {
        None => Ok(()),
        Some(example) => Err(format!(
            "{} of {count} not Installed {everywhere} yet, e.g. {example}",
            not_yet.len()
        )),
    }
}

/// A reader that looks at every file of the watched names in both nodes' directories, over
/// and over, until stopped: each one it can read must hold one of the versions the test
/// allowed for it (a partial, empty or mixed file is a violation). Temporary files of the
/// agent are not looked at: no pod can name them.
pub struct FileWatch {
    allowed: Arc<Mutex<BTreeMap<String, Vec<Vec<u8>>>>>,
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
    violations: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FileWatch {
    /// Starts watching `dirs` (node, path) for the files in `allowed` (file name -> bytes).
    pub fn start(dirs: Vec<(&'static str, PathBuf)>, allowed: BTreeMap<String, Vec<u8>>) -> Self {
        let allowed: BTreeMap<String, Vec<Vec<u8>>> =
            allowed.into_iter().map(|(k, v)| (k, vec![v])).collect();
        let allowed = Arc::new(Mutex::new(allowed));
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (allowed, stop, reads, violations) = (
                allowed.clone(),
                stop.clone(),
                reads.clone(),
                violations.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let now = allowed.lock().map(|a| a.clone()).unwrap_or_default();
                    for (node, dir) in &dirs {
                        for (file, versions) in &now {
                            let Ok(bytes) = fs::read(dir.join(file)) else {
                                continue;
                            };
                            reads.fetch_add(1, Ordering::Relaxed);
                            if !versions.contains(&bytes)
                                && let Ok(mut v) = violations.lock()
                            {
                                v.push(format!(
                                    "{node}: {file} held {} bytes that are no version of it: {:?}",
                                    bytes.len(),
                                    String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
                                ));
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Self {
            allowed,
            stop,
            reads,
            violations,
            thread: Some(thread),
        }
    }

    /// Allows `bytes` as a version of `file` too (before the change that writes it).
    pub fn allow(&self, file: &str, bytes: Vec<u8>) {
        if let Ok(mut a) = self.allowed.lock() {
            a.entry(file.to_string()).or_default().push(bytes);
        }
    }

    /// Stops the reader; returns how many files it read and what it found wrong.
    pub fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let violations = self
            .violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        (self.reads.load(Ordering::SeqCst), violations)
    }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Waits until the cluster serves again as the tests after this one expect: the API server
/// ready (directly and through the `kubernetes` Service), every node Ready, every agent and
/// both controller replicas rolled out and ready.
pub async fn wait_cluster_healthy() {
    wait_for_readyz("the API server", &[]).await;
    let via_service = format!("--server=https://{}:443", kubernetes_service_ip());
    wait_for_readyz(
        "the API server through the kubernetes Service",
        &[&via_service],
    )
    .await;
    kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "nodes",
        "--all",
        "--timeout=180s",
    ]);
    wait_agents_rolled_out();
    wait_controller_ready();
}

impl Batch {
    /// Deletes the batch's profiles and waits until no file of theirs is left on either node.
    pub async fn delete_all(&self, client: &Client) {
        let api: Api<SeccompProfile> = Api::all(client.clone());
        api.delete_collection(
            &Default::default(),
            &ListParams::default().labels(&self.selector()),
        )
        .await
        .expect("delete the batch's profiles");
        let names: BTreeSet<String> = self.specs.iter().map(|(n, _)| file_name(n)).collect();
        eventually(
            "the batch's files to be gone from both nodes",
            Duration::from_secs(120),
            || async { both_match(&BTreeMap::new(), &names) },
        )
        .await;
    }
}

/// The agent's namespace and the label of its pods (manifests/daemonset.yaml).
const AGENT_NAMESPACE: &str = crate::lifecycle::AGENT_NAMESPACE;
const AGENT_SELECTOR: &str = "app.kubernetes.io/component=agent";

/// The name of the agent pod on `node` that is not being deleted, if there is one.
pub fn agent_pod_on(node: &str) -> Option<String> {
    let out = kubectl_ok(&[
        "-n",
        AGENT_NAMESPACE,
        "get",
        "pods",
        "-l",
        AGENT_SELECTOR,
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ]);
    out.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains(' '))
        .map(str::to_string)
}

/// What the agent pod `pod` answers on its probe `path` (`/readyz`, `/healthz`), through the
/// API server's pod proxy.
pub fn agent_probe(pod: &str, path: &str) -> Result<String, String> {
    let out = kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/{AGENT_NAMESPACE}/pods/{pod}:9810/proxy{path}"),
        "--request-timeout=5s",
    ]);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Deletes node2's agent pod and waits until the one the DaemonSet starts in its place is
/// ready: a new container, whose mounts are made from what node2 has at its path now.
pub fn restart_node2_agent() {
    let old = agent_pod_on(NODE2).expect("an agent pod on node2");
    kubectl_ok(&["-n", AGENT_NAMESPACE, "delete", "pod", &old, "--wait=true"]);
    let start = Instant::now();
    loop {
        if let Some(new) = agent_pod_on(NODE2).filter(|p| *p != old) {
            let ready = kubectl(&[
                "-n",
                AGENT_NAMESPACE,
                "wait",
                "--for=condition=Ready",
                &format!("pod/{new}"),
                "--timeout=5s",
            ]);
            if ready.status.success() {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "no ready agent pod on node2 in place of {old}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Whether something is mounted at `path` (inside node2's mount namespace).
fn mounted_in_node2(path: &str) -> bool {
    fs::read_to_string(format!("/proc/{}/mountinfo", node2_launcher_pid()))
        .expect("node2's mount table")
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

/// Size of the small filesystem put over node2's directory.
const SMALL_FS_KIB: u64 = 8192;

/// The name of the file that fills the small filesystem: someone else's file in seccompd's
/// directory, which the agent leaves alone.
pub const FILLER: &str = "fault-filler";

/// A small tmpfs mounted over seccompd's directory in node2's mount namespace (where node2's
/// kubelet, runtime and agent see it; the host's view of the directory stays as it was),
/// holding a copy of what the directory held, and node2's agent restarted so that its
/// container mounts it. Dropping it (also on a panic) makes it writable, unmounts it and
/// restarts node2's agent again, which then finds the real directory and catches up.
pub struct Node2SmallFs {
    restored: bool,
}

impl Node2SmallFs {
    /// Mounts it; returns once node2's new agent is ready on it.
    pub fn mount() -> Self {
        assert!(
            !mounted_in_node2(NODE2_DIR_INSIDE),
            "something is mounted at {NODE2_DIR_INSIDE} in node2 already"
        );
        // The directory as the host has it: the same directory, seen without the mount.
        let under = "/var/lib/seccompd-e2e/node2/kubelet/seccomp/seccompd";
        let script = format!(
            "set -e; mount -t tmpfs -o size={SMALL_FS_KIB}k,mode=0755 seccompd-e2e-fault \
             {NODE2_DIR_INSIDE}; cp -a {under}/. {NODE2_DIR_INSIDE}/"
        );
        let guard = Self { restored: false };
        in_node2_ok(&["sh", "-c", &script]);
        restart_node2_agent();
        guard
    }

    /// Fills it: a file of someone else's takes every free byte, so that the next write
    /// fails with ENOSPC. Returns how many bytes the filler took.
    pub fn fill(&self) -> u64 {
        use std::io::Write;
        let path = node2_dir().join(FILLER);
        let mut file = fs::File::create(&path).expect("creating the filler");
        let chunk = vec![0u8; 4096];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        let _ = file.sync_all();
        written
    }

    /// Frees what [`fill`](Self::fill) took.
    pub fn free(&self) {
        fs::remove_file(node2_dir().join(FILLER)).expect("removing the filler");
    }

    /// Remounts it read-only (EROFS for every write, in the agent's container too: the
    /// filesystem itself turns read-only) or writable again.
    pub fn set_read_only(&self, read_only: bool) {
        let how = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        in_node2_ok(&["mount", "-o", how, NODE2_DIR_INSIDE]);
    }

    fn restore(&mut self) {
        if self.restored {
            return;
        }
        self.restored = true;
        let _ = in_node2(&["mount", "-o", "remount,rw", NODE2_DIR_INSIDE]);
        let _ = fs::remove_file(node2_dir().join(FILLER));
        if mounted_in_node2(NODE2_DIR_INSIDE) {
            let out = in_node2(&["umount", NODE2_DIR_INSIDE]);
            if !out.status.success() {
                // Busy: detach it now; it goes once nothing uses it.
                let _ = in_node2(&["umount", "-l", NODE2_DIR_INSIDE]);
            }
        }
        assert!(
            !mounted_in_node2(NODE2_DIR_INSIDE),
            "the small filesystem is still mounted at {NODE2_DIR_INSIDE} in node2"
        );
        restart_node2_agent();
    }

    /// Unmounts it and restarts node2's agent on the real directory.
    pub fn unmount(mut self) {
        self.restore();
    }
}

impl Drop for Node2SmallFs {
    fn drop(&mut self) {
        self.restore();
    }
}

/// The address the API server advertises: the `kubernetes` Service's endpoint, which the
/// nodes' kubelets dial and kube-proxy translates the Service to. (The admin kubeconfig's
/// server is the host's loopback, which node2's network namespace never uses.)
pub fn api_server_ip() -> String {
    let ip = kubectl_ok(&[
        "-n",
        "default",
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=kubernetes",
        "-o",
        "jsonpath={.items[0].endpoints[0].addresses[0]}",
    ]);
    let ip: std::net::IpAddr = ip
        .trim()
        .parse()
        .expect("the API server's endpoint address");
    assert!(
        !ip.is_loopback(),
        "the API server advertises {ip}, which node2 cannot be cut off from"
    );
    ip.to_string()
}

/// The comment that marks the partition's rules in node2's network namespace.
const PARTITION_COMMENT: &str = "seccompd-e2e-partition";

/// node2 cut off from the API server: rules in node2's network namespace drop every packet
/// to or from the API server's address (what node2's kubelet sends, and what its pods send
/// through the `kubernetes` Service once kube-proxy translated it), so established
/// connections hang as on a dead link instead of being refused. Its processes keep running.
/// Dropping it (also on a panic) removes the rules.
pub struct Node2Partition {
    rules: Vec<Vec<String>>,
    healed: bool,
}

impl Node2Partition {
    /// Cuts node2 off.
    pub fn cut() -> Self {
        let api = api_server_ip();
        let rule = |chain: &str, dir: &str| {
            [
                chain,
                dir,
                &api,
                "-m",
                "comment",
                "--comment",
                PARTITION_COMMENT,
                "-j",
                "DROP",
            ]
            .map(String::from)
            .to_vec()
        };
        let rules = vec![
            rule("INPUT", "-s"),
            rule("OUTPUT", "-d"),
            rule("FORWARD", "-s"),
            rule("FORWARD", "-d"),
        ];
        let mut partition = Self {
            rules: Vec::new(),
            healed: false,
        };
        for r in rules {
            let mut args = vec!["iptables", "-w", "-I"];
            args.push(&r[0]);
            args.push("1");
            args.extend(r[1..].iter().map(String::as_str));
            in_node2_ok(&args);
            partition.rules.push(r);
        }
        partition
    }

    fn remove_rules(&mut self) {
        if self.healed {
            return;
        }
        self.healed = true;
        for r in &self.rules {
            let mut args = vec!["iptables", "-w", "-D"];
            args.extend(r.iter().map(String::as_str));
            while in_node2(&args).status.success() {}
        }
        let left = in_node2_ok(&["iptables-save", "-t", "filter"]);
        assert!(
            !left.contains(PARTITION_COMMENT),
            "partition rules left in node2: {left}"
        );
    }

    /// Removes the rules: node2 reaches the API server again.
    pub fn heal(mut self) {
        self.remove_rules();
    }
}

impl Drop for Node2Partition {
    fn drop(&mut self) {
        self.remove_rules();
    }
}
