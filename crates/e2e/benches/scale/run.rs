//! One run: P profiles created, updated and deleted one at a time against N simulated nodes
//! and the real ones, each change followed until it is done everywhere before the next.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use seccompd_api::{SeccompNodeReport, SeccompProfile};
use seccompd_controller::status::writer::LEASE_NAME;
use seccompd_e2e::lifecycle::host_metrics;
use serde_json::json;

use crate::apimetrics::quiet;
use crate::figures::RunFigures;
use crate::fleet::{Fleet, RUN_LABEL};
use crate::procs::{self, Sampler};
use crate::profiles;
use crate::tracker::Tracker;

/// Namespace of the DaemonSet and the status writer's Lease.
pub const AGENT_NAMESPACE: &str = "seccompd-system";

/// How long one change may take before the run fails (a bound for a stuck run, not a goal).
pub const CHANGE_LIMIT: Duration = Duration::from_secs(120);

/// How long the bench waits for seccompd's traffic to stop after a phase.
pub const QUIET_LIMIT: Duration = Duration::from_secs(30);

/// How often files are polled while a change is followed.
const FILE_POLL: Duration = Duration::from_millis(2);

/// The cluster as the bench finds it.
pub struct Cluster {
    /// Nodes that are not the bench's.
    pub real_nodes: Vec<String>,
    /// SeccompProfiles that are not the bench's.
    pub other_profiles: usize,
}

impl Cluster {
    pub async fn look(client: &Client) -> anyhow::Result<Self> {
        let nodes: Api<Node> = Api::all(client.clone());
        let real_nodes = nodes
            .list_metadata(&ListParams::default().labels(&format!("!{RUN_LABEL}")))
            .await
            .context("listing Nodes")?
            .items
            .iter()
            .map(|n| n.name_any())
            .collect();
        let profiles: Api<SeccompProfile> = Api::all(client.clone());
        let other_profiles = profiles
            .list_metadata(&ListParams::default().labels(&format!("!{RUN_LABEL}")))
            .await
            .context("listing SeccompProfiles")?
            .items
            .len();
        Ok(Self {
            real_nodes,
            other_profiles,
        })
    }
}

/// The status writer: the node holding the Lease, and its agent's resident memory there.
pub async fn status_writer(client: &Client) -> (String, u64) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), AGENT_NAMESPACE);
    let holder = leases
        .get_opt(LEASE_NAME)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
        .unwrap_or_default();
    // The writer is a controller replica; its identity is `<pod>_<start time>`.
    let pod_name = seccompd_controller::status::writer::candidate_pod(&holder).to_string();
    let pods: Api<Pod> = Api::namespaced(client.clone(), AGENT_NAMESPACE);
    let pod = pods.get_opt(&pod_name).await.ok().flatten();
    let node = pod
        .as_ref()
        .and_then(|p| p.spec.as_ref()?.node_name.clone())
        .unwrap_or_default();
    let rss = pod
        .and_then(|p| p.metadata.uid)
        .and_then(|uid| procs::pod_process_pid(&uid))
        .and_then(procs::rss_kib)
        .unwrap_or(0);
    (format!("{pod_name} on {node}"), rss)
}

/// Resident memory of every simulated agent: (median, max) in KiB.
pub fn agents_rss(fleet: &Fleet) -> (u64, u64) {
    let mut rss: Vec<u64> = fleet
        .nodes
        .iter()
        .filter_map(|n| n.pid())
        .filter_map(procs::rss_kib)
        .collect();
    rss.sort_unstable();
    let median = rss.get(rss.len() / 2).copied().unwrap_or(0);
    (median, rss.last().copied().unwrap_or(0))
}

/// The sync passes every simulated agent has made, from their `/metrics`.
fn fleet_passes(fleet: &Fleet) -> f64 {
    node_passes(fleet).into_iter().flatten().sum()
}

/// The sync passes each simulated agent has made, in the fleet's order (`None`: its
/// `/metrics` did not answer).
pub fn node_passes(fleet: &Fleet) -> Vec<Option<f64>> {
    fleet
        .nodes
        .iter()
        .map(|n| {
            host_metrics(n.port)
                .get("seccompd_sync_passes_total")
                .copied()
        })
        .collect()
}

