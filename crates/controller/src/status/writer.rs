//! The status writer: one controller replica, elected through a Lease, watches every node's
//! report and writes each SeccompProfile's status, at most so many writes a second. Only the
//! elected replica watches reports, so a node's report reaches one reader instead of every
//! node; only nodes the agents' DaemonSet runs on count. What to write and when is the
//! [`Planner`]'s to decide; this file holds the election, the watches, and the applier that
//! sends each pass's writes and tells the planner how they went.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
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

use super::floors::{FloorRetries, floor_status};
use super::plan::{Planner, RESYNC, RetryDelays, StatusWrite};
use super::summary::runs_agent;
use super::tracker::Snapshot;
use crate::metrics::ControllerMetrics;
use seccompd_api::{SeccompFloor, SeccompNodeReport, SeccompProfile};
use seccompd_runtime::apiserver::{MAX_API_BACKOFF, api_backoff, reflect};
use seccompd_runtime::telemetry::ClockedWake;

/// Name of the Lease that elects the status writer.
pub const LEASE_NAME: &str = "seccompd-status-writer";

/// How long a pass waits after being woken, so that reports arriving together are summarized
/// together.
const COALESCE: Duration = Duration::from_millis(50);

/// Field manager of status writes.
pub const STATUS_MANAGER: &str = "seccompd-status-writer";

/// Status writes in flight at once. Not a rate: the API server's priority and fairness decides
/// how fast they go (a write it cannot take now is answered 429 and tried again after the API
/// backoff), and this only keeps one pass from opening a connection per profile. A thousand
/// profiles created at once need a thousand writes; sent one at a time, the last would wait
/// for the round trips of all the others. Writes in flight when the lease is lost are dropped
/// with the pass.
const WRITES_IN_FLIGHT: usize = 16;

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

