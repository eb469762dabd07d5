//! The status writer: one agent, elected through a Lease, watches every node's report and
//! writes each SeccompProfile's status. Only the elected agent watches reports, so a node's
//! report reaches one reader instead of every node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use serde_json::json;
use thiserror::Error;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::summary::{Expected, NodeView, ProfileFacts, summarize};
use crate::api::{SeccompNodeReport, SeccompProfile};
use crate::apiserver::reflect;
use crate::profile::render::render;
use crate::profile::resolve::resolve;
use crate::telemetry::{ClockedWake, Metrics};

/// Name of the Lease that elects the status writer.
pub const LEASE_NAME: &str = "seccompd-status-writer";

/// Field manager of status writes.
pub const STATUS_MANAGER: &str = "seccompd-status-writer";

/// Failures of the status writer.
#[derive(Debug, Error)]
pub enum StatusError {
    /// The election could not be set up or kept.
    #[error("status writer election: {0}")]
    Election(#[from] kube_lease_manager::LeaseManagerError),
    /// A status write failed.
    #[error("write status of SeccompProfile {name}: {source}")]
    Write {
        /// The profile.
        name: String,
        /// The client error.
        source: kube::Error,
    },
}

/// Takes part in the election forever; while elected, keeps every status up to date.
pub async fn run_elected(
    client: Client,
    namespace: String,
    identity: String,
    metrics: Arc<Metrics>,
) {
    loop {
        if let Err(err) = elect_and_write(client.clone(), &namespace, &identity, &metrics).await {
            warn!(%err, "status writer stopped; retrying");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn elect_and_write(
    client: Client,
    namespace: &str,
    identity: &str,
    metrics: &Metrics,
) -> Result<(), StatusError> {
    let manager = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await?;
    let (mut leading, task) = manager.watch().await;
    loop {
        while !*leading.borrow_and_update() {
            if leading.changed().await.is_err() {
                return finish(task).await;
            }
        }
        info!("elected status writer");
        tokio::select! {
            _ = write_statuses(client.clone(), metrics) => {}
            _ = async { while *leading.borrow_and_update() { if leading.changed().await.is_err() { break } } } => {
                info!("no longer the status writer");
            }
        }
    }
}

async fn finish(
    task: tokio::task::JoinHandle<
        Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>,
    >,
) -> Result<(), StatusError> {
    match task.await {
        Ok(Ok(_)) | Err(_) => Ok(()),
        Ok(Err(err)) => Err(err.into()),
    }
}

/// Watches profiles, reports and nodes, and writes statuses on every change. Runs until
/// dropped (when the lease is lost), which also ends its watches.
async fn write_statuses(client: Client, metrics: &Metrics) {
    let wake = Arc::new(Notify::new());
    let report_changes = metrics.report_changes();
    // Changes seen under an earlier lease are not this one's to time.
    report_changes.reset();
    let (profiles, _profiles_watch) = reflect::<SeccompProfile>(
        Api::all(client.clone()),
        watcher::Config::default(),
        |_| {},
        wake.clone(),
    );
    let (reports, _reports_watch) = reflect::<SeccompNodeReport>(
        Api::all(client.clone()),
        watcher::Config::default(),
        |_| {},
        ClockedWake::new(wake.clone(), report_changes.clone()),
    );
    let (nodes, _nodes_watch) = reflect::<PartialObjectMeta<Node>>(
        Api::all(client.clone()),
        watcher::Config::default(),
        |_| {},
        wake.clone(),
    );
    for ready in [
        profiles.wait_until_ready().await.is_ok(),
        reports.wait_until_ready().await.is_ok(),
        nodes.wait_until_ready().await.is_ok(),
    ] {
        if !ready {
            return;
        }
    }
    let api = Api::<SeccompProfile>::all(client);
    loop {
        let mut retry = false;
        report_changes.pass_begins();
        let snapshot = Snapshot::take(&profiles, &reports, &nodes);
        for profile in snapshot.profiles.values() {
            match write_one(&api, profile, &snapshot).await {
                Ok(Written::Yes) => metrics.record_status_written(),
                Ok(Written::Unchanged) => {}
                Err(err) => {
                    warn!(%err, "status write failed; retrying");
                    retry = true;
                }
            }
        }
        report_changes.pass_ends(!retry);
        let wait = if retry {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(300)
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The writer's caches as one consistent view, taken once per pass over every profile.
struct Snapshot {
    /// Every profile, by name.
    profiles: BTreeMap<String, Arc<SeccompProfile>>,
    /// Every node report, by node name.
    reports: BTreeMap<String, Arc<SeccompNodeReport>>,
    /// Every node in the cluster.
    node_names: Vec<String>,
}

impl Snapshot {
    fn take(
        profiles: &Store<SeccompProfile>,
        reports: &Store<SeccompNodeReport>,
        nodes: &Store<PartialObjectMeta<Node>>,
    ) -> Self {
        Self {
            profiles: profiles
                .state()
                .into_iter()
                .map(|p| (p.name_any(), p))
                .collect(),
            reports: reports
                .state()
                .into_iter()
                .map(|r| (r.name_any(), r))
                .collect(),
            node_names: nodes.state().iter().map(|n| n.name_any()).collect(),
        }
    }
}

/// Whether [`write_one`] wrote a status.
enum Written {
    /// The status changed and was written.
    Yes,
    /// The status already said what it would have written.
    Unchanged,
}

async fn write_one(
    api: &Api<SeccompProfile>,
    profile: &SeccompProfile,
    snapshot: &Snapshot,
) -> Result<Written, StatusError> {
    let name = profile.name_any();
    let expected = match resolve(&name, &profile.spec.0, |n| {
        snapshot.profiles.get(n).map(|p| &p.spec.0)
    }) {
        Ok(resolved) => Expected::Hash(render(&resolved).hash),
        Err(err) => Expected::Invalid(err.to_string()),
    };
    let facts = ProfileFacts {
        name: &name,
        generation: profile.metadata.generation,
        expected,
        nodes: snapshot
            .node_names
            .iter()
            .map(|node| {
                let report = snapshot.reports.get(node).map(AsRef::as_ref);
                (node.as_str(), view_of(report, &name))
            })
            .collect(),
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = summarize(&facts, profile.status.as_ref(), &now);
    if profile.status.as_ref() == Some(&status) {
        return Ok(Written::Unchanged);
    }
    let body = json!({
        "apiVersion": SeccompProfile::api_version(&()),
        "kind": SeccompProfile::kind(&()),
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(STATUS_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| StatusError::Write {
        name: name.clone(),
        source,
    })?;
    Ok(Written::Yes)
}

fn view_of<'a>(report: Option<&'a SeccompNodeReport>, profile: &str) -> NodeView<'a> {
    match report {
        None => NodeView::NoAgent,
        Some(r) if !r.spec.synced => NodeView::Syncing,
        Some(r) => NodeView::Reported(r.spec.profiles.iter().find(|p| p.name == profile)),
    }
}
