//! A new node joining. The node hack/node2.sh runs is taken down, its Node object and the
//! pods bound to it are deleted, and it comes back empty (new kubelet root, /var/lib and
//! image store), so it registers as a node the cluster has never seen. A pod that uses an
//! installed profile and may run only on that node is waiting when it registers. Measured
//! from the registration: the profile's file on the node, and the pod running; and how often
//! the kubelet failed to create the pod's container before.
//!
//! Each system gets the node the way its documentation asks: for seccompd it registers with
//! seccompd's taint (docs/operations.md, "New nodes"); SPO has no such step, so for SPO it
//! registers without.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Node as NodeObject, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::process::Command;

use crate::node::Node;
use crate::system::{BENCH_LABEL, System};
use crate::watch::FirstSeen;
use crate::workload::json_file;

/// File polling interval while the node joins.
const POLL: Duration = Duration::from_millis(5);
/// API polling interval while waiting for objects to go or pods to be ready.
const API_POLL: Duration = Duration::from_millis(200);

/// One join: the system under test and the pod waiting for the node.
pub struct Join<'a> {
    pub client: &'a Client,
    pub system: System,
    pub node: &'a Node,
    /// hack/node2.sh.
    pub script: &'a Path,
    /// An installed profile of the system; the pod uses it.
    pub profile: &'a str,
    /// The bench's run label, namespace and image for the pod.
    pub run: &'a str,
    pub namespace: &'a str,
    pub image: &'a str,
    /// Longest wait for each step.
    pub limit: Duration,
}

/// What a join measured.
pub struct Joined {
    /// Registration -> the profile's file on the node.
    pub file: Duration,
    /// Registration -> the pod's container running.
    pub running: Duration,
    /// Times the kubelet failed to create the pod's container (its `Failed` Events).
    pub failed_starts: u32,
    /// What the pod's container waited for besides being created, each reason once.
    pub waits: Vec<String>,
}