impl StatusError {
    /// Whether the API server refused the write for now (429 Too Many Requests: its priority
    /// and fairness, or a rate limit in front of it), as opposed to failing it.
    pub fn is_pushback(&self) -> bool {
        matches!(self, Self::Write { source: kube::Error::Api(status), .. } if status.code == 429)
    }
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
    // Restarts pause as API calls do between attempts.
    let mut pauses = api_backoff();
    loop {
        if let Err(err) = elect_and_write(client.clone(), &settings, &metrics, &also).await {
            warn!(%err, "status writer stopped; retrying");
        }
        tokio::time::sleep(pauses.next().unwrap_or(MAX_API_BACKOFF)).await;
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
        if leading.wait_for(|leads| *leads).await.is_err() {
            return finish(task).await;
        }
        info!("elected status writer");
        tokio::select! {
            _ = futures::future::join(write_statuses(client.clone(), settings, metrics), also(client.clone())) => {}
            lost = async { leading.wait_for(|leads| !*leads).await.map(drop) } => {
                if lost.is_err() {
                    // The lease manager's task is gone while this replica leads (it only ends
                    // by itself if it failed): stop writing, let the lease run out unrenewed.
                    return finish(task).await;
                }
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

/// Watches profiles, reports, nodes, floors and the agents' DaemonSet, and writes statuses on
/// every change. Runs until dropped (when the lease is lost), which also ends its watches.
async fn write_statuses(client: Client, settings: &WriterSettings, metrics: &ControllerMetrics) {
    // Two loops, each woken by the changes it reads: the profiles' statuses and the floors'.
    let wake = Arc::new(Notify::new());
    let floor_wake = Arc::new(Notify::new());
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
        (
            ClockedWake::new(wake.clone(), report_changes.clone()),
            floor_wake.clone(),
        ),
    );
    let (nodes, _nodes_watch) = reflect::<PartialObjectMeta<Node>>(
        Api::all(client.clone()),
        watcher::Config::default(),
        |_| {},
        (wake.clone(), floor_wake.clone()),
    );
    let (agents, _agents_watch) = reflect::<DaemonSet>(
        Api::namespaced(client.clone(), &settings.namespace),
        watcher::Config::default().fields(&format!("metadata.name={}", settings.agent_daemonset)),
        |d| d.status = None,
        (wake.clone(), floor_wake.clone()),
    );
    let (floors, _floors_watch) = reflect::<SeccompFloor>(
        Api::all(client.clone()),
        watcher::Config::default(),
        |f| f.metadata.managed_fields = None,
        (wake.clone(), floor_wake.clone()),
    );
    for ready in [
        profiles.wait_until_ready().await.is_ok(),
        floors.wait_until_ready().await.is_ok(),
        reports.wait_until_ready().await.is_ok(),
        nodes.wait_until_ready().await.is_ok(),
        agents.wait_until_ready().await.is_ok(),
    ] {
        if !ready {
            return;
        }
    }
    let caches = Caches {
        profiles,
        reports,
        nodes,
        agents,
        floors,
    };
    futures::future::join(
        write_profile_statuses(Api::all(client.clone()), &caches, &wake, metrics),
        // Apart from the profiles' loop: a floor change also rewrites every profile's status
        // (which names the floors it carries), and behind those thousand writes the floor's
        // own status would wait for the pass to end.
        write_floor_statuses(Api::all(client), &caches, &floor_wake, metrics),
    )
    .await;
}

/// The status writer's caches.
struct Caches {
    profiles: Store<SeccompProfile>,
    reports: Store<SeccompNodeReport>,
    nodes: Store<PartialObjectMeta<Node>>,
    agents: Store<DaemonSet>,
    floors: Store<SeccompFloor>,
}

/// The profiles' statuses: a pass on every change, its writes as the [`Planner`] decides.
async fn write_profile_statuses(
    api: Api<SeccompProfile>,
    caches: &Caches,
    wake: &Notify,
    metrics: &ControllerMetrics,
) {
    let report_changes = metrics.report_changes();
    let mut planner = Planner::new(retry_delays);
    loop {
        report_changes.pass_begins();
        let snapshot = caches.snapshot();
        let stamp = Time(k8s_openapi::jiff::Timestamp::now());
        let plan = planner.plan(&snapshot, Instant::now(), &stamp);
        apply(&api, &mut planner, plan.writes, |sent| match sent {
            Ok(()) => metrics.record_status_written(),
            Err(err) => {
                if err.is_pushback() {
                    metrics.record_status_write_pushed_back();
                } else {
                    warn!(%err, "status write failed; retrying");
                }
                metrics.record_api_error();
            }
        })
        .await;
        report_changes.pass_ends(planner.settled());
        wait_for_change(wake, planner.wake_at(Instant::now())).await;
    }
}

/// The floors' statuses: a pass on every change of floors, reports or nodes.
async fn write_floor_statuses(
    api: Api<SeccompFloor>,
    caches: &Caches,
    wake: &Notify,
    metrics: &ControllerMetrics,
) {
    let mut retries = FloorRetries::new(retry_delays);
    loop {
        write_floor_pass(&api, &caches.floor_view(), &mut retries, metrics).await;
        let now = Instant::now();
        wait_for_change(wake, retries.wake_at().unwrap_or(now + RESYNC)).await;
    }
}

/// Waits until `wake` is notified or `wake_at` comes, then for the reports that arrive
/// together with the first.
async fn wait_for_change(wake: &Notify, wake_at: Instant) {
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep_until(wake_at.into()) => {}
    }
    // Reports arrive from many nodes at nearly the same time after a change: let them
    // gather, so that one pass (and one status write) covers them.
    tokio::time::sleep(COALESCE).await;
}

/// The pauses before the attempts of a status write that keeps failing: the API's backoff.
fn retry_delays() -> RetryDelays {
    Box::new(api_backoff())
}

impl Caches {
    /// One consistent view, taken once per pass.
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            profiles: by_name(&self.profiles),
            ..self.floor_view()
        }
    }

