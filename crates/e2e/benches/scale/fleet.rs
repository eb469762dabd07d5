//! The simulated nodes: for each, a Node object registered through the API (no kubelet behind
//! it) and a real `seccompd-agent` process on the host with that node name, its own kubelet
//! root and its own health port. Everything the fleet creates is labelled or recorded so that
//! a later run removes what a crashed one left behind.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt, stream};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use seccompd_api::SeccompNodeReport;
use serde_json::json;

/// Label on every object a bench run creates (Nodes, SeccompProfiles); its value is the run id.
pub const RUN_LABEL: &str = "seccompd.dev/scale-bench";

/// Environment variable set on every agent the bench starts (value: the run id), so that a
/// leftover process is recognised as the bench's before it is killed.
const RUN_ENV: &str = "SECCOMPD_SCALE_RUN";

/// What a run started: `dir <path>` and `pid <pid>` lines, read by the next run if this one
/// could not clean up (SIGKILL, power loss).
const STATE_FILE: &str = "/run/seccompd-scale-bench.state";

/// Where the simulated nodes' kubelet roots go.
const BASE_DIR: &str = "/tmp";

/// Namespace of the DaemonSet.
const AGENT_NAMESPACE: &str = "seccompd-system";

/// The inotify knob every agent needs one instance of.
const INOTIFY_INSTANCES: &str = "/proc/sys/fs/inotify/max_user_instances";

/// Agents started before the bench waits for their readiness; a gentler start on two cores
/// than all at once.
const START_BATCH: usize = 20;

/// How long a batch of agents may take to be ready, and the fleet to settle.
const START_LIMIT: Duration = Duration::from_secs(180);

/// One simulated node.
pub struct SimNode {
    /// The Node's name, also the agent's NODE_NAME.
    pub name: String,
    /// The kubelet root the agent uses.
    pub root: PathBuf,
    /// The agent's /readyz and /metrics port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl SimNode {
    /// The directory the agent owns.
    pub fn dir(&self) -> PathBuf {
        self.root.join("seccomp/seccompd")
    }

    /// The agent's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// The simulated nodes of a bench run, and how to undo them.
pub struct Fleet {
    client: Client,
    binary: PathBuf,
    kubeconfig: PathBuf,
    /// This run's id (value of [`RUN_LABEL`]).
    pub run_id: String,
    base: PathBuf,
    /// The nodes, in the order they were added.
    pub nodes: Vec<SimNode>,
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    inotify_restore: Option<u64>,
}

impl Fleet {
    /// Removes what an earlier run left behind, then prepares an empty fleet.
    pub async fn new(client: Client, binary: PathBuf, kubeconfig: PathBuf) -> anyhow::Result<Self> {
        remove_leftovers(&client).await;
        let run_id = format!("{}", std::process::id());
        let base = Path::new(BASE_DIR).join(format!("seccompd-scale-{run_id}"));
        fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
        fs::write(STATE_FILE, format!("dir {}\n", base.display()))
            .with_context(|| format!("writing {STATE_FILE}"))?;
        Ok(Self {
            client,
            binary,
            kubeconfig,
            run_id,
            base,
            nodes: Vec::new(),
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
            inotify_restore: None,
        })
    }

    /// A file in the run's directory (removed with it at clean-up).
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// The label selector of this run's objects.
    pub fn selector(&self) -> String {
        format!("{RUN_LABEL}={}", self.run_id)
    }