/// Runs the create, update, lag and delete phases with `nodes` simulated nodes and
/// `profiles` profiles.
pub async fn run(
    client: &Client,
    fleet: &mut Fleet,
    nodes: usize,
    profiles: usize,
) -> anyhow::Result<RunFigures> {
    fleet.grow(nodes).await?;
    let cluster = Cluster::look(client).await?;
    let total = (nodes + cluster.real_nodes.len()) as u32;
    let dirs: Vec<PathBuf> = fleet.nodes.iter().map(|n| n.dir()).collect();
    let names: Vec<String> = (0..profiles).map(profiles::name).collect();
    let api: Api<SeccompProfile> = Api::all(client.clone());
    let tracker = Tracker::start(client.clone(), &fleet.selector(), total).await?;
    let mut fig = RunFigures {
        nodes,
        profiles,
        real_nodes: cluster.real_nodes.len(),
        other_profiles: cluster.other_profiles,
        changes: 3 * profiles,
        ..RunFigures::default()
    };
    let v1 = profiles::file_bytes(1)?;
    let v2 = profiles::file_bytes(2)?;
    let apiserver = Sampler::start(procs::control_plane_pid("kube-apiserver"));
    let etcd = Sampler::start(procs::control_plane_pid("etcd"));
    let window = Instant::now();

    // Create.
    let before = quiet(client, QUIET_LIMIT).await?;
    let passes0 = fleet_passes(fleet);
    let (events0, bytes0) = tracker.received();
    for name in &names {
        let created = api
            .create(
                &PostParams::default(),
                &profiles::object(name, 1, &fleet.run_id),
            )
            .await
            .with_context(|| format!("creating {name}"))?;
        let start = Instant::now();
        let generation = created.metadata.generation.unwrap_or(1);
        let (files, installed) = follow(&dirs, &tracker, name, generation, &v1, start).await?;
        fig.create_files.push(files);
        fig.create_installed.push(installed);
    }
    let after = quiet(client, QUIET_LIMIT).await?;
    fig.traffic.add(&after.since(&before));
    if let Some(node) = fleet.nodes.first() {
        let reports: Api<SeccompNodeReport> = Api::all(client.clone());
        let report = reports
            .get(&node.name)
            .await
            .context("reading a node report")?;
        fig.report_bytes = serde_json::to_vec(&report).map(|b| b.len()).unwrap_or(0);
        fig.report_entries = report.spec.exceptions.len();
    }

    // Update.
    let before = quiet(client, QUIET_LIMIT).await?;
    for name in &names {
        let generation = update(&api, name, 2).await?;
        let start = Instant::now();
        let (files, installed) = follow(&dirs, &tracker, name, generation, &v2, start).await?;
        fig.update_files.push(files);
        fig.update_installed.push(installed);
    }
    let after = quiet(client, QUIET_LIMIT).await?;
    fig.traffic.add(&after.since(&before));
    fig.agent_passes += fleet_passes(fleet) - passes0;
    let (events1, bytes1) = tracker.received();
    // Memory with all P profiles installed and nothing going on.
    (fig.agent_rss_median_kib, fig.agent_rss_max_kib) = agents_rss(fleet);
    (fig.writer_node, fig.writer_rss_kib) = status_writer(client).await;

    // Every simulated node lags: the status lists them (at most 20 by name).
    fleet.freeze(true);
    let lagging = async {
        let generation = update(&api, &names[0], 3).await?;
        let bytes = tracker
            .status_bytes_when(
                &names[0],
                generation,
                cluster.real_nodes.len() as u32,
                CHANGE_LIMIT,
            )
            .await?;
        anyhow::Ok((generation, bytes))
    }
    .await;
    fleet.freeze(false);
    let (generation, status_bytes) = lagging?;
    fig.status_max_bytes = status_bytes;
    let start = Instant::now();
    fig.lag_recovery = tracker
        .installed_after(&names[0], generation, start, CHANGE_LIMIT)
        .await?;
    let v3 = profiles::file_bytes(3)?;
    profiles::wait_files(
        &dirs,
        &names[0],
        Some(&v3),
        Instant::now(),
        CHANGE_LIMIT,
        FILE_POLL,
    )
    .await?;

    // Delete.
    let before = quiet(client, QUIET_LIMIT).await?;
    let passes2 = fleet_passes(fleet);
    let (events2, bytes2) = tracker.received();
    for name in &names {
        api.delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting {name}"))?;
        let start = Instant::now();
        fig.delete_gone
            .push(profiles::wait_files(&dirs, name, None, start, CHANGE_LIMIT, FILE_POLL).await?);
    }
    let after = quiet(client, QUIET_LIMIT).await?;
    fig.traffic.add(&after.since(&before));
    fig.agent_passes += fleet_passes(fleet) - passes2;
    let (events3, bytes3) = tracker.received();
    fig.bench_watch_events = (events1 - events0) + (events3 - events2);
    fig.bench_watch_bytes = (bytes1 - bytes0) + (bytes3 - bytes2);
    fig.window = window.elapsed();

    fig.apiserver = apiserver.finish();
    fig.etcd = etcd.finish();
    Ok(fig)
}

/// Follows one change of `name` to `generation` from `start`: until every simulated node's
/// file holds `want`, and until the status says Installed on every node.
async fn follow(
    dirs: &[PathBuf],
    tracker: &Tracker,
    name: &str,
    generation: i64,
    want: &[u8],
    start: Instant,
) -> anyhow::Result<(Duration, Duration)> {
    let files =
        profiles::wait_files(dirs, name, Some(want), start, CHANGE_LIMIT, FILE_POLL).await?;
    let installed = tracker
        .installed_after(name, generation, start, CHANGE_LIMIT)
        .await?;
    Ok((files, installed))
}

/// Replaces profile `name`'s spec with version `version`; returns the new generation.
async fn update(api: &Api<SeccompProfile>, name: &str, version: usize) -> anyhow::Result<i64> {
    let patch = json!({"spec": profiles::spec(version)});
    let updated = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("updating {name}"))?;
    updated
        .metadata
        .generation
        .with_context(|| format!("{name} has no generation"))
}