    /// The view without the profiles, which the floors' statuses do not read: the floors'
    /// loop runs on every report change and need not copy a thousand entries each time.
    fn floor_view(&self) -> Snapshot {
        // At most one: the watch selects the DaemonSet by name.
        let agents = self.agents.state().into_iter().next();
        let node_selector = agents.as_ref().map(|d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default()
        });
        let mut node_names: Vec<String> = self
            .nodes
            .state()
            .iter()
            .filter(|n| runs_agent(n.labels(), node_selector.as_ref()))
            .map(|n| n.name_any())
            .collect();
        node_names.sort();
        Snapshot {
            profiles: BTreeMap::new(),
            reports: by_name(&self.reports),
            node_names,
            floors: by_name(&self.floors),
        }
    }
}

/// A store's objects by name.
fn by_name<K>(store: &Store<K>) -> BTreeMap<String, Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .state()
        .into_iter()
        .map(|o| (o.name_any(), o))
        .collect()
}

/// Sends `writes`, up to [`WRITES_IN_FLIGHT`] at a time, tells `planner` how each went, and
/// hands each outcome to `sent`.
async fn apply(
    api: &Api<SeccompProfile>,
    planner: &mut Planner,
    writes: Vec<StatusWrite>,
    mut sent: impl FnMut(Result<(), StatusError>),
) {
    let mut outcomes = futures::stream::iter(writes)
        .map(|write| async move {
            let result = send(api, &write).await;
            (write.name, result)
        })
        .buffer_unordered(WRITES_IN_FLIGHT);
    while let Some((name, result)) = outcomes.next().await {
        match &result {
            Ok(()) => planner.written(&name, Instant::now()),
            Err(_) => planner.failed(&name, Instant::now()),
        }
        sent(result);
    }
}

