//! The status writer: one controller replica, elected through a Lease, watches every node's
//! report and writes each SeccompProfile's status, at most so many writes a second. Only the
//! elected replica watches reports, so a node's report reaches one reader instead of every
//! node; only nodes the agents' DaemonSet runs on count.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::apps::v1::DaemonSet;
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

use super::rate::{ProgressPacer, WriteBudget};
use super::summary::{ProfileFacts, runs_agent, summarize};
use super::tracker::{Revisit, Snapshot, Tracker};
use crate::metrics::ControllerMetrics;
use seccompd_api::{SeccompNodeReport, SeccompProfile};
use seccompd_runtime::apiserver::reflect;
use seccompd_runtime::telemetry::ClockedWake;

/// Name of the Lease that elects the status writer.
pub const LEASE_NAME: &str = "seccompd-status-writer";

/// How long a pass waits after being woken, so that reports arriving together are summarized
/// together.
const COALESCE: Duration = Duration::from_millis(50);

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

/// This process's identity in the election: its pod's name, so `kubectl get lease` says
/// where the writer runs, and when the process started, so that a restarted container is a
/// new candidate that waits for the lease to expire or be released, instead of taking over
/// what its predecessor held as if nothing had happened.
pub fn candidate_identity(pod_name: &str, started: SystemTime) -> String {
    let nanos = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{pod_name}_{nanos:x}")
}

/// The pod part of a candidate identity (see [`candidate_identity`]).
pub fn candidate_pod(identity: &str) -> &str {
    identity.rsplit_once('_').map_or(identity, |(pod, _)| pod)
}

/// What the elected writer needs to know.
#[derive(Clone, Debug)]
pub struct WriterSettings {
    /// Namespace of the Lease and of the agents' DaemonSet.
    pub namespace: String,
    /// This replica's name in the election.
    pub identity: String,
    /// Name of the agents' DaemonSet, whose node selector says which nodes count.
    pub agent_daemonset: String,
    /// Status writes per second at most.
    pub writes_per_second: u32,
}

