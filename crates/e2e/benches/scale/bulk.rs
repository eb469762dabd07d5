//! Many profiles at once (issue 12, section 4): `kubectl apply` of P profiles in one file, then
//! the time to every file on every simulated node and to every profile `Installed`; a cold
//! start of a simulated agent with those files on disk (and once with an empty directory); the
//! agents' and the status writer's resident memory before, with P profiles, after their
//! deletion, and with P profiles again (churn).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::Client;

use crate::apimetrics::quiet;
use crate::fleet::Fleet;
use crate::procs;
use crate::profiles;
use crate::run::{Cluster, QUIET_LIMIT, status_writer};
use crate::tracker::Tracker;

/// How long the whole bulk change may take before the run fails (a bound, not a goal).
const BULK_LIMIT: Duration = Duration::from_secs(600);

/// How often the P files are polled.
const BULK_POLL: Duration = Duration::from_millis(10);

/// What the bulk run measured.
struct BulkFigures {
    nodes: usize,
    profiles: usize,
    apply: Duration,
    files: Duration,
    installed: Duration,
    /// Resident memory (KiB; agents: the largest) at each step of the run.
    agent_rss_kib: Rss,
    /// The part of that agent's that maps files (its code).
    agent_file_kib: Rss,
    writer_rss_kib: Rss,
    writer_node: String,
    cold_start: Duration,
    cold_start_rss_kib: u64,
    cold_start_empty: Duration,
    delete_gone: Duration,
}

/// Resident memory before the profiles, with them, after their deletion and with them again.
#[derive(Default)]
struct Rss {
    before: u64,
    with_profiles: u64,
    after_delete: u64,
    again: u64,
}

/// The largest simulated agent's and the status writer's resident memory now; the agent's
/// with the part that maps files.
async fn rss_now(client: &Client, fleet: &Fleet) -> ((u64, u64), u64, String) {
    let agent = fleet
        .nodes
        .iter()
        .filter_map(|n| n.pid())
        .filter_map(|pid| Some((procs::rss_kib(pid)?, procs::rss_file_kib(pid)?)))
        .max()
        .unwrap_or_default();
    let (writer_node, writer) = status_writer(client).await;
    (agent, writer, writer_node)
}

/// Runs the bulk measurement with `nodes` simulated nodes and `count` profiles; returns the
/// lines to print, the last of them the `scale-bulk:` line.
pub async fn run(
    client: &Client,
    fleet: &mut Fleet,
    kubectl: &[String],
    nodes: usize,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    fleet.grow(nodes).await?;
    let cluster = Cluster::look(client).await?;
    let total = (nodes + cluster.real_nodes.len()) as u32;
    let tracker = Tracker::start(client.clone(), &fleet.selector(), total).await?;
    let names: Vec<String> = (0..count).map(profiles::name).collect();
    let dirs: Vec<PathBuf> = fleet.nodes.iter().map(|n| n.dir()).collect();
    let v1 = profiles::file_bytes(1)?;

    let manifest = write_manifest(fleet, &names)?;
    quiet(client, QUIET_LIMIT).await?;
    let (mut agent_rss_kib, mut agent_file_kib, mut writer_rss_kib) =
        (Rss::default(), Rss::default(), Rss::default());
    (
        (agent_rss_kib.before, agent_file_kib.before),
        writer_rss_kib.before,
        _,
    ) = rss_now(client, fleet).await;

    let apply_start = Instant::now();
    kubectl_ok(kubectl, &["apply", "-f", &manifest.to_string_lossy()])?;
    let applied = Instant::now();
    let files = wait_all_files(&dirs, &names, Some(&v1), applied).await?;
    let installed = wait_all_installed(&tracker, &names, applied).await?;
    quiet(client, QUIET_LIMIT).await?;
    let writer_node;
    (
        (agent_rss_kib.with_profiles, agent_file_kib.with_profiles),
        writer_rss_kib.with_profiles,
        writer_node,
    ) = rss_now(client, fleet).await;

    // Churn: all deleted, then all applied again (client-side, as before).
    delete_all(kubectl, fleet)?;
    wait_all_files(&dirs, &names, None, Instant::now()).await?;
    quiet(client, QUIET_LIMIT).await?;
    (
        (agent_rss_kib.after_delete, agent_file_kib.after_delete),
        writer_rss_kib.after_delete,
        _,
    ) = rss_now(client, fleet).await;
    kubectl_ok(kubectl, &["apply", "-f", &manifest.to_string_lossy()])?;
    wait_all_files(&dirs, &names, Some(&v1), Instant::now()).await?;
    quiet(client, QUIET_LIMIT).await?;
    (
        (agent_rss_kib.again, agent_file_kib.again),
        writer_rss_kib.again,
        _,
    ) = rss_now(client, fleet).await;

    // Cold start with every file on disk: the first complete sync verifies them all.
    fleet.stop_agent(0);
    fleet.restart_agent(0)?;
    let cold_start = fleet.wait_ready(0, BULK_LIMIT).await?;
    wait_all_files(&dirs[..1], &names, Some(&v1), Instant::now()).await?;
    quiet(client, QUIET_LIMIT).await?;
    let cold_start_rss_kib = fleet.nodes[0].pid().and_then(procs::rss_kib).unwrap_or(0);

    // Cold start with an empty directory: the first complete sync writes them all.
    fleet.stop_agent(0);
    for name in &names {
        let _ = fs::remove_file(dirs[0].join(format!("{name}.json")));
    }
    fleet.restart_agent(0)?;
    let cold_start_empty = fleet.wait_ready(0, BULK_LIMIT).await?;
    wait_all_files(&dirs[..1], &names, Some(&v1), Instant::now()).await?;
    quiet(client, QUIET_LIMIT).await?;

    delete_all(kubectl, fleet)?;
    let deleted = Instant::now();
    let delete_gone = wait_all_files(&dirs, &names, None, deleted).await?;

    Ok(BulkFigures {
        nodes,
        profiles: count,
        apply: applied - apply_start,
        files,
        installed,
        agent_rss_kib,
        agent_file_kib,
        writer_rss_kib,
        writer_node,
        cold_start,
        cold_start_rss_kib,
        cold_start_empty,
        delete_gone,
    }
    .report())
}

