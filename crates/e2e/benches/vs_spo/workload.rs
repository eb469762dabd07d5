//! One system's run of the workload: the two shared profiles plus generated ones created,
//! updated and deleted one at a time; the three bad profiles; many profiles at once; then,
//! when asked, a new node joining.
//! Saves its figures after every phase.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams,
};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::apimetrics::{Resource, quiet_where};
use crate::figures::{BadOutcome, Figures, ms};
use crate::join::Join;
use crate::node::Node;
use crate::procs;
use crate::system::{BENCH_LABEL, System, bad_profiles, generated, updated};
use crate::watch::FirstSeen;

/// How long the counters may take to settle around a phase.
const QUIET_LIMIT: Duration = Duration::from_secs(30);
/// File polling interval while one change is followed.
const POLL: Duration = Duration::from_millis(1);
/// How often a settling update is checked: one read each time, the same for both systems.
const SETTLE_POLL: Duration = Duration::from_millis(5);
/// Creates and deletes in flight during the bulk phase.
const BULK_IN_FLIGHT: usize = 8;
/// The pods of the bad-profile checks run here.
const POD_NAMESPACE: &str = "vs-spo-bench";
/// The image of the test pods (cluster-up imports it).
const POD_IMAGE: &str = "localhost/busybox:e2e";

/// What the run is given.
pub struct Settings {
    pub system: System,
    pub nodes: Vec<Node>,
    pub profiles_dir: PathBuf,
    pub generated: usize,
    pub bulk: usize,
    /// Longest wait for one change.
    pub limit: Duration,
    /// Longest wait for the bulk phase's steps.
    pub bulk_limit: Duration,
    pub out: PathBuf,
    /// The node to take down and bring back as a new node, and the script that does it
    /// (hack/node2.sh); None: no join phase.
    pub rejoin: Option<(String, PathBuf)>,
}

/// The file's bytes if it holds a complete JSON document.
pub fn json_file(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?;
    Some(bytes)
}