impl Join<'_> {
    /// Takes the node down, brings it back as a new node and measures; the node is brought
    /// back (untimed) also when a step fails.
    pub async fn measure(&self) -> anyhow::Result<Joined> {
        let result = async {
            self.take_down().await.context("taking the node down")?;
            self.bring_back().await
        }
        .await;
        if result.is_err() {
            self.recover().await;
        }
        result
    }

    fn script(&self, command: &str) -> Command {
        let mut c = Command::new(self.script);
        c.arg(command).env(
            "SECCOMPD_REGISTER_TAINT",
            if self.system.register_taint() {
                "1"
            } else {
                "0"
            },
        );
        c
    }

    async fn run_script(&self, command: &str) -> anyhow::Result<()> {
        let status = self
            .script(command)
            .status()
            .await
            .with_context(|| format!("running {} {command}", self.script.display()))?;
        check(status, self.script, command)
    }

    /// The node's processes stopped, its Node object and the pods bound to it gone, the
    /// system's controllers available again elsewhere.
    async fn take_down(&self) -> anyhow::Result<()> {
        let name = self.node.name.as_str();
        self.run_script("down").await?;
        let nodes: Api<NodeObject> = Api::all(self.client.clone());
        nodes.delete(name, &DeleteParams::default()).await.ok();
        self.until(&format!("Node {name} gone"), async || {
            Ok(nodes.get_opt(name).await?.is_none())
        })
        .await?;
        // A kubelet starts the pods bound to its node's name: a new node has none.
        let pods: Api<Pod> = Api::all(self.client.clone());
        let bound = ListParams::default().fields(&format!("spec.nodeName={name}"));
        self.until(&format!("no pod bound to {name}"), async || {
            let left = pods.list_metadata(&bound).await?.items;
            for p in &left {
                let ns: Api<Pod> =
                    Api::namespaced(self.client.clone(), &p.namespace().unwrap_or_default());
                ns.delete(&p.name_any(), &DeleteParams::default().grace_period(0))
                    .await
                    .ok();
            }
            Ok(left.is_empty())
        })
        .await?;
        // Its webhooks must answer before the pod is created.
        let deployments: Api<Deployment> =
            Api::namespaced(self.client.clone(), self.system.namespace());
        self.until("the system's Deployments available elsewhere", async || {
            Ok(deployments
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .all(|d| {
                    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    let available = d
                        .status
                        .as_ref()
                        .and_then(|s| s.available_replicas)
                        .unwrap_or(0);
                    wanted == 0 || available > 0
                }))
        })
        .await
    }

    async fn bring_back(&self) -> anyhow::Result<Joined> {
        let name = self.node.name.as_str();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), self.namespace);
        let pod_name = format!("{}-join", self.profile);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": pod_name, "labels": {BENCH_LABEL: self.run}},
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": name},
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "sleep",
                    "image": self.image,
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"],
                    "securityContext": {"seccompProfile": {
                        "type": "Localhost",
                        "localhostProfile": self.system.localhost_profile(self.profile)}},
                }],
            },
        }))?;
        // Retried: a webhook of the system may not answer yet.
        let mut last_error = String::new();
        self.until(&format!("pod {pod_name} created"), async || {
            match pods.create(&PostParams::default(), &pod).await {
                Ok(_) => Ok(true),
                Err(e) => {
                    last_error = e.to_string();
                    Ok(false)
                }
            }
        })
        .await
        .with_context(|| format!("last error: {last_error}"))?;

        let by_name = |n: &str| watcher::Config::default().fields(&format!("metadata.name={n}"));
        let node_seen = FirstSeen::start(
            Api::<NodeObject>::all(self.client.clone()),
            by_name(name),
            |_: &NodeObject, now, seen| seen.mark("registered", now),
        )
        .await?;
        let pod_seen = FirstSeen::start(pods.clone(), by_name(&pod_name), |p: &Pod, now, seen| {
            let state = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first())
                .and_then(|c| c.state.as_ref());
            if state.is_some_and(|s| s.running.is_some()) {
                seen.mark("running", now);
            }
            if let Some(w) = state.and_then(|s| s.waiting.as_ref())
                && let Some(reason) = w.reason.as_deref().filter(|r| *r != "ContainerCreating")
            {
                seen.note(format!("{reason}: {}", w.message.as_deref().unwrap_or("")));
            }
            if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
                seen.note(format!(
                    "terminated, exit code {}: {}",
                    t.exit_code,
                    t.reason.as_deref().unwrap_or("")
                ));
            }
        })
        .await?;

        self.run_script("network").await?;
        let mut up = self
            .script("up")
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} up", self.script.display()))?;
        let start = Instant::now();
        let file = self.system.node_file(self.node, self.profile);
        let (mut file_at, mut up_done) = (None, false);
        loop {
            if file_at.is_none() && json_file(&file).is_some() {
                file_at = Some(Instant::now());
            }
            if !up_done && let Some(status) = up.try_wait()? {
                check(status, self.script, "up")?;
                up_done = true;
            }
            if up_done && file_at.is_some() && pod_seen.at("running").is_some() {
                break;
            }
            if start.elapsed() > self.limit {
                bail!(
                    "not within {:?}: node up {up_done}, Node registered {}, file {}, pod running {} ({})",
                    self.limit,
                    node_seen.at("registered").is_some(),
                    file_at.is_some(),
                    pod_seen.at("running").is_some(),
                    pod_seen.notes().join("; ")
                );
            }
            tokio::time::sleep(POLL).await;
        }
        let registered = node_seen
            .at("registered")
            .context("the pod runs on a Node never seen registered")?;
        let since = |t: Option<Instant>| {
            t.unwrap_or(registered)
                .saturating_duration_since(registered)
        };
        let joined = Joined {
            file: since(file_at),
            running: since(pod_seen.at("running")),
            failed_starts: self.failed_starts(&pod_name).await?,
            waits: pod_seen.notes(),
        };
        self.daemon_ready().await?;
        pods.delete(&pod_name, &DeleteParams::default().grace_period(0))
            .await
            .ok();
        Ok(joined)
    }

    /// The kubelet's `Failed` Events about the pod, with their repeat counts.
    async fn failed_starts(&self, pod: &str) -> anyhow::Result<u32> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), self.namespace);
        let lp = ListParams::default().fields(&format!("involvedObject.name={pod}"));
        Ok(events
            .list(&lp)
            .await?
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Failed"))
            .map(|e| e.count.unwrap_or(1).max(1) as u32)
            .sum())
    }

    /// The system's daemon ready on the node again, as it must be for what comes after
    /// (SPO's per-node finalizers are released by its daemons).
    async fn daemon_ready(&self) -> anyhow::Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), self.system.namespace());
        let lp = ListParams::default()
            .labels(self.system.daemon_selector())
            .fields(&format!("spec.nodeName={}", self.node.name));
        self.until("the system's daemon ready on the node", async || {
            Ok(pods.list(&lp).await?.items.iter().any(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            }))
        })
        .await
    }

    /// Brings the node back after a failed step, untimed; reports what fails.
    async fn recover(&self) {
        eprintln!(
            "vs-spo: bringing {} back after a failed join",
            self.node.name
        );
        for command in ["down", "network", "up"] {
            if let Err(e) = self.run_script(command).await {
                eprintln!("vs-spo: {e:#}");
                return;
            }
        }
    }

    /// Polls `done` until it says true; an error after the limit.
    async fn until(
        &self,
        what: &str,
        mut done: impl AsyncFnMut() -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if done().await? {
                return Ok(());
            }
            if start.elapsed() > self.limit {
                bail!("{what}: not within {:?}", self.limit);
            }
            tokio::time::sleep(API_POLL).await;
        }
    }
}

fn check(status: ExitStatus, script: &Path, command: &str) -> anyhow::Result<()> {
    if status.success() {
        Ok(())
    } else {
        bail!("{} {command} failed ({status})", script.display())
    }
}