/// Takes part in the election forever; while elected, keeps every status up to date and runs
/// `also` (other work that must be done by one replica only), which is dropped with the lease.
pub async fn run_elected<F, Fut>(
    client: Client,
    settings: WriterSettings,
    metrics: Arc<ControllerMetrics>,
    also: F,
) where
    F: Fn(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        if let Err(err) = elect_and_write(client.clone(), &settings, &metrics, &also).await {
            warn!(%err, "status writer stopped; retrying");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn elect_and_write<F, Fut>(
    client: Client,
    settings: &WriterSettings,
    metrics: &ControllerMetrics,
    also: &F,
) -> Result<(), StatusError>
where
    F: Fn(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let manager = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
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
            _ = futures::future::join(write_statuses(client.clone(), settings, metrics), also(client.clone())) => {}
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

/// Watches profiles, reports, nodes and the agents' DaemonSet, and writes statuses on every
/// change. Runs until dropped (when the lease is lost), which also ends its watches.
async fn write_statuses(client: Client, settings: &WriterSettings, metrics: &ControllerMetrics) {
    let wake = Arc::new(Notify::new());
    let report_changes = metrics.report_changes();
    // Changes seen under an earlier lease are not this one's to time.
    report_changes.reset();
    // The caches keep what the writer reads: specs, statuses, report specs.
    let (profiles, _profiles_watch) = reflect::<SeccompProfile>(
        Api::all(client.clone()),
        watcher::Config::default(),
        |p| {
            p.metadata.managed_fields = None;
            p.metadata.annotations = None;
        },
        wake.clone(),
    );
    let (reports, _reports_watch) = reflect::<SeccompNodeReport>(
        Api::all(client.clone()),
        watcher::Config::default(),
        |r| r.metadata.managed_fields = None,
        ClockedWake::new(wake.clone(), report_changes.clone()),
    );
    let (nodes, _nodes_watch) = reflect::<PartialObjectMeta<Node>>(
        Api::all(client.clone()),
        watcher::Config::default(),
        |_| {},
        wake.clone(),
    );
    let (agents, _agents_watch) = reflect::<DaemonSet>(
        Api::namespaced(client.clone(), &settings.namespace),
        watcher::Config::default().fields(&format!("metadata.name={}", settings.agent_daemonset)),
        |d| d.status = None,
        wake.clone(),
    );
    for ready in [
        profiles.wait_until_ready().await.is_ok(),
        reports.wait_until_ready().await.is_ok(),
        nodes.wait_until_ready().await.is_ok(),
        agents.wait_until_ready().await.is_ok(),
    ] {
        if !ready {
            return;
        }
    }
    let api = Api::<SeccompProfile>::all(client);
    let mut pace = Pace {
        budget: WriteBudget::new(settings.writes_per_second, Instant::now()),
        progress: ProgressPacer::default(),
    };
    let mut tracker = Tracker::default();
    // Profiles to look at again: writes that failed, and writes the budget had no room for.
    let mut failed = BTreeSet::new();
    let mut owed = BTreeSet::new();
    // Progress held back, with when it is due.
    let mut held: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        report_changes.pass_begins();
        let snapshot = take_snapshot(&profiles, &reports, &nodes, &agents);
        let mut todo = match tracker.update(&snapshot) {
            Revisit::All => snapshot.profiles.keys().cloned().collect(),
            Revisit::Some(names) => names,
        };
        todo.append(&mut failed);
        todo.append(&mut owed);
        let now = Instant::now();
        todo.extend(
            held.extract_if(.., |_, due| *due <= now)
                .map(|(name, _)| name),
        );
        pace.progress
            .retain(|name| snapshot.profiles.contains_key(name));
        let mut next_token = None;
        let mut todo = todo.into_iter();
        while let Some(name) = todo.next() {
            let Some(profile) = snapshot.profiles.get(&name) else {
                continue;
            };
            let facts = tracker.facts(&snapshot, profile);
            match write_one(&api, profile, &facts, &mut pace).await {
                Ok(Written::Yes) => metrics.record_status_written(),
                Ok(Written::Unchanged) => {}
                Ok(Written::Later(due)) => {
                    held.insert(name, due);
                }
                Ok(Written::NoBudget(wait)) => {
                    // The rest waits for the next pass, which decides with fresher facts.
                    metrics.record_status_write_throttled();
                    owed.insert(name);
                    owed.extend(todo.by_ref());
                    next_token = Some(Instant::now() + wait);
                }
                Err(err) => {
                    warn!(%err, "status write failed; retrying");
                    metrics.record_api_error();
                    failed.insert(name);
                }
            }
        }
        report_changes.pass_ends(failed.is_empty() && owed.is_empty() && held.is_empty());
        let retry = (!failed.is_empty()).then(|| Instant::now() + Duration::from_secs(2));
        let wait = held
            .values()
            .copied()
            .chain(retry)
            .chain(next_token)
            .min()
            .map_or(Duration::from_secs(300), |due| {
                due.saturating_duration_since(Instant::now())
            });
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        // Reports arrive from many nodes at nearly the same time after a change: let them
        // gather, so that one pass (and one status write) covers them.
        tokio::time::sleep(COALESCE).await;
    }
}

/// The writer's caches as one consistent view, taken once per pass.
fn take_snapshot(
    profiles: &Store<SeccompProfile>,
    reports: &Store<SeccompNodeReport>,
    nodes: &Store<PartialObjectMeta<Node>>,
    agents: &Store<DaemonSet>,
) -> Snapshot {
    // At most one: the watch selects the DaemonSet by name.
    let agents = agents.state().into_iter().next();
    let node_selector = agents.as_ref().map(|d| {
        d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.node_selector.clone())
            .unwrap_or_default()
    });
    let mut node_names: Vec<String> = nodes
        .state()
        .iter()
        .filter(|n| runs_agent(n.labels(), node_selector.as_ref()))
        .map(|n| n.name_any())
        .collect();
    node_names.sort();
    Snapshot {
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
        node_names,
    }
}

/// Whether [`write_one`] wrote a status.
enum Written {
    /// The status changed and was written.
    Yes,
    /// The status already said what it would have written.
    Unchanged,
    /// The change only tells of a profile on its way, written (or first seen) a moment
    /// ago: written at this time if nothing else changes it first.
    Later(Instant),
    /// The write budget has no room now; it will in this long.
    NoBudget(Duration),
}

/// How fast statuses are written: the write budget, and the pacer of progress-only changes.
struct Pace {
    budget: WriteBudget,
    progress: ProgressPacer,
}

/// Writes `profile`'s status, summarized from `facts`, if it changed, once `pace` allows.
async fn write_one(
    api: &Api<SeccompProfile>,
    profile: &SeccompProfile,
    facts: &ProfileFacts<'_>,
    pace: &mut Pace,
) -> Result<Written, StatusError> {
    let name = profile.name_any();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = summarize(facts, profile.status.as_ref(), &now);
    if profile.status.as_ref() == Some(&status) {
        return Ok(Written::Unchanged);
    }
    if let Some(due) = pace
        .progress
        .hold(&name, profile.status.as_ref(), &status, Instant::now())
    {
        return Ok(Written::Later(due));
    }
    if let Err(wait) = pace.budget.take(Instant::now()) {
        return Ok(Written::NoBudget(wait));
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
    pace.progress.written(&name, Instant::now());
    Ok(Written::Yes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_candidate_names_its_pod_and_differs_from_its_predecessor() {
        use std::time::{Duration, SystemTime};
        let first =
            super::candidate_identity("seccompd-controller-5d9f-abcde", SystemTime::UNIX_EPOCH);
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        let next = super::candidate_identity("seccompd-controller-5d9f-abcde", later);
        assert_ne!(first, next);
        assert_eq!(
            super::candidate_pod(&first),
            "seccompd-controller-5d9f-abcde"
        );
        assert_eq!(
            super::candidate_pod(&next),
            "seccompd-controller-5d9f-abcde"
        );
    }

    use serde_json::{Value, json};

    use std::collections::BTreeMap;

    use super::*;
    use seccompd_profile::digest::SetDigest;
    use seccompd_profile::render::{ContentHash, render};
    use seccompd_profile::resolve::resolve;
    use seccompd_runtime::apiserver::mock::mock_client;

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
        let digest = SetDigest::of_set([("p", &ContentHash::from(hash))]);
        serde_json::from_value(json!({
            "apiVersion": "seccompd.dev/v1alpha1",
            "kind": "SeccompNodeReport",
            "metadata": {"name": node, "resourceVersion": "1"},
            "spec": {"synced": true, "installed": 1, "installedDigest": digest.to_hex()},
        }))
        .unwrap()
    }

    /// A snapshot of `profile` and `reports` on node1 and node2, taken in by a tracker.
    fn seen(profile: &SeccompProfile, reports: &[SeccompNodeReport]) -> (Snapshot, Tracker) {
        let snap = Snapshot {
            profiles: BTreeMap::from([("p".to_string(), Arc::new(profile.clone()))]),
            reports: reports
                .iter()
                .map(|r| (r.name_any(), Arc::new(r.clone())))
                .collect(),
            node_names: vec!["node1".into(), "node2".into()],
        };
        let mut tracker = Tracker::default();
        assert_eq!(tracker.update(&snap), Revisit::All);
        (snap, tracker)
    }

    const STATUS: &str = "/apis/seccompd.dev/v1alpha1/seccompprofiles/p/status";

    fn pace(budget: WriteBudget) -> Pace {
        Pace {
            budget,
            progress: ProgressPacer::default(),
        }
    }

    /// The API server's answer to a status apply.
    fn answer() -> Value {
        json!({"apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
               "metadata": {"name": "p"}, "spec": {"defaultAction": "SCMP_ACT_ALLOW"}})
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
        let (snap, tracker) = seen(&p, &[report("node1", &hash)]);
        let (client, mut api) = mock_client();
        let server = tokio::spawn(async move {
            let got = api.expect_apply(STATUS, STATUS_MANAGER, answer()).await;
            (got, api)
        });
        let profiles = Api::<SeccompProfile>::all(client);
        let mut pace = pace(WriteBudget::new(1, Instant::now()));
        // Partial is progress: written once the profile has been known for a moment.
        pace.progress
            .written("p", Instant::now() - crate::status::rate::PROGRESS_INTERVAL);
        let facts = tracker.facts(&snap, &p);
        write_one(&profiles, &p, &facts, &mut pace).await.unwrap();
        let (body, api) = server.await.unwrap();
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
        let (snap, tracker) = seen(&first, &reports);
        let status = summarize(
            &tracker.facts(&snap, &first),
            None,
            &Time(k8s_openapi::jiff::Timestamp::now()),
        );
        assert_eq!(status.installed.as_deref(), Some("2/2"));
        let current = profile(Some(serde_json::to_value(&status).unwrap()));
        let (snap, tracker) = seen(&current, &reports);
        let (client, api) = mock_client();
        let profiles = Api::<SeccompProfile>::all(client);
        let mut pace = pace(WriteBudget::new(1, Instant::now()));
        let facts = tracker.facts(&snap, &current);
        write_one(&profiles, &current, &facts, &mut pace)
            .await
            .unwrap();
        drop(profiles);
        api.expect_no_more().await;
    }

    #[tokio::test]
    async fn progress_written_a_moment_ago_is_held_back_without_a_request() {
        let pending = json!({"phase": "Pending", "observedGeneration": 3, "installed": "0/2"});
        let p = profile(Some(pending));
        let hash = expected_hash(&p);
        let (snap, tracker) = seen(&p, &[report("node1", &hash)]);
        let (client, api) = mock_client();
        let profiles = Api::<SeccompProfile>::all(client);
        let mut pace = pace(WriteBudget::new(1, Instant::now()));
        let written = Instant::now();
        pace.progress.written("p", written);
        let got = write_one(&profiles, &p, &tracker.facts(&snap, &p), &mut pace)
            .await
            .unwrap();
        assert!(
            matches!(got, Written::Later(due) if due == written + crate::status::rate::PROGRESS_INTERVAL),
            "Partial 1/2 after Pending 0/2 waits"
        );
        drop(profiles);
        api.expect_no_more().await;
    }

    #[tokio::test]
    async fn a_write_beyond_the_budget_is_left_for_a_later_pass_without_a_request() {
        let p = profile(None);
        let hash = expected_hash(&p);
        let (snap, tracker) = seen(&p, &[report("node1", &hash), report("node2", &hash)]);
        let (client, api) = mock_client();
        let profiles = Api::<SeccompProfile>::all(client);
        let start = Instant::now();
        let mut pace = pace(WriteBudget::new(1, start));
        assert_eq!(
            pace.budget.take(start),
            Ok(()),
            "the one write of this second"
        );
        let got = write_one(&profiles, &p, &tracker.facts(&snap, &p), &mut pace)
            .await
            .unwrap();
        assert!(
            matches!(got, Written::NoBudget(wait) if wait > Duration::ZERO && wait <= Duration::from_secs(1)),
            "Installed 2/2 is news, but the budget is spent"
        );
        drop(profiles);
        api.expect_no_more().await;
    }
}