/// Applies each floor's status where it differs from the one the floor has. Floors are few
/// (an administrator's cluster-wide rules), so each pass decides them all; a failed write is
/// tried again after the API's backoff (`retries` says when the next pass is due for it).
async fn write_floor_pass(
    api: &Api<SeccompFloor>,
    snap: &Snapshot,
    retries: &mut FloorRetries,
    metrics: &ControllerMetrics,
) {
    retries.retain(|name| snap.floors.contains_key(name));
    for (name, floor) in &snap.floors {
        let status = floor_status(floor, &snap.node_names, &snap.reports);
        if floor.status.as_ref() == Some(&status) {
            retries.written(name);
            continue;
        }
        let body = json!({
            "apiVersion": SeccompFloor::api_version(&()),
            "kind": SeccompFloor::kind(&()),
            "status": status,
        });
        match api
            .patch_status(
                name,
                &PatchParams::apply(STATUS_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => {
                retries.written(name);
                metrics.record_status_written();
            }
            Err(err) => {
                warn!(%err, floor = %name, "floor status write failed; retrying");
                retries.failed(name, Instant::now());
                metrics.record_api_error();
            }
        }
    }
}

/// Applies `write`'s status with server-side apply, forcing ownership of its fields.
async fn send(api: &Api<SeccompProfile>, write: &StatusWrite) -> Result<(), StatusError> {
    let body = json!({
        "apiVersion": SeccompProfile::api_version(&()),
        "kind": SeccompProfile::kind(&()),
        "status": write.status,
    });
    api.patch_status(
        &write.name,
        &PatchParams::apply(STATUS_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| StatusError::Write {
        name: write.name.clone(),
        source,
    })?;
    Ok(())
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

    use http::{Method, StatusCode};
    use serde_json::{Value, json};

    use super::*;
    use crate::status::fixtures::{expected_hash, profile, report, snapshot, stamp};
    use crate::status::plan::Plan;
    use crate::status::rate::PROGRESS_INTERVAL;
    use seccompd_runtime::apiserver::mock::mock_client;

    const STATUS: &str = "/apis/seccompd.dev/v1alpha1/seccompprofiles/p/status";

    /// The API server's answer to a status apply.
    fn answer() -> Value {
        json!({"apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
               "metadata": {"name": "p"}, "spec": {"defaultAction": "SCMP_ACT_ALLOW"}})
    }

    /// Applies `plan` through `client`, and says which writes succeeded.
    async fn apply_plan(client: Client, planner: &mut Planner, plan: Plan) -> Vec<bool> {
        let mut outcomes = Vec::new();
        let profiles = Api::<SeccompProfile>::all(client);
        apply(&profiles, planner, plan.writes, |sent| {
            outcomes.push(sent.is_ok())
        })
        .await;
        outcomes
    }

    #[tokio::test]
    async fn writes_the_summarized_status_with_server_side_apply() {
        let p = profile("p", "1", None);
        let hash = expected_hash(&p);
        let snap = snapshot(&[&p], &[&report("node1", "1", &[&p])]);
        let t0 = Instant::now();
        let mut planner = Planner::new(retry_delays);
        // Partial is progress: written once the profile has been known for a moment.
        assert_eq!(planner.plan(&snap, t0, &stamp()), Plan::default());
        let plan = planner.plan(&snap, t0 + PROGRESS_INTERVAL, &stamp());
        let (client, mut api) = mock_client();
        let server = tokio::spawn(async move {
            let got = api.expect_apply(STATUS, STATUS_MANAGER, answer()).await;
            (got, api)
        });
        assert_eq!(apply_plan(client, &mut planner, plan).await, [true]);
        assert!(planner.settled());
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
        api.expect_no_more().await;
    }

    #[tokio::test]
    async fn an_unchanged_status_is_not_written() {
        let first = profile("p", "1", None);
        let reports = [
            report("node1", "1", &[&first]),
            report("node2", "1", &[&first]),
        ];
        let t0 = Instant::now();
        let summarized = Planner::new(retry_delays).plan(
            &snapshot(&[&first], &[&reports[0], &reports[1]]),
            t0,
            &stamp(),
        );
        let status = &summarized.writes[0].status;
        assert_eq!(status.installed.as_deref(), Some("2/2"));
        let mut written = serde_json::to_value(status).unwrap();
        let current = profile("p", "2", Some(written.clone()));
        // status.denials is another writer's: a status that has them is still unchanged.
        written["denials"] = json!({"summary": "would deny 1: mkdir", "wouldDeny": 1});
        let with_denials = profile("p", "2", Some(written));
        for current in [current, with_denials] {
            let mut planner = Planner::new(retry_delays);
            let plan = planner.plan(
                &snapshot(&[&current], &[&reports[0], &reports[1]]),
                t0,
                &stamp(),
            );
            let (client, api) = mock_client();
            assert!(apply_plan(client, &mut planner, plan).await.is_empty());
            api.expect_no_more().await;
        }
    }

    #[tokio::test]
    async fn progress_written_a_moment_ago_is_held_back_without_a_request() {
        let pending = json!({"phase": "Pending", "observedGeneration": 3, "installed": "0/2"});
        let p = profile("p", "1", Some(pending));
        let snap = snapshot(&[&p], &[&report("node1", "1", &[&p])]);
        let written = Instant::now();
        let mut planner = Planner::new(retry_delays);
        planner.written("p", written);
        let plan = planner.plan(&snap, written, &stamp());
        assert_eq!(
            planner.wake_at(written),
            written + PROGRESS_INTERVAL,
            "Partial 1/2 after Pending 0/2 waits"
        );
        let (client, api) = mock_client();
        assert!(apply_plan(client, &mut planner, plan).await.is_empty());
        api.expect_no_more().await;
    }

    /// A write answered with `code` fails, is tried again after the API's backoff, and says
    /// whether it was pushed back.
    async fn refused_write_is_retried_after_the_api_backoff(code: StatusCode) -> bool {
        let p = profile("p", "1", None);
        let reports = [report("node1", "1", &[&p]), report("node2", "1", &[&p])];
        let start = Instant::now();
        let mut planner = Planner::new(retry_delays);
        let plan = planner.plan(
            &snapshot(&[&p], &[&reports[0], &reports[1]]),
            start,
            &stamp(),
        );
        let (client, mut api) = mock_client();
        let server = tokio::spawn(async move {
            let query = [&*format!("fieldManager={STATUS_MANAGER}"), "force=true"];
            let refusal = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                "reason": code.canonical_reason(), "message": "not now", "code": code.as_u16()});
            api.expect(Method::PATCH, STATUS, &query, code, refusal)
                .await;
            api
        });
        let mut pushed_back = Vec::new();
        let profiles = Api::<SeccompProfile>::all(client);
        apply(&profiles, &mut planner, plan.writes, |sent| {
            pushed_back.push(sent.as_ref().err().map(StatusError::is_pushback));
        })
        .await;
        let failed = Instant::now();
        // The mock's end waits for every client to be gone.
        drop(profiles);
        server.await.unwrap().expect_no_more().await;
        assert!(!planner.settled());
        // The API's backoff starts at half a second, plus a jitter of up to as much again.
        let retry = planner.wake_at(failed);
        assert!(retry >= start + Duration::from_millis(500), "{retry:?}");
        assert!(retry <= failed + Duration::from_secs(1), "{retry:?}");
        match pushed_back[..] {
            [Some(pushback)] => pushback,
            _ => panic!("one failed write expected: {pushed_back:?}"),
        }
    }

    #[tokio::test]
    async fn a_failed_floor_status_write_is_retried_after_the_api_backoff_then_written() {
        const FLOOR_STATUS: &str = "/apis/seccompd.dev/v1alpha1/seccompfloors/copy-fail/status";
        let floor: SeccompFloor = serde_json::from_value(json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompFloor",
            "metadata": {"name": "copy-fail", "generation": 1},
            "spec": {"rules": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}]}]},
        }))
        .unwrap();
        let mut snap = snapshot(&[], &[]);
        snap.floors
            .insert("copy-fail".into(), Arc::new(floor.clone()));
        let metrics = ControllerMetrics::new();
        let mut retries = FloorRetries::new(retry_delays);
        let start = Instant::now();
        let (client, mut api) = mock_client();
        let server = tokio::spawn(async move {
            let query = [&*format!("fieldManager={STATUS_MANAGER}"), "force=true"];
            let refusal = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                "reason": "ServiceUnavailable", "message": "not now", "code": 503});
            api.expect(
                Method::PATCH,
                FLOOR_STATUS,
                &query,
                StatusCode::SERVICE_UNAVAILABLE,
                refusal,
            )
            .await;
            let answer = serde_json::to_value(&floor).unwrap();
            let body = api.expect_apply(FLOOR_STATUS, STATUS_MANAGER, answer).await;
            (body, api)
        });
        let floors = Api::<SeccompFloor>::all(client);
        write_floor_pass(&floors, &snap, &mut retries, &metrics).await;
        let failed = Instant::now();
        // The API's backoff starts at half a second, plus a jitter of up to as much again:
        // the pass is due then, not at the resync.
        let retry = retries.wake_at().expect("a retry is due");
        assert!(retry >= start + Duration::from_millis(500), "{retry:?}");
        assert!(retry <= failed + Duration::from_secs(1), "{retry:?}");
        // The next pass writes it; nothing is due any more.
        write_floor_pass(&floors, &snap, &mut retries, &metrics).await;
        assert_eq!(retries.wake_at(), None);
        drop(floors);
        let (body, api) = server.await.unwrap();
        assert_eq!(body["status"]["phase"], "Pending");
        assert_eq!(body["status"]["installed"], "0/2");
        api.expect_no_more().await;
    }

    #[tokio::test]
    async fn a_failed_write_is_retried_after_the_api_backoff() {
        let pushback =
            refused_write_is_retried_after_the_api_backoff(StatusCode::SERVICE_UNAVAILABLE).await;
        assert!(!pushback, "a 503 is a failure, not flow control");
    }

    #[tokio::test]
    async fn a_write_the_api_server_pushes_back_is_retried_and_counted_as_such() {
        let pushback =
            refused_write_is_retried_after_the_api_backoff(StatusCode::TOO_MANY_REQUESTS).await;
        assert!(pushback, "429 is the API server's flow control");
    }
}