/// Polls `done` every `poll` until it holds; the time since `start`, or an error after `limit`.
async fn wait_for(
    what: &str,
    start: Instant,
    limit: Duration,
    poll: Duration,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<Duration> {
    loop {
        if done() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(poll).await;
    }
}

pub struct Run {
    client: Client,
    s: Settings,
    api: Api<DynamicObject>,
    run: String,
    fig: Figures,
}

impl Run {
    pub fn new(client: Client, s: Settings) -> Self {
        let api = Api::all_with(client.clone(), &s.system.profile_resource());
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let fig = Figures {
            system: s.system.name().into(),
            nodes: s.nodes.len(),
            ..Figures::default()
        };
        Self {
            client,
            api,
            run: format!("vs-spo-{:x}", secs % 0xff_ffff),
            fig,
            s,
        }
    }

    pub fn figures(&mut self) -> &mut Figures {
        &mut self.fig
    }

    pub fn save(&self) -> anyhow::Result<()> {
        self.fig.save(&self.s.out)
    }

    fn in_group(&self) -> impl Fn(&Resource) -> bool + use<> {
        let group = self.s.system.group().to_string();
        move |r: &Resource| r.group == group
    }

    fn all_files(&self, name: &str) -> bool {
        self.s
            .nodes
            .iter()
            .all(|n| json_file(&self.s.system.node_file(n, name)).is_some())
    }

    fn no_file(&self, name: &str) -> bool {
        self.s
            .nodes
            .iter()
            .all(|n| std::fs::symlink_metadata(self.s.system.node_file(n, name)).is_err())
    }

    /// The whole workload; figures are saved after every phase.
    pub async fn run(&mut self) -> anyhow::Result<()> {
        let cpu_start = self.cpu().await?;
        let (daemons, controllers) = self.rss().await?;
        self.fig.daemon_rss_idle_kib = daemons;
        self.fig.controllers_rss_idle_kib = Some(controllers);
        self.save()?;
        // When each of the run's profiles was first seen installed.
        let (system, nodes) = (self.s.system, self.s.nodes.len());
        let watch = FirstSeen::start(
            self.api.clone(),
            watcher::Config::default().labels(&format!("{BENCH_LABEL}={}", self.run)),
            move |o: &DynamicObject, now, seen| {
                if system.installed(o, nodes) {
                    seen.mark(o.name_any(), now);
                }
            },
        )
        .await?;

        let result = async {
            self.one_by_one(&watch)
                .await
                .context("one-at-a-time phase")?;
            self.save()?;
            self.bad_profiles().await.context("bad profiles")?;
            self.save()?;
            self.bulk(&watch).await.context("bulk phase")?;
            anyhow::Ok(())
        }
        .await;
        let cpu_end = self.cpu().await?;
        self.fig.cpu_s_daemons = Some(cpu_end.0 - cpu_start.0);
        self.fig.cpu_s_controllers = Some(cpu_end.1 - cpu_start.1);
        // Last: the join restarts the node's daemon, whose CPU time the figures above sum.
        let result = match result {
            Ok(()) => self.join(&watch).await.context("new node phase"),
            failed => failed,
        };
        if let Err(e) = &result {
            self.fig.failed = Some(format!("{e:#}"));
        }
        self.save()?;
        result
    }

    /// The specs of the one-at-a-time phase: the shared profiles, then generated ones.
    fn profiles(&self) -> anyhow::Result<(Vec<(String, Value)>, Value)> {
        let mut out = Vec::new();
        let mut base = None;
        for file in ["centos8-ls.json", "docker-default.json"] {
            let path = self.s.profiles_dir.join(file);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let spec = self
                .s
                .system
                .spec_from_file(&bytes)
                .with_context(|| format!("{}", path.display()))?;
            if base.is_none() {
                base = Some(spec.clone());
            }
            out.push((
                format!("{}-{}", self.run, file.trim_end_matches(".json")),
                spec,
            ));
        }
        let base = base.context("no base profile")?;
        for i in 0..self.s.generated {
            out.push((format!("{}-{i:04}", self.run), generated(&base, i)));
        }
        Ok((out, base))
    }

    async fn one_by_one(&mut self, watch: &FirstSeen) -> anyhow::Result<()> {
        let (profiles, _) = self.profiles()?;
        self.fig.one_by_one = profiles.len();
        let which = self.in_group();
        let before = quiet_where(&self.client, QUIET_LIMIT, &which).await?;
        let limit = self.s.limit;
        for (name, spec) in &profiles {
            self.api
                .create(
                    &PostParams::default(),
                    &self.s.system.object(name, &self.run, spec.clone()),
                )
                .await
                .with_context(|| format!("creating {name}"))?;
            let t0 = Instant::now();
            // When each node's file appeared, too: "every node" is the slowest one.
            let mut first: Vec<Option<Duration>> = vec![None; self.s.nodes.len()];
            let d = wait_for(
                &format!("{name}: file on every node"),
                t0,
                limit,
                POLL,
                || {
                    for (n, at) in self.s.nodes.iter().zip(first.iter_mut()) {
                        if at.is_none() && json_file(&self.s.system.node_file(n, name)).is_some() {
                            *at = Some(t0.elapsed());
                        }
                    }
                    first.iter().all(Option::is_some)
                },
            )
            .await?;
            self.fig.create_file_ms.push(ms(d));
            for (n, at) in self.s.nodes.iter().zip(&first) {
                if let Some(at) = at {
                    let samples = self.fig.create_file_ms_by_node.entry(n.name.clone());
                    samples.or_default().push(ms(*at));
                }
            }
            self.note_shared_directory(name);
            wait_for(
                &format!("{name}: status Installed"),
                t0,
                limit,
                POLL,
                || watch.at(name).is_some(),
            )
            .await?;
            let at = watch.at(name).unwrap_or(t0);
            self.fig
                .create_installed_ms
                .push(ms(at.saturating_duration_since(t0)));
        }
        self.save()?;
        // Back to back: each update is sent once the previous one's files are on every node,
        // while the system may still be reporting it.
        self.fig.update_file_ms = self.update_all(&profiles, 0, false).await?;
        self.save()?;
        // Then each one settled before the next, as each create is: what one change costs
        // when the system is not still busy with the one before.
        self.fig.update_settled_file_ms = self.update_all(&profiles, 1, true).await?;
        self.save()?;
        for (name, _) in &profiles {
            self.api
                .delete(name, &DeleteParams::default())
                .await
                .with_context(|| format!("deleting {name}"))?;
            let t0 = Instant::now();
            let d = wait_for(
                &format!("{name}: file gone from every node"),
                t0,
                limit,
                POLL,
                || self.no_file(name),
            )
            .await?;
            self.fig.delete_gone_ms.push(ms(d));
        }
        self.wait_objects_gone(limit).await?;
        let after = quiet_where(&self.client, QUIET_LIMIT, &which).await?;
        let d = after.since(&before);
        let is_event = |r: &Resource| r.resource == "events";
        // Creates, two rounds of updates, deletes.
        self.fig.changes = 4 * profiles.len();
        self.fig.writes_group = Some(d.writes_where(&which));
        self.fig.writes_events = Some(d.writes_where(is_event));
        self.fig.writes_all = Some(d.writes_where(|_| true));
        self.fig.requests_by_resource = d
            .requests
            .iter()
            .filter(|((_, r), _)| which(r) || is_event(r))
            .map(|((verb, r), v)| (format!("{verb} {}", r.label()), *v))
            .collect();
        Ok(())
    }

    /// Updates every profile to round `round` of [`updated`], one at a time; returns the times
    /// from each update's response to different bytes on every node. With `settle`, each update
    /// is also followed until the system says it is done with it ([`System::settled`]) before
    /// the next one is sent, outside the time measured.
    async fn update_all(
        &self,
        profiles: &[(String, Value)],
        round: usize,
        settle: bool,
    ) -> anyhow::Result<Vec<f64>> {
        let limit = self.s.limit;
        let mut samples = Vec::with_capacity(profiles.len());
        for (name, spec) in profiles {
            let old: Vec<Option<Vec<u8>>> = self
                .s
                .nodes
                .iter()
                .map(|n| json_file(&self.s.system.node_file(n, name)))
                .collect();
            let events_before = if settle {
                self.saved_events(name).await?
            } else {
                Vec::new()
            };
            let patch = json!({"spec": {"syscalls": updated(spec, round)["syscalls"]}});
            let patched = self
                .api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .with_context(|| format!("updating {name}"))?;
            let t0 = Instant::now();
            let d = wait_for(
                &format!("{name}: new bytes on every node"),
                t0,
                limit,
                POLL,
                || {
                    self.s.nodes.iter().zip(&old).all(|(n, old)| {
                        let now = json_file(&self.s.system.node_file(n, name));
                        now.is_some() && now != *old
                    })
                },
            )
            .await?;
            samples.push(ms(d));
            if settle {
                let before: BTreeSet<String> = events_before
                    .iter()
                    .filter_map(|e| e.metadata.resource_version.clone())
                    .collect();
                self.wait_settled(name, &patched, &before).await?;
            }
        }
        Ok(samples)
    }

    /// The Events that say the system saved `name`'s file on a node (none for seccompd).
    async fn saved_events(&self, name: &str) -> anyhow::Result<Vec<Event>> {
        let Some(selector) = self.s.system.saved_events(name) else {
            return Ok(Vec::new());
        };
        let events = Api::<Event>::all(self.client.clone())
            .list(&ListParams::default().fields(&selector))
            .await
            .with_context(|| format!("listing the Events about {name}"))?;
        Ok(events.items)
    }

    /// Waits until the system is done with the update that made `patched` (one read of the
    /// object or of its Events every [`SETTLE_POLL`]).
    async fn wait_settled(
        &self,
        name: &str,
        patched: &DynamicObject,
        events_before: &BTreeSet<String>,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            // One read: the Events for SPO, the object for seccompd.
            let (obj, events) = match self.s.system.saved_events(name) {
                Some(_) => (None, self.saved_events(name).await?),
                None => {
                    let obj = self.api.get(name).await;
                    (
                        Some(obj.with_context(|| format!("reading {name}"))?),
                        Vec::new(),
                    )
                }
            };
            let generation = patched.metadata.generation;
            let done = self.s.system.settled(
                obj.as_ref(),
                generation,
                &events,
                events_before,
                &self.s.nodes,
            );
            if done {
                return Ok(());
            }
            if start.elapsed() > self.s.limit {
                bail!("{name}: the update not settled within {:?}", self.s.limit);
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    /// Notes (once) when the nodes' files of a profile are one file on this host, as SPO's
    /// would be if the nodes shared /var/lib (its daemons keep profiles there): then "on every
    /// node" would be the first daemon's write.
    fn note_shared_directory(&mut self, name: &str) {
        let real: Vec<PathBuf> = self
            .s
            .nodes
            .iter()
            .filter_map(|n| std::fs::canonicalize(self.s.system.node_file(n, name)).ok())
            .collect();
        let shared = real.len() > 1 && real.iter().all(|p| *p == real[0]);
        let note = "the nodes' files are one file on this machine (the nodes' daemons write \
                    one directory): 'on every node' is the first daemon's write";
        if shared && !self.fig.notes.iter().any(|n| n == note) {
            self.fig.notes.push(note.into());
        }
    }

    /// A new node joining (join.rs), with Docker's default profile installed (the pod runs
    /// `sleep` under it).
    async fn join(&mut self, watch: &FirstSeen) -> anyhow::Result<()> {
        let Some((name, script)) = self.s.rejoin.clone() else {
            return Ok(());
        };
        let node = self
            .s
            .nodes
            .iter()
            .find(|n| n.name == name)
            .with_context(|| format!("--rejoin {name} is none of the --node-root nodes"))?
            .clone();
        let (profiles, _) = self.profiles()?;
        let (profile, spec) = profiles
            .iter()
            .find(|(name, _)| name.ends_with("docker-default"))
            .context("no docker-default profile")?;
        let profile = format!("{profile}-join");
        self.api
            .create(
                &PostParams::default(),
                &self.s.system.object(&profile, &self.run, spec.clone()),
            )
            .await
            .with_context(|| format!("creating {profile}"))?;
        let t0 = Instant::now();
        wait_for(
            &format!("{profile}: installed"),
            t0,
            self.s.limit,
            POLL,
            || self.all_files(&profile) && watch.at(&profile).is_some(),
        )
        .await?;
        ensure_namespace(&self.client).await?;
        let joined = Join {
            client: &self.client,
            system: self.s.system,
            node: &node,
            script: &script,
            profile: &profile,
            run: &self.run,
            namespace: POD_NAMESPACE,
            image: POD_IMAGE,
            limit: self.s.bulk_limit,
        }
        .measure()
        .await?;
        self.fig.join_file_ms = Some(ms(joined.file));
        self.fig.join_pod_running_ms = Some(ms(joined.running));
        self.fig.join_failed_starts = Some(joined.failed_starts.into());
        for wait in joined.waits {
            self.fig.notes.push(format!(
                "new node: the pod's container waited with {}",
                one_line(&wait, 240)
            ));
        }
        self.api
            .delete(&profile, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting {profile}"))?;
        self.wait_objects_gone(self.s.limit).await
    }

    async fn wait_objects_gone(&self, limit: Duration) -> anyhow::Result<()> {
        let lp = ListParams::default().labels(&format!("{BENCH_LABEL}={}", self.run));
        let start = Instant::now();
        loop {
            let left = self.api.list_metadata(&lp).await?.items.len();
            if left == 0 {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!("{left} profiles still exist {limit:?} after their deletion");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn bad_profiles(&mut self) -> anyhow::Result<()> {
        ensure_namespace(&self.client).await?;
        for (case, what, spec) in bad_profiles() {
            let name = format!("{}-{case}", self.run);
            let mut outcome = BadOutcome {
                case: case.into(),
                what: what.into(),
                ..BadOutcome::default()
            };
            match self
                .api
                .create(
                    &PostParams::default(),
                    &self.s.system.object(&name, &self.run, spec),
                )
                .await
            {
                Err(kube::Error::Api(e)) => {
                    outcome.apply = format!("rejected: {}", one_line(&e.message, 220));
                    outcome.status = "-".into();
                    outcome.pod = "-".into();
                }
                Err(e) => return Err(e).context(format!("creating {name}")),
                Ok(_) => {
                    outcome.apply = "accepted".into();
                    outcome.status = self.settled_status(&name).await;
                    outcome.pod = self.pod_with(&name).await;
                    self.api.delete(&name, &DeleteParams::default()).await.ok();
                }
            }
            self.fig.bad.push(outcome);
        }
        self.wait_objects_gone(self.s.limit).await
    }

    /// The profile's status once it stops changing (or after 15 s).
    async fn settled_status(&self, name: &str) -> String {
        let start = Instant::now();
        let mut last = String::from("(no status)");
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(obj) = self.api.get(name).await {
                last = self.s.system.status_line(&obj);
                if ["Installed", "Invalid", "Error"]
                    .iter()
                    .any(|p| last.starts_with(p))
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        one_line(&last, 200)
    }

    /// Starts a pod with the profile on the first node; what it saw.
    async fn pod_with(&self, profile: &str) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), POD_NAMESPACE);
        let name = format!("{profile}-pod");
        let pod: Pod = match serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {BENCH_LABEL: self.run}},
            "spec": {
                "nodeName": self.s.nodes[0].name,
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "probe",
                    "image": POD_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", "mkdir /tmp/x && echo mkdir allowed || echo mkdir denied"],
                    "securityContext": {"seccompProfile": {
                        "type": "Localhost",
                        "localhostProfile": self.s.system.localhost_profile(profile)}},
                }],
            },
        })) {
            Ok(p) => p,
            Err(e) => return format!("(pod spec: {e})"),
        };
        if let Err(e) = pods.create(&PostParams::default(), &pod).await {
            return one_line(&format!("pod rejected: {e}"), 200);
        }
        let start = Instant::now();
        let mut seen = String::from("(pod never started)");
        while start.elapsed() < Duration::from_secs(45) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let Ok(p) = pods.get(&name).await else {
                continue;
            };
            let state = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first())
                .and_then(|c| c.state.clone());
            let Some(state) = state else { continue };
            if let Some(t) = state.terminated {
                let log = pods
                    .logs(&name, &LogParams::default())
                    .await
                    .unwrap_or_default();
                let why = [t.reason.unwrap_or_default(), t.message.unwrap_or_default()].join(" ");
                seen = format!("exit {} {}: {}", t.exit_code, why.trim(), log.trim());
                break;
            }
            if let Some(w) = state.waiting {
                let reason = w.reason.unwrap_or_default();
                if reason != "ContainerCreating" {
                    seen = format!("{reason}: {}", w.message.unwrap_or_default());
                    // A container that cannot be created stays waiting: one look is enough.
                    if start.elapsed() > Duration::from_secs(5) {
                        break;
                    }
                }
            }
        }
        pods.delete(&name, &DeleteParams::default().grace_period(0))
            .await
            .ok();
        one_line(&seen, 240)
    }

    async fn bulk(&mut self, watch: &FirstSeen) -> anyhow::Result<()> {
        let n = self.s.bulk;
        if n == 0 {
            return Ok(());
        }
        self.fig.bulk = n;
        let (_, base) = self.profiles()?;
        let objects_before = count_group_objects(&self.client, self.s.system.group()).await?;
        let events_before = count_events(&self.client, self.s.system.group()).await?;
        let names: Vec<String> = (0..n)
            .map(|i| format!("{}-bulk-{i:04}", self.run))
            .collect();
        let t_start = Instant::now();
        let api = self.api.clone();
        let objects: Vec<DynamicObject> = names
            .iter()
            .enumerate()
            .map(|(i, name)| self.s.system.object(name, &self.run, generated(&base, i)))
            .collect();
        stream::iter(objects)
            .map(|o| {
                let api = api.clone();
                async move { api.create(&PostParams::default(), &o).await }
            })
            .buffer_unordered(BULK_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await
            .context("creating the bulk profiles")?;
        let t_last = Instant::now();
        self.fig.bulk_apply_s = Some(t_last.duration_since(t_start).as_secs_f64());
        let limit = self.s.bulk_limit;
        let poll = Duration::from_millis(20);
        match wait_for("all bulk files on every node", t_last, limit, poll, || {
            names.iter().all(|name| self.all_files(name))
        })
        .await
        {
            Ok(d) => self.fig.bulk_files_ms = Some(ms(d)),
            Err(e) => {
                let done = names.iter().filter(|name| self.all_files(name)).count();
                self.fig.notes.push(format!("{e:#} ({done} of {n} done)"));
            }
        }
        match wait_for("all bulk profiles Installed", t_last, limit, poll, || {
            watch.count(&names) == n
        })
        .await
        {
            Ok(d) => self.fig.bulk_installed_ms = Some(ms(d)),
            Err(e) => self
                .fig
                .notes
                .push(format!("{e:#} ({} of {n} done)", watch.count(&names))),
        }
        self.save()?;
        let which = self.in_group();
        quiet_where(&self.client, QUIET_LIMIT, &which).await?;
        let (daemons, controllers) = self.rss().await?;
        self.fig.daemon_rss_bulk_kib = daemons;
        self.fig.controllers_rss_bulk_kib = Some(controllers);
        let objects = count_group_objects(&self.client, self.s.system.group()).await?;
        let events = count_events(&self.client, self.s.system.group()).await?;
        self.fig.objects_per_profile =
            Some(objects.saturating_sub(objects_before) as f64 / n as f64);
        self.fig.events_per_profile = Some(events.saturating_sub(events_before) as f64 / n as f64);
        self.save()?;
        stream::iter(names.clone())
            .map(|name| {
                let api = api.clone();
                async move { api.delete(&name, &DeleteParams::default()).await }
            })
            .buffer_unordered(BULK_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await
            .context("deleting the bulk profiles")?;
        let t_deleted = Instant::now();
        match wait_for("all bulk files gone", t_deleted, limit, poll, || {
            names.iter().all(|name| self.no_file(name))
        })
        .await
        {
            Ok(d) => self.fig.bulk_delete_ms = Some(ms(d)),
            Err(e) => self.fig.notes.push(format!("{e:#}")),
        }
        self.wait_objects_gone(limit).await
    }

    /// Resident memory: per node of the daemon's pods, and of all controller pods summed (KiB).
    async fn rss(&mut self) -> anyhow::Result<(BTreeMap<String, u64>, u64)> {
        let (daemons, controllers) = self.system_pods().await?;
        self.fig.daemon_pods = daemons.len();
        self.fig.controller_pods = controllers.len();
        let rss = |uid: &str| -> u64 {
            procs::pod_pids(uid)
                .into_iter()
                .filter_map(procs::rss_kib)
                .sum()
        };
        let mut per_node = BTreeMap::new();
        for (node, uid) in &daemons {
            *per_node.entry(node.clone()).or_insert(0) += rss(uid);
        }
        Ok((per_node, controllers.iter().map(|(_, uid)| rss(uid)).sum()))
    }

    /// CPU seconds so far of the daemons' and the controllers' processes.
    async fn cpu(&self) -> anyhow::Result<(f64, f64)> {
        let (daemons, controllers) = self.system_pods().await?;
        let cpu = |pods: &[(String, String)]| -> f64 {
            pods.iter()
                .flat_map(|(_, uid)| procs::pod_pids(uid))
                .filter_map(procs::cpu_seconds)
                .sum()
        };
        Ok((cpu(&daemons), cpu(&controllers)))
    }

    /// (node, uid) of the system's daemon pods and of its other pods.
    async fn system_pods(&self) -> anyhow::Result<(Vec<(String, String)>, Vec<(String, String)>)> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), self.s.system.namespace());
        let daemon_uids: Vec<String> = pods
            .list(&ListParams::default().labels(self.s.system.daemon_selector()))
            .await?
            .items
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        let (mut daemons, mut others) = (Vec::new(), Vec::new());
        for p in pods.list(&ListParams::default()).await?.items {
            let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            let (Some(uid), Some(node)) = (
                p.metadata.uid.clone(),
                p.spec.as_ref().and_then(|s| s.node_name.clone()),
            ) else {
                continue;
            };
            if !running {
                continue;
            }
            if daemon_uids.contains(&uid) {
                daemons.push((node, uid));
            } else {
                others.push((node, uid));
            }
        }
        Ok((daemons, others))
    }

    /// Deletes what the run created (profiles, pods, the pod namespace), also after a failure.
    pub async fn cleanup(&self) {
        let lp = ListParams::default().labels(&format!("{BENCH_LABEL}={}", self.run));
        if let Ok(list) = self.api.list_metadata(&lp).await {
            for o in list.items {
                self.api
                    .delete(&o.name_any(), &DeleteParams::default())
                    .await
                    .ok();
            }
        }
        if let Err(e) = self.wait_objects_gone(Duration::from_secs(120)).await {
            eprintln!("vs-spo: cleanup: {e:#}");
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .delete(POD_NAMESPACE, &DeleteParams::default())
            .await
            .ok();
        let start = Instant::now();
        while namespaces
            .get_opt(POD_NAMESPACE)
            .await
            .ok()
            .flatten()
            .is_some()
            && start.elapsed() < Duration::from_secs(120)
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

async fn ensure_namespace(client: &Client) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(POD_NAMESPACE).await?.is_none() {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": POD_NAMESPACE}}))?;
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    // The namespace's default service account must exist before a pod can be created.
    let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), POD_NAMESPACE);
    let start = Instant::now();
    while sa.get_opt("default").await?.is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("namespace {POD_NAMESPACE} has no default service account after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Objects of every resource of `group` in the cluster.
async fn count_group_objects(client: &Client, group: &str) -> anyhow::Result<usize> {
    let g = kube::discovery::group(client, group).await?;
    let mut total = 0;
    for (ar, _caps) in g.recommended_resources() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        total += api.list_metadata(&ListParams::default()).await?.items.len();
    }
    Ok(total)
}

/// Events about objects of `group`.
async fn count_events(client: &Client, group: &str) -> anyhow::Result<usize> {
    let events: Api<Event> = Api::all(client.clone());
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|e| {
            e.involved_object
                .api_version
                .as_deref()
                .is_some_and(|v| v.starts_with(&format!("{group}/")))
        })
        .count())
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "/");
    if flat.chars().count() > max {
        format!("{}...", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}
