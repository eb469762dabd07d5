//! A cluster floor at scale (issue 21): P profiles applied in one `kubectl apply` (as `--bulk`
//! does) and Installed everywhere, then one SeccompFloor denying `socket(AF_ALG, ...)` with
//! EPERM (the Copy Fail floor of tests/cluster/floor_cluster.rs). Measured: the time from the
//! create call's return until every profile file on every simulated node holds the exact
//! rendering with the floor merged, and until the floor's status says `Installed n/n`; what
//! the change cost between two quiet points of the API server's counters (report applies per
//! node, the goal being one; every other write to seccompd.dev); the sync passes each
//! simulated agent made. Then the floor is deleted and the same is measured until every file
//! holds the rendering without it again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use seccompd_api::SeccompFloor;
use seccompd_e2e::floor_figures::{
    FLOOR_NAME, FloorChange, copy_fail, floor_installed, floor_object, floored_bytes, passes_since,
};
use seccompd_profile::floor::rules_digest;

use crate::apimetrics::quiet;
use crate::bulk::{kubectl_ok, wait_all_files, wait_all_installed, write_manifest};
use crate::fleet::{Fleet, RUN_LABEL};
use crate::profiles;
use crate::run::{CHANGE_LIMIT, Cluster, QUIET_LIMIT, node_passes};
use crate::tracker::Tracker;

/// Everything the floor run measured.
pub struct FloorFigures {
    pub nodes: usize,
    pub real_nodes: usize,
    pub profiles: usize,
    /// Profiles in the cluster that are not the bench's (the floor reaches them too).
    pub other_profiles: usize,
    /// The bulk apply of the P profiles: to every file, to every profile Installed.
    pub create_files: Duration,
    pub create_installed: Duration,
    pub apply: FloorChange,
    pub removal: FloorChange,
}

/// Runs the floor measurement with `nodes` simulated nodes and `count` profiles; returns what
/// it measured.
pub async fn run(
    client: &Client,
    fleet: &mut Fleet,
    kubectl: &[String],
    nodes: usize,
    count: usize,
) -> anyhow::Result<FloorFigures> {
    fleet.grow(nodes).await?;
    let cluster = Cluster::look(client).await?;
    let total = nodes + cluster.real_nodes.len();
    let tracker = Tracker::start(client.clone(), &fleet.selector(), total as u32).await?;
    let names: Vec<String> = (0..count).map(profiles::name).collect();
    let dirs: Vec<PathBuf> = fleet.nodes.iter().map(|n| n.dir()).collect();
    let spec = copy_fail()?;
    let plain = profiles::file_bytes(1)?;
    let floored = floored_bytes(&profiles::spec(1), &spec)?;

    let manifest = write_manifest(fleet, &names)?;
    quiet(client, QUIET_LIMIT).await?;
    kubectl_ok(kubectl, &["apply", "-f", &manifest.to_string_lossy()])?;
    let applied = Instant::now();
    let create_files = wait_all_files(&dirs, &names, Some(&plain), applied).await?;
    let create_installed = wait_all_installed(&tracker, &names, applied).await?;

    let floors: Api<SeccompFloor> = Api::all(client.clone());
    let digest = rules_digest(&spec.rules);
    let before = quiet(client, QUIET_LIMIT).await?;
    let passes_before = node_passes(fleet);
    let status_watch = {
        let floors = floors.clone();
        tokio::spawn(async move {
            let done = await_condition(floors, FLOOR_NAME, move |f: Option<&SeccompFloor>| {
                floor_installed(f, total, &digest)
            });
            tokio::time::timeout(CHANGE_LIMIT, done)
                .await
                .map(|_| Instant::now())
        })
    };
    floors
        .create(
            &PostParams::default(),
            &floor_object(&spec, (RUN_LABEL, &fleet.run_id)),
        )
        .await
        .context("creating the floor")?;
    let created = Instant::now();
    let files = wait_all_files(&dirs, &names, Some(&floored), created).await?;
    let installed = match status_watch.await {
        Ok(Ok(at)) => at.saturating_duration_since(created),
        Ok(Err(_)) => {
            bail!("the floor's status was not Installed {total}/{total} within {CHANGE_LIMIT:?}")
        }
        Err(e) => bail!("the watch of the floor's status failed: {e}"),
    };
    let after = quiet(client, QUIET_LIMIT).await?;
    let apply = FloorChange {
        files,
        installed: Some(installed),
        traffic: after.since(&before),
        passes: passes_since(&passes_before, &node_passes(fleet)),
    };

    let before = after;
    let passes_before = node_passes(fleet);
    floors
        .delete(FLOOR_NAME, &DeleteParams::default())
        .await
        .context("deleting the floor")?;
    let deleted = Instant::now();
    let files = wait_all_files(&dirs, &names, Some(&plain), deleted).await?;
    let after = quiet(client, QUIET_LIMIT).await?;
    let removal = FloorChange {
        files,
        installed: None,
        traffic: after.since(&before),
        passes: passes_since(&passes_before, &node_passes(fleet)),
    };

    Ok(FloorFigures {
        nodes,
        real_nodes: cluster.real_nodes.len(),
        profiles: count,
        other_profiles: cluster.other_profiles,
        create_files,
        create_installed,
        apply,
        removal,
    })
}