    /// Adds simulated nodes until there are `n`, waits until every new agent is ready and the
    /// control plane has done what it does once per new Node (see the bench's doc comment).
    pub async fn grow(&mut self, n: usize) -> anyhow::Result<()> {
        if n <= self.nodes.len() {
            return Ok(());
        }
        let first = self.nodes.len();
        self.ensure_inotify(n - first)?;
        let started = Instant::now();
        let names: Vec<String> = (first..n).map(node_name).collect();
        let nodes: Api<Node> = Api::all(self.client.clone());
        stream::iter(names.iter())
            .map(|name| {
                let nodes = nodes.clone();
                let node = sim_node_object(name, &self.run_id);
                async move {
                    nodes
                        .create(&PostParams::default(), &node)
                        .await
                        .with_context(|| format!("registering Node {name}"))
                }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await?;
        for batch in names.chunks(START_BATCH) {
            let ports = free_ports(batch.len())?;
            let from = self.nodes.len();
            for (name, port) in batch.iter().zip(ports) {
                let node = self.spawn(name, port)?;
                self.nodes.push(node);
            }
            for i in from..self.nodes.len() {
                self.wait_ready(i, START_LIMIT).await?;
            }
        }
        self.settle(&names).await;
        println!(
            "fleet: {} simulated nodes ready ({} new in {:.1} s)",
            self.nodes.len(),
            n - first,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn spawn(&self, name: &str, port: u16) -> anyhow::Result<SimNode> {
        let base = self.base.join(name);
        let root = base.join("kubelet");
        fs::create_dir_all(root.join("seccomp"))
            .with_context(|| format!("creating {}", root.display()))?;
        let log = base.join("agent.log");
        let mut node = SimNode {
            name: name.to_string(),
            root,
            port,
            child: None,
            log,
        };
        self.start_agent(&mut node)?;
        Ok(node)
    }

    fn start_agent(&self, node: &mut SimNode) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&node.log)
            .with_context(|| format!("opening {}", node.log.display()))?;
        let child = Command::new(&self.binary)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NODE_NAME", &node.name)
            .env("KUBELET_ROOT", &node.root)
            .env("HEALTH_ADDR", format!("127.0.0.1:{}", node.port))
            .env("RUST_LOG", "info")
            // As the DaemonSet runs it (manifests/daemonset.yaml).
            .env("GLIBC_TUNABLES", "glibc.malloc.arena_max=1")
            .env(RUN_ENV, &self.run_id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let mut state = File::options()
            .append(true)
            .open(STATE_FILE)
            .with_context(|| format!("opening {STATE_FILE}"))?;
        writeln!(state, "pid {}", child.id()).context("recording the agent's pid")?;
        node.child = Some(child);
        Ok(())
    }

    /// Stops node `i`'s agent (SIGTERM, then waits for it to exit).
    pub fn stop_agent(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            signal(child.id(), libc::SIGTERM);
            let _ = child.wait();
        }
    }

    /// Starts node `i`'s agent again with the same directory and port.
    pub fn restart_agent(&mut self, i: usize) -> anyhow::Result<()> {
        let mut node = std::mem::replace(
            &mut self.nodes[i],
            SimNode {
                name: String::new(),
                root: PathBuf::new(),
                port: 0,
                child: None,
                log: PathBuf::new(),
            },
        );
        let started = self.start_agent(&mut node);
        self.nodes[i] = node;
        started
    }

    /// Waits until node `i`'s agent answers `/readyz` with 200 (its first complete sync is
    /// done); returns how long that took from now.
    pub async fn wait_ready(&mut self, i: usize, limit: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let uri: hyper::Uri = format!("http://127.0.0.1:{}/readyz", self.nodes[i].port).parse()?;
        loop {
            if let Ok(res) = self.http.get(uri.clone()).await
                && res.status() == hyper::StatusCode::OK
            {
                return Ok(start.elapsed());
            }
            if let Some(child) = self.nodes[i].child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "agent of {} exited ({status}); see {}",
                    self.nodes[i].name,
                    self.nodes[i].log.display()
                );
            }
            if start.elapsed() > limit {
                bail!(
                    "agent of {} not ready within {limit:?}; see {}",
                    self.nodes[i].name,
                    self.nodes[i].log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGSTOP (true) or SIGCONT (false) to every agent.
    pub fn freeze(&self, stop: bool) {
        let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
        for pid in self.nodes.iter().filter_map(SimNode::pid) {
            signal(pid, sig);
        }
    }

    /// Waits until the DaemonSet's pod is bound on every new node, the node lifecycle
    /// controller has replaced the `not-ready` taint the API server adds at registration and
    /// has registered the node (its `RegisteredNode` event): all of it happens once per Node. Goes on with a warning if that takes too long: it only
    /// skews the figures, it does not make them wrong.
    async fn settle(&self, names: &[String]) {
        let want: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        let nodes: Api<Node> = Api::all(self.client.clone());
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), AGENT_NAMESPACE);
        let events: Api<Event> = Api::namespaced(self.client.clone(), "default");
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < START_LIMIT {
            let mut error = None;
            let tainted = match nodes
                .list(&ListParams::default().labels(&self.selector()))
                .await
            {
                Ok(list) => list
                    .items
                    .iter()
                    .filter(|n| want.contains(n.name_any().as_str()))
                    .filter(|n| {
                        n.spec
                            .as_ref()
                            .and_then(|s| s.taints.as_ref())
                            .is_some_and(|t| t.iter().any(|t| t.key == NOT_READY_TAINT))
                    })
                    .count(),
                Err(e) => {
                    error = Some(e.to_string());
                    want.len()
                }
            };
            let bound: BTreeSet<String> = match pods.list(&ListParams::default()).await {
                Ok(list) => list
                    .items
                    .iter()
                    .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                    .collect(),
                Err(e) => {
                    error = Some(e.to_string());
                    BTreeSet::new()
                }
            };
            let unbound = want.iter().filter(|n| !bound.contains(**n)).count();
            let registered: BTreeSet<String> = match events
                .list(&ListParams::default().fields("reason=RegisteredNode"))
                .await
            {
                Ok(list) => list
                    .items
                    .into_iter()
                    .filter_map(|e| e.involved_object.name)
                    .collect(),
                Err(e) => {
                    error = Some(e.to_string());
                    BTreeSet::new()
                }
            };
            let unseen = want.iter().filter(|n| !registered.contains(**n)).count();
            if tainted == 0 && unbound == 0 && unseen == 0 {
                return;
            }
            last = error.unwrap_or_else(|| {
                format!(
                    "{tainted} nodes still tainted not-ready, {unbound} without a bound \
                     DaemonSet pod, {unseen} not yet registered by the node lifecycle controller"
                )
            });
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        println!("fleet: warning: the control plane had not settled after {START_LIMIT:?}: {last}");
    }

    /// Raises the per-user inotify instance limit if `more` agents would exceed it; the old
    /// value is put back by [`Fleet::cleanup`].
    fn ensure_inotify(&mut self, more: usize) -> anyhow::Result<()> {
        let limit: u64 = fs::read_to_string(INOTIFY_INSTANCES)
            .context("reading the inotify instance limit")?
            .trim()
            .parse()
            .context("parsing the inotify instance limit")?;
        let needed = inotify_instances_in_use() + more as u64 + 32;
        if needed > limit {
            fs::write(INOTIFY_INSTANCES, needed.to_string())
                .with_context(|| format!("raising {INOTIFY_INSTANCES} to {needed}"))?;
            println!("fleet: raised {INOTIFY_INSTANCES} from {limit} to {needed} for the run");
            self.inotify_restore.get_or_insert(limit);
        }
        Ok(())
    }

    /// Undoes everything: agents (continued first, should they be stopped), profiles, Nodes,
    /// the DaemonSet's pods on them, their reports, the directories, the inotify limit.
    pub async fn cleanup(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                signal(child.id(), libc::SIGCONT);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        remove_objects(&self.client).await;
        if let Err(e) = fs::remove_dir_all(&self.base) {
            println!("cleanup: removing {}: {e}", self.base.display());
        }
        let _ = fs::remove_file(STATE_FILE);
        if let Some(limit) = self.inotify_restore.take()
            && let Err(e) = fs::write(INOTIFY_INSTANCES, limit.to_string())
        {
            println!("cleanup: restoring {INOTIFY_INSTANCES} to {limit}: {e}");
        }
        self.nodes.clear();
    }
}

/// Taint the API server puts on every new Node (admission plugin TaintNodesByCondition).
const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

/// Name of simulated node `i`.
fn node_name(i: usize) -> String {
    format!("seccompd-sim-{i:03}")
}

/// A Node as a kubelet that has gone silent leaves it: every condition Unknown, tainted
/// unreachable (NoSchedule), with capacity so that the DaemonSet's pod can be bound to it.
/// The node lifecycle controller then has no condition to change (see the bench's doc
/// comment). No NoExecute taint: the controller removes it from every Node it sees first.
fn sim_node_object(name: &str, run_id: &str) -> Node {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let condition = |kind: &str| {
        json!({
            "type": kind, "status": "Unknown", "reason": "SimulatedNode",
            "message": "seccompd scale bench: no kubelet runs behind this node",
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    let conditions = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"].map(condition);
    let resources = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                RUN_LABEL: run_id,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                // Keeps hundreds of silent nodes from putting the real nodes' zone into "partial
                // disruption", which would change how the real nodes are treated meanwhile.
                "node.kubernetes.io/exclude-disruption": "",
            },
        },
        "spec": {
            "taints": [
                {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
            ],
        },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": conditions,
        },
    }))
    .unwrap_or_default()
}

/// `n` distinct free TCP ports on 127.0.0.1 (held until all are picked, then released).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .context("picking free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// inotify instances open on the machine (an upper bound of root's).
fn inotify_instances_in_use() -> u64 {
    let Ok(procs) = fs::read_dir("/proc") else {
        return 0;
    };
    procs
        .filter_map(Result::ok)
        .filter_map(|p| fs::read_dir(p.path().join("fd")).ok())
        .flat_map(|fds| fds.filter_map(Result::ok))
        .filter(|fd| fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:inotify"))
        .count() as u64
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a pid this bench started; no memory is shared.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Kills the agents a crashed earlier run recorded (only those that carry [`RUN_ENV`]),
/// removes its directory and every object carrying [`RUN_LABEL`].
async fn remove_leftovers(client: &Client) {
    if let Ok(state) = fs::read_to_string(STATE_FILE) {
        for line in state.lines() {
            match line.split_once(' ') {
                Some(("pid", pid)) => {
                    if let Ok(pid) = pid.parse::<u32>()
                        && started_by_bench(pid)
                    {
                        println!("cleanup: killing agent {pid} left by an earlier run");
                        signal(pid, libc::SIGCONT);
                        signal(pid, libc::SIGKILL);
                    }
                }
                Some(("dir", dir)) => {
                    let _ = fs::remove_dir_all(dir);
                }
                _ => {}
            }
        }
        let _ = fs::remove_file(STATE_FILE);
    }
    remove_objects(client).await;
}

fn started_by_bench(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
        env.split(|b| *b == 0)
            .any(|var| var.starts_with(format!("{RUN_ENV}=").as_bytes()))
    })
}

/// Deletes every SeccompFloor, SeccompProfile and Node carrying [`RUN_LABEL`], then the
/// DaemonSet's pods bound to those Nodes and their reports (garbage collection would remove
/// both, later). The floor first: it reaches every profile in the cluster.
async fn remove_objects(client: &Client) {
    let any_run = ListParams::default().labels(RUN_LABEL);
    let floors: Api<seccompd_api::SeccompFloor> = Api::all(client.clone());
    if let Err(e) = floors
        .delete_collection(&DeleteParams::default(), &any_run)
        .await
    {
        println!("cleanup: deleting the bench's SeccompFloor: {e}");
    }
    let profiles: Api<seccompd_api::SeccompProfile> = Api::all(client.clone());
    if let Err(e) = profiles
        .delete_collection(&DeleteParams::default(), &any_run)
        .await
    {
        println!("cleanup: deleting the bench's SeccompProfiles: {e}");
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let names: Vec<String> = match nodes.list_metadata(&any_run).await {
        Ok(list) => list.items.iter().map(|n| n.name_any()).collect(),
        Err(e) => {
            println!("cleanup: listing the simulated Nodes: {e}");
            return;
        }
    };
    if names.is_empty() {
        return;
    }
    if let Err(e) = nodes
        .delete_collection(&DeleteParams::default(), &any_run)
        .await
    {
        println!("cleanup: deleting the simulated Nodes: {e}");
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), AGENT_NAMESPACE);
    if let Ok(list) = pods.list(&ListParams::default()).await {
        for pod in list.items {
            let on_sim = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| names.contains(n));
            if on_sim {
                let _ = pods
                    .delete(&pod.name_any(), &DeleteParams::default().grace_period(0))
                    .await;
            }
        }
    }
    let reports: Api<SeccompNodeReport> = Api::all(client.clone());
    for name in &names {
        let _ = reports.delete(name, &DeleteParams::default()).await;
    }
    println!("cleanup: removed {} simulated Nodes", names.len());
}
