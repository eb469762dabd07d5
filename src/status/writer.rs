//! The status writer: one agent, elected through a Lease, watches every node's report and
//! writes each SeccompProfile's status. Only the elected agent watches reports, so a node's
//! report reaches one reader instead of every node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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

/// This process's identity in the election: the node's name, so `kubectl get lease` says
/// where the writer runs, and when the process started, so that a restarted agent is a new
/// candidate that waits for the lease to expire or be released, instead of taking over what
/// its predecessor held as if nothing had happened.
pub fn candidate_identity(node_name: &str, started: SystemTime) -> String {
    let nanos = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{node_name}_{nanos:x}")
}

/// The node part of a candidate identity (see [`candidate_identity`]).
pub fn candidate_node(identity: &str) -> &str {
    identity.rsplit_once('_').map_or(identity, |(node, _)| node)
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
        Ok(resolved) => {
            let rendered = render(&resolved);
            match rendered.check_size() {
                Ok(()) => Expected::Hash(rendered.hash),
                Err(too_large) => Expected::Invalid(format!("spec: {too_large}")),
            }
        }
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_candidate_names_its_node_and_differs_from_its_predecessor() {
        use std::time::{Duration, SystemTime};
        let first = super::candidate_identity("node-a.example", SystemTime::UNIX_EPOCH);
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        let next = super::candidate_identity("node-a.example", later);
        assert_ne!(first, next);
        assert_eq!(super::candidate_node(&first), "node-a.example");
        assert_eq!(super::candidate_node(&next), "node-a.example");
    }

    use http::{Method, StatusCode};
    use serde_json::{Value, json};

    use super::*;
    use crate::apiserver::mock::mock_client;

    fn profile(status: Option<Value>) -> SeccompProfile {
        let mut object = json!({
            "apiVersion": "seccompd.dev/v1alpha1",
            "kind": "SeccompProfile",
            "metadata": {"name": "p", "generation": 3},
            "spec": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]},
        });
        if let Some(status) = status {
            object["status"] = status;
        }
        serde_json::from_value(object).unwrap()
    }

    fn report(node: &str, hash: &str) -> SeccompNodeReport {
        serde_json::from_value(json!({
            "apiVersion": "seccompd.dev/v1alpha1",
            "kind": "SeccompNodeReport",
            "metadata": {"name": node},
            "spec": {"synced": true, "profiles": [
                {"name": "p", "state": "Installed", "generation": 3, "contentHash": hash}
            ]},
        }))
        .unwrap()
    }

    fn snapshot(profile: &SeccompProfile, reports: &[SeccompNodeReport]) -> Snapshot {
        Snapshot {
            profiles: BTreeMap::from([("p".to_string(), Arc::new(profile.clone()))]),
            reports: reports
                .iter()
                .map(|r| (r.name_any(), Arc::new(r.clone())))
                .collect(),
            node_names: vec!["node1".into(), "node2".into()],
        }
    }

    fn expected_hash(profile: &SeccompProfile) -> String {
        render(&resolve("p", &profile.spec.0, |_| None).unwrap())
            .hash
            .to_string()
    }

    #[tokio::test]
    async fn writes_the_summarized_status_with_server_side_apply() {
        let p = profile(None);
        let hash = expected_hash(&p);
        let snap = snapshot(&p, &[report("node1", &hash)]);
        let (client, mut api) = mock_client();
        let server = tokio::spawn(async move {
            let got = api
                .expect(
                    Method::PATCH,
                    "/apis/seccompd.dev/v1alpha1/seccompprofiles/p/status",
                    &["fieldManager=seccompd-status-writer", "force=true"],
                    StatusCode::OK,
                    json!({
                        "apiVersion": "seccompd.dev/v1alpha1",
                        "kind": "SeccompProfile",
                        "metadata": {"name": "p"},
                        "spec": {"defaultAction": "SCMP_ACT_ALLOW"},
                    }),
                )
                .await;
            (got, api)
        });
        let profiles = Api::<SeccompProfile>::all(client);
        write_one(&profiles, &p, &snap).await.unwrap();
        let (got, api) = server.await.unwrap();
        assert_eq!(
            got.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        let body = got.body;
        assert_eq!(body["apiVersion"], "seccompd.dev/v1alpha1");
        assert_eq!(body["kind"], "SeccompProfile");
        let status = &body["status"];
        assert_eq!(status["phase"], "Partial");
        assert_eq!(status["installed"], "1/2");
        assert_eq!(status["contentHash"], hash.as_str());
        assert_eq!(status["observedGeneration"], 3);
        assert_eq!(
            status["nodes"],
            json!([{
                "nodeName": "node2",
                "state": "Pending",
                "reason": "no seccompd agent has reported from this node",
            }])
        );
        assert_eq!(status["conditions"][0]["type"], "Ready");
        assert_eq!(status["conditions"][0]["reason"], "Partial");
        assert_eq!(
            body.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["apiVersion", "kind", "status"],
            "only the status is applied"
        );
        drop(profiles);
        api.expect_no_more().await;
    }

    #[tokio::test]
    async fn an_unchanged_status_is_not_written() {
        let first = profile(None);
        let hash = expected_hash(&first);
        let reports = [report("node1", &hash), report("node2", &hash)];
        let snap = snapshot(&first, &reports);
        let facts_status = {
            let facts = ProfileFacts {
                name: "p",
                generation: Some(3),
                expected: Expected::Hash(hash.as_str().into()),
                nodes: snap
                    .node_names
                    .iter()
                    .map(|n| {
                        (
                            n.as_str(),
                            view_of(snap.reports.get(n).map(AsRef::as_ref), "p"),
                        )
                    })
                    .collect(),
            };
            summarize(&facts, None, &Time(k8s_openapi::jiff::Timestamp::now()))
        };
        let current = profile(Some(serde_json::to_value(&facts_status).unwrap()));
        let snap = snapshot(&current, &reports);
        let (client, api) = mock_client();
        let profiles = Api::<SeccompProfile>::all(client);
        write_one(&profiles, &current, &snap).await.unwrap();
        drop(profiles);
        api.expect_no_more().await;
    }
}