impl FloorFigures {
    fn total_nodes(&self) -> usize {
        self.nodes + self.real_nodes
    }

    /// What the run prints: its lines, the last of them the machine-readable `scale-floor:`
    /// one.
    pub fn report(&self) -> Vec<String> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (n, p, t) = (self.nodes, self.profiles, self.total_nodes());
        let mut lines = vec![
            format!(
                "== scale floor: one SeccompFloor (socket(AF_ALG) -> EPERM) over {p} profiles on {n} simulated + {} real nodes ({} other profiles in the cluster)",
                self.real_nodes, self.other_profiles
            ),
            format!(
                "kubectl apply of {p} profiles -> all files on all {n} nodes {:.1} ms, all Installed {t}/{t} {:.1} ms",
                ms(self.create_files),
                ms(self.create_installed)
            ),
        ];
        for (what, change, files) in [
            ("floor created", &self.apply, "carries it"),
            ("floor deleted", &self.removal, "is without it"),
        ] {
            lines.push(format!(
                "{what} -> every profile file on all {n} nodes {files}: {:.1} ms",
                ms(change.files)
            ));
            if let Some(installed) = change.installed {
                lines.push(format!(
                    "{what} -> its status Installed {t}/{t}: {:.1} ms",
                    ms(installed)
                ));
            }
            lines.push(format!(
                "{what}: report applies per node {:.2} (goal: 1; {} nodes), writes to seccompd.dev {:.0}; by verb and resource:",
                change.report_applies_per_node(t),
                t,
                change.traffic.seccompd_writes()
            ));
            let mut writes: Vec<_> = change
                .traffic
                .requests
                .iter()
                .filter(|((_, r), _)| r.is_seccompd())
                .collect();
            writes.sort_by(|a, b| b.1.total_cmp(a.1));
            for ((verb, resource), count) in writes {
                lines.push(format!("  {verb:<8} {:<44} {count:>7.0}", resource.label()));
            }
            lines.push(format!(
                "{what}: sync passes per simulated agent: mean {:.2}, max {:.0} (goal: 1)",
                change.passes_mean(),
                change.passes_max()
            ));
        }
        lines.push(self.line());
        lines
    }

    /// `scale-floor: nodes=N profiles=P ...`
    pub fn line(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let t = self.total_nodes();
        format!(
            "scale-floor: nodes={} profiles={} create_files_ms={:.1} create_installed_ms={:.1} floor_files_ms={:.1} floor_installed_ms={:.1} floor_report_applies_per_node={:.2} floor_writes={:.0} floor_passes_max={:.0} unfloor_files_ms={:.1} unfloor_report_applies_per_node={:.2} unfloor_writes={:.0} unfloor_passes_max={:.0}",
            self.nodes,
            self.profiles,
            ms(self.create_files),
            ms(self.create_installed),
            ms(self.apply.files),
            self.apply.installed.map_or(0.0, ms),
            self.apply.report_applies_per_node(t),
            self.apply.traffic.seccompd_writes(),
            self.apply.passes_max(),
            ms(self.removal.files),
            self.removal.report_applies_per_node(t),
            self.removal.traffic.seccompd_writes(),
            self.removal.passes_max(),
        )
    }
}