/// Deletes every profile of the run (without waiting for the API server to finish).
fn delete_all(kubectl: &[String], fleet: &Fleet) -> anyhow::Result<()> {
    kubectl_ok(
        kubectl,
        &[
            "delete",
            "seccompprofiles",
            "-l",
            &fleet.selector(),
            "--wait=false",
        ],
    )
}

/// Writes version 1 of every profile in `names` into one manifest in the run's directory
/// (JSON is YAML: one document per profile); returns its path.
pub fn write_manifest(fleet: &Fleet, names: &[String]) -> anyhow::Result<PathBuf> {
    let manifest = fleet.scratch("profiles.yaml");
    let docs: Vec<String> = names
        .iter()
        .map(|n| serde_json::to_string(&profiles::object(n, 1, &fleet.run_id)))
        .collect::<Result<_, _>>()
        .context("serializing the profiles")?;
    fs::write(&manifest, docs.join("\n---\n")).context("writing the profiles' manifest")?;
    Ok(manifest)
}

/// Waits until every profile in `names` is Installed everywhere at generation 1; the time
/// from `start` to the last of them.
pub async fn wait_all_installed(
    tracker: &Tracker,
    names: &[String],
    start: Instant,
) -> anyhow::Result<Duration> {
    loop {
        let (done, last) = tracker.installed_count(names, 1);
        if done == names.len() {
            return Ok(last.map_or(Duration::ZERO, |t| t.saturating_duration_since(start)));
        }
        if start.elapsed() > BULK_LIMIT {
            bail!(
                "{done} of {} profiles Installed after {BULK_LIMIT:?}",
                names.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every profile's file is right in every directory; the time since `start`.
pub async fn wait_all_files(
    dirs: &[PathBuf],
    names: &[String],
    want: Option<&[u8]>,
    start: Instant,
) -> anyhow::Result<Duration> {
    let mut last = Duration::ZERO;
    for name in names {
        last = profiles::wait_files(dirs, name, want, start, BULK_LIMIT, BULK_POLL).await?;
    }
    Ok(last)
}

pub fn kubectl_ok(kubectl: &[String], args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(&kubectl[0])
        .args(&kubectl[1..])
        .args(args)
        .output()
        .with_context(|| format!("running {}", kubectl[0]))?;
    if !out.status.success() {
        bail!(
            "kubectl {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(())
}

impl BulkFigures {
    /// What the run prints: its lines, the last of them the machine-readable `scale-bulk:` one.
    fn report(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (n, p) = (self.nodes, self.profiles);
        lines.push(format!(
            "== scale bulk: {p} profiles in one kubectl apply, {n} simulated nodes"
        ));
        lines.push(format!(
            "kubectl apply of {p} profiles took            {:>9.1} ms",
            ms(self.apply)
        ));
        lines.push(format!(
            "apply returned -> all files on all {n} nodes   {:>9.1} ms",
            ms(self.files)
        ));
        lines.push(format!(
            "apply returned -> all {p} Installed           {:>9.1} ms",
            ms(self.installed)
        ));
        let (a, f, w) = (
            &self.agent_rss_kib,
            &self.agent_file_kib,
            &self.writer_rss_kib,
        );
        lines.push(format!(
            "resident memory (KiB)          before   {p} profiles   after delete   {p} again"
        ));
        lines.push(format!(
            "simulated agent (largest)   {:>9} {:>13} {:>14} {:>11}",
            a.before, a.with_profiles, a.after_delete, a.again
        ));
        lines.push(format!(
            "  of which code (mapped files) {:>7} {:>13} {:>14} {:>11}",
            f.before, f.with_profiles, f.after_delete, f.again
        ));
        lines.push(format!(
            "status writer               {:>9} {:>13} {:>14} {:>11}   ({})",
            w.before, w.with_profiles, w.after_delete, w.again, self.writer_node
        ));
        lines.push(format!(
            "agent cold start, {p} files on disk -> verified, /readyz 200: {:.1} ms ({} KiB resident after)",
            ms(self.cold_start),
            self.cold_start_rss_kib
        ));
        lines.push(format!(
            "agent cold start, empty directory -> {p} files written, /readyz 200: {:.1} ms",
            ms(self.cold_start_empty)
        ));
        lines.push(format!(
            "delete of {p} profiles -> all files gone from {n} nodes: {:.1} ms",
            ms(self.delete_gone)
        ));
        lines.push(format!(
            "scale-bulk: nodes={n} profiles={p} apply_ms={:.0} files_ms={:.1} installed_ms={:.1} cold_start_ms={:.1} cold_start_empty_ms={:.1} agent_rss_kib={} agent_rss_before_kib={} agent_rss_after_delete_kib={} agent_rss_again_kib={} agent_file_kib={} agent_file_after_delete_kib={} writer_rss_kib={} writer_rss_before_kib={} writer_rss_after_delete_kib={} writer_rss_again_kib={}",
            ms(self.apply),
            ms(self.files),
            ms(self.installed),
            ms(self.cold_start),
            ms(self.cold_start_empty),
            a.with_profiles,
            a.before,
            a.after_delete,
            a.again,
            f.with_profiles,
            f.after_delete,
            w.with_profiles,
            w.before,
            w.after_delete,
            w.again,
        ));
        lines
    }
}
