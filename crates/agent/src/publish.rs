//! Writes this node's SeccompNodeReport from a task of its own: when its content changes, when
//! the stored report was deleted or changed behind the agent's back, and when the Node was
//! recreated. The loop hands over the latest report and never waits for the API server, so
//! files are kept right through an API outage.

use std::sync::Arc;
use std::time::Duration;

use backon::Retryable as _;
use futures::FutureExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde_json::json;
use tokio::sync::{Notify, watch};
use tracing::warn;

use super::AgentError;
use super::metrics::AgentMetrics;
use super::node_identity::NodeIdentity;
use seccompd_api::{SeccompNodeReport, SeccompNodeReportSpec};
use seccompd_runtime::apiserver::{api_retry, reflect};

/// Field manager of the agent's writes.
pub const AGENT_MANAGER: &str = "seccompd-agent";

/// Starts the publisher of node `node_name`'s report; send it each new report. Only the
/// latest one matters: a report superseded while the API is unreachable is never sent. The
/// publisher also watches the report itself, and applies it again when it was deleted or
/// changed behind the agent's back, and when the Node is recreated (`node` follows its
/// identity: the report is owned by the Node).
pub fn spawn(
    client: Client,
    node_name: &str,
    node: watch::Receiver<Option<NodeIdentity>>,
    metrics: Arc<AgentMetrics>,
) -> watch::Sender<Option<SeccompNodeReportSpec>> {
    let (tx, rx) = watch::channel(None);
    let wake = Arc::new(Notify::new());
    let (stored, stored_watch) = reflect(
        Api::<SeccompNodeReport>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={node_name}")),
        |r| r.metadata.managed_fields = None,
        wake.clone(),
    );
    let publisher = ReportPublisher::new(client);
    tokio::spawn(async move {
        let _stored_watch = stored_watch;
        let inputs = Inputs {
            reports: rx,
            node,
            stored,
            wake,
        };
        publish_latest(publisher, inputs, metrics).await;
    });
    tx
}

/// What the publisher follows.
struct Inputs {
    /// The latest report from the loop.
    reports: watch::Receiver<Option<SeccompNodeReportSpec>>,
    /// This node's identity.
    node: watch::Receiver<Option<NodeIdentity>>,
    /// The report as the API server has it.
    stored: Store<SeccompNodeReport>,
    /// Woken by every change of `stored`.
    wake: Arc<Notify>,
}

impl Inputs {
    /// The stored report, once the watch has listed it: `Some(None)` when there is none,
    /// `None` while it is not known.
    fn stored(&self, node_name: &str) -> Option<Option<Arc<SeccompNodeReport>>> {
        let listed = self.stored.wait_until_ready().now_or_never()?.is_ok();
        listed.then(|| self.stored.get(&ObjectRef::new(node_name)))
    }

    /// Waits until a report, the identity or the stored report changes; `false` when the
    /// loop is gone.
    async fn changed(&mut self) -> bool {
        tokio::select! {
            changed = self.reports.changed() => changed.is_ok(),
            changed = self.node.changed() => changed.is_ok(),
            _ = self.wake.notified() => true,
        }
    }
}

async fn publish_latest(
    mut publisher: ReportPublisher,
    mut inputs: Inputs,
    metrics: Arc<AgentMetrics>,
) {
    loop {
        inputs.reports.mark_unchanged();
        inputs.node.mark_unchanged();
        // Each attempt takes the latest report: one superseded meanwhile is never sent.
        let attempt = (|| publisher.apply_latest(&inputs))
            .retry(api_retry())
            .when(AgentError::is_transient)
            .notify(|err, _| {
                warn!(%err, "cannot publish the node report; retrying");
                metrics.record_api_error();
            });
        match attempt.await {
            Ok(Some(applied)) => publisher.last = Some(applied),
            Ok(None) => {}
            Err(err) => {
                warn!(%err, "the node report was refused; it is applied again when it changes");
                metrics.record_api_error();
            }
        }
        if !inputs.changed().await {
            return;
        }
    }
}

/// How many of its own writes' resourceVersions the publisher remembers: the watch of the
/// stored report can lag several applies behind on a busy API server, and an event of the
/// agent's own earlier write is no reason to apply again.
const OWN_WRITES_REMEMBERED: usize = 16;

/// What the agent last applied: the report, for which Node, and the resourceVersions the API
/// server gave its recent applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// The report's spec.
    pub spec: SeccompNodeReportSpec,
    /// The Node it is owned by.
    pub node: NodeIdentity,
    /// metadata.resourceVersion after each of the last few applies, the latest last.
    pub resource_versions: Vec<String>,
}

impl Applied {
    /// Whether the API server gave `resource_version` to one of the agent's recent applies.
    fn wrote(&self, resource_version: Option<&String>) -> bool {
        resource_version.is_some_and(|rv| self.resource_versions.contains(rv))
    }
}

/// The stored report as far as the decision goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// Its spec.
    pub spec: SeccompNodeReportSpec,
    /// metadata.resourceVersion.
    pub resource_version: Option<String>,
}

impl Observed {
    /// The parts of a stored report the decision reads.
    pub fn of(report: &SeccompNodeReport) -> Self {
        Self {
            spec: report.spec.clone(),
            resource_version: report.metadata.resource_version.clone(),
        }
    }
}

/// Whether `wanted` must be applied: it differs from what was last applied, the Node was
/// recreated since, or the stored report (`observed`: `None` while unknown, `Some(None)` when
/// there is none) is not what the agent last wrote. A stored report whose resourceVersion is
/// one the agent's own recent applies returned is taken as written: a spec the API server
/// normalizes differently never makes the publisher apply in a loop, and a watch that lags
/// behind the agent's own applies never makes it apply twice.
pub fn needs_apply(
    wanted: &SeccompNodeReportSpec,
    node: &NodeIdentity,
    last: Option<&Applied>,
    observed: Option<&Option<Observed>>,
) -> bool {
    let Some(last) = last else { return true };
    if last.spec != *wanted || last.node != *node {
        return true;
    }
    match observed {
        None => false,
        Some(None) => true,
        Some(Some(stored)) => {
            !last.wrote(stored.resource_version.as_ref()) && stored.spec != last.spec
        }
    }
}

/// Node `node_name`'s last report: what the agent had installed or kept before it
/// (re)started. `None` when there is none or the API does not answer within a few seconds;
/// the agent then simply learns nothing from it.
pub async fn last_report(client: &Client, node_name: &str) -> Option<SeccompNodeReportSpec> {
    let api: Api<SeccompNodeReport> = Api::all(client.clone());
    match tokio::time::timeout(Duration::from_secs(5), api.get_opt(node_name)).await {
        Ok(Ok(report)) => report.map(|r| r.spec),
        Ok(Err(err)) => {
            warn!(%err, "cannot read this node's last report");
            None
        }
        Err(_) => {
            warn!("no answer reading this node's last report");
            None
        }
    }
}

/// Publishes one node's report, owned by its Node so that it goes when the node goes.
pub struct ReportPublisher {
    api: Api<SeccompNodeReport>,
    last: Option<Applied>,
}

impl ReportPublisher {
    /// Prepares to publish reports through `client`.
    pub fn new(client: Client) -> Self {
        Self {
            api: Api::all(client),
            last: None,
        }
    }

    /// Applies `spec` as the report of `node` (server-side apply, forced: the agent owns it).
    pub async fn publish(
        &mut self,
        node: &NodeIdentity,
        spec: SeccompNodeReportSpec,
    ) -> Result<(), AgentError> {
        self.last = Some(self.apply(node, spec).await?);
        Ok(())
    }

    /// Applies the latest report of `inputs` where [`needs_apply`] says so: what it applied,
    /// or `None` when nothing needed to be.
    async fn apply_latest(&self, inputs: &Inputs) -> Result<Option<Applied>, AgentError> {
        let wanted = inputs.reports.borrow().clone();
        let node = inputs.node.borrow().clone();
        let (Some(spec), Some(node)) = (wanted, node) else {
            return Ok(None);
        };
        let stored = inputs.stored(&node.name);
        let observed = stored.as_ref().map(|s| s.as_deref().map(Observed::of));
        if !needs_apply(&spec, &node, self.last.as_ref(), observed.as_ref()) {
            return Ok(None);
        }
        self.apply(&node, spec).await.map(Some)
    }

    /// Applies `spec` as the report of `node`: what the agent has applied then.
    async fn apply(
        &self,
        node: &NodeIdentity,
        spec: SeccompNodeReportSpec,
    ) -> Result<Applied, AgentError> {
        let name = node.name.clone();
        let body = json!({
            "apiVersion": SeccompNodeReport::api_version(&()),
            "kind": SeccompNodeReport::kind(&()),
            "metadata": { "name": name, "ownerReferences": [node.owner_reference()] },
            "spec": spec,
        });
        let applied = self
            .api
            .patch(
                &name,
                &PatchParams::apply(AGENT_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| AgentError::Kube {
                context: format!("apply SeccompNodeReport {name}"),
                source,
            })?;
        let mut resource_versions = self
            .last
            .as_ref()
            .map(|last| last.resource_versions.clone())
            .unwrap_or_default();
        resource_versions.extend(applied.metadata.resource_version);
        let surplus = resource_versions
            .len()
            .saturating_sub(OWN_WRITES_REMEMBERED);
        resource_versions.drain(..surplus);
        Ok(Applied {
            spec,
            node: node.clone(),
            resource_versions,
        })
    }
}

#[cfg(test)]
mod tests {
    use http::{Method, StatusCode};
    use serde_json::json;

    use super::*;
    use crate::testing::{self, api_errors};
    use seccompd_profile::digest::SetDigest;
    use seccompd_profile::render::ContentHash;
    use seccompd_runtime::apiserver::mock::{MockApi, mock_client};

    fn node(uid: &str) -> NodeIdentity {
        NodeIdentity {
            name: "node1".into(),
            uid: uid.into(),
        }
    }

    fn spec(hash: &str) -> SeccompNodeReportSpec {
        SeccompNodeReportSpec {
            synced: true,
            installed: 1,
            installed_digest: SetDigest::of_set([("p", &ContentHash::from(hash))]),
            ..Default::default()
        }
    }

    fn applied(hash: &str, uid: &str, rv: &str) -> Applied {
        Applied {
            spec: spec(hash),
            node: node(uid),
            resource_versions: vec![rv.into()],
        }
    }

    fn observed(hash: &str, rv: &str) -> Observed {
        Observed {
            spec: spec(hash),
            resource_version: Some(rv.into()),
        }
    }

    #[test]
    fn applies_a_new_report_and_not_the_same_one_twice() {
        assert!(needs_apply(&spec("a"), &node("u1"), None, None));
        let last = applied("a", "u1", "7");
        assert!(!needs_apply(&spec("a"), &node("u1"), Some(&last), None));
        assert!(!needs_apply(
            &spec("a"),
            &node("u1"),
            Some(&last),
            Some(&Some(observed("a", "7")))
        ));
        assert!(needs_apply(&spec("b"), &node("u1"), Some(&last), None));
    }

    #[test]
    fn reapplies_a_report_deleted_or_overwritten_behind_its_back() {
        let last = applied("a", "u1", "7");
        assert!(needs_apply(
            &spec("a"),
            &node("u1"),
            Some(&last),
            Some(&None)
        ));
        assert!(needs_apply(
            &spec("a"),
            &node("u1"),
            Some(&last),
            Some(&Some(observed("forged", "9")))
        ));
        // Another writer touched it without changing the spec: nothing to repair.
        assert!(!needs_apply(
            &spec("a"),
            &node("u1"),
            Some(&last),
            Some(&Some(observed("a", "9")))
        ));
        // Its own write, read back in another form: never a loop.
        assert!(!needs_apply(
            &spec("a"),
            &node("u1"),
            Some(&last),
            Some(&Some(observed("normalized", "7")))
        ));
    }

    #[test]
    fn an_event_of_its_own_earlier_write_is_no_reason_to_apply_again() {
        let mut last = applied("b", "u1", "8");
        last.resource_versions.insert(0, "7".into());
        // The watch lags: it brings the agent's write of "a" after "b" was applied.
        assert!(!needs_apply(
            &spec("b"),
            &node("u1"),
            Some(&last),
            Some(&Some(observed("a", "7")))
        ));
        assert!(
            needs_apply(
                &spec("b"),
                &node("u1"),
                Some(&last),
                Some(&Some(observed("a", "6")))
            ),
            "a version the agent did not write is someone else's"
        );
    }

    #[tokio::test]
    async fn publish_remembers_its_last_few_resource_versions() {
        let (client, mut api) = mock_client();
        let mut publisher = ReportPublisher::new(client);
        let count = OWN_WRITES_REMEMBERED + 3;
        let server = tokio::spawn(async move {
            for rv in 0..count {
                api.expect_apply(REPORT, AGENT_MANAGER, answer(&rv.to_string()))
                    .await;
            }
            api
        });
        for i in 0..count {
            publisher
                .publish(&node("u1"), spec(&format!("sha256:{i}")))
                .await
                .unwrap();
        }
        let api = server.await.unwrap();
        let kept = &publisher.last.as_ref().unwrap().resource_versions;
        let want: Vec<String> = (3..count).map(|rv| rv.to_string()).collect();
        assert_eq!(kept, &want, "the latest, oldest first");
        drop(publisher);
        api.expect_no_more().await;
    }

    #[test]
    fn reapplies_when_the_node_was_recreated() {
        let last = applied("a", "u1", "7");
        assert!(needs_apply(
            &spec("a"),
            &node("u2"),
            Some(&last),
            Some(&Some(observed("a", "7")))
        ));
    }

    #[tokio::test]
    async fn publish_applies_the_report_owned_by_the_node_and_remembers_it() {
        let (client, mut api) = mock_client();
        let mut publisher = ReportPublisher::new(client);
        let server = tokio::spawn(async move {
            let got = api.expect_apply(REPORT, AGENT_MANAGER, answer("42")).await;
            (got, api)
        });
        publisher
            .publish(&node("u1"), spec("sha256:a"))
            .await
            .unwrap();
        let (got, api) = server.await.unwrap();
        assert_eq!(
            got,
            json!({
                "apiVersion": "seccompd.dev/v1alpha1",
                "kind": "SeccompNodeReport",
                "metadata": {
                    "name": "node1",
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node1", "uid": "u1"}],
                },
                "spec": {
                    "synced": true,
                    "installed": 1,
                    "installedDigest": SetDigest::of_set([("p", &ContentHash::from("sha256:a"))]).to_hex(),
                    "exceptions": [],
                },
            })
        );
        assert_eq!(publisher.last, Some(applied("sha256:a", "u1", "42")));
        drop(publisher);
        api.expect_no_more().await;
    }

    /// A stored report as the watch would deliver it.
    fn stored(hash: &str, rv: &str) -> SeccompNodeReport {
        let mut report = SeccompNodeReport::new("node1", spec(hash));
        report.metadata.resource_version = Some(rv.into());
        report
    }

    /// The API server's answer to an apply: the report with resourceVersion `rv`.
    fn answer(rv: &str) -> serde_json::Value {
        json!({
            "apiVersion": "seccompd.dev/v1alpha1",
            "kind": "SeccompNodeReport",
            "metadata": {"name": "node1", "resourceVersion": rv},
            "spec": {"synced": true},
        })
    }

    const REPORT: &str = "/apis/seccompd.dev/v1alpha1/seccompnodereports/node1";

    #[tokio::test]
    async fn the_task_reapplies_a_deleted_report_and_follows_a_recreated_node_only() {
        let (client, mut api) = mock_client();
        let (reports_tx, reports) = watch::channel(Some(spec("sha256:a")));
        let (node_tx, node_rx) = watch::channel(Some(node("u1")));
        let (store, mut writer) = kube::runtime::reflector::store::<SeccompNodeReport>();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let wake = Arc::new(Notify::new());
        let inputs = Inputs {
            reports,
            node: node_rx,
            stored: store,
            wake: wake.clone(),
        };
        let task = tokio::spawn(publish_latest(
            ReportPublisher::new(client),
            inputs,
            Arc::new(testing::metrics()),
        ));
        let owner =
            |uid: &str| json!([{"apiVersion": "v1", "kind": "Node", "name": "node1", "uid": uid}]);

        // No report stored yet: applied.
        let first = api.expect_apply(REPORT, AGENT_MANAGER, answer("1")).await;
        assert_eq!(first["metadata"]["ownerReferences"], owner("u1"));
        // The watch brings the agent's own write back, then someone deletes the report.
        writer.apply_watcher_event(&watcher::Event::Apply(stored("sha256:a", "1")));
        wake.notify_one();
        tokio::task::yield_now().await;
        writer.apply_watcher_event(&watcher::Event::Delete(stored("sha256:a", "1")));
        wake.notify_one();
        let again = api.expect_apply(REPORT, AGENT_MANAGER, answer("2")).await;
        assert_eq!(again, first, "the same report, applied again");
        writer.apply_watcher_event(&watcher::Event::Apply(stored("sha256:a", "2")));
        wake.notify_one();

        // The Node is recreated: the report is applied with the new owner.
        node_tx.send_replace(Some(node("u2")));
        let moved = api.expect_apply(REPORT, AGENT_MANAGER, answer("3")).await;
        assert_eq!(moved["metadata"]["ownerReferences"], owner("u2"));

        // The loop is gone: the task ends, and nothing else was sent (the agent's own writes,
        // read back, made no request).
        drop(reports_tx);
        task.await.unwrap();
        api.expect_no_more().await;
    }

    /// The publisher task, its inputs and what it talks to.
    struct Started {
        api: MockApi,
        metrics: Arc<AgentMetrics>,
        reports: watch::Sender<Option<SeccompNodeReportSpec>>,
        task: tokio::task::JoinHandle<()>,
    }

    /// The publisher task of report "sha256:a" for node u1, over a store that lists no report.
    fn started() -> Started {
        let (client, api) = mock_client();
        let metrics = Arc::new(testing::metrics());
        let (reports_tx, reports) = watch::channel(Some(spec("sha256:a")));
        // The node never changes: its sender lives as long as the task.
        let (node_tx, node) = watch::channel(Some(node("u1")));
        let (stored, mut writer) = kube::runtime::reflector::store::<SeccompNodeReport>();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let inputs = Inputs {
            reports,
            node,
            stored,
            wake: Arc::new(Notify::new()),
        };
        let publisher = ReportPublisher::new(client);
        let task_metrics = metrics.clone();
        let task = tokio::spawn(async move {
            let _node = node_tx;
            publish_latest(publisher, inputs, task_metrics).await;
        });
        Started {
            api,
            metrics,
            reports: reports_tx,
            task,
        }
    }

    /// Answers the next request, an apply of the report, with a `status` failure.
    async fn refuse_apply(api: &mut MockApi, status: StatusCode) {
        let query = ["fieldManager=seccompd-agent", "force=true"];
        api.refuse(Method::PATCH, REPORT, &query, status).await;
    }

    /// Waits for the task to end once its inputs are gone. A task that waits for a change
    /// ends at once; one that retries makes a request nobody answers, and never ends.
    async fn ends(task: tokio::task::JoinHandle<()>) {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the task waits for a change, and ends with its inputs")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_apply_is_retried_until_it_goes_through() {
        let mut t = started();
        refuse_apply(&mut t.api, StatusCode::SERVICE_UNAVAILABLE).await;
        let retried = t.api.expect_apply(REPORT, AGENT_MANAGER, answer("1")).await;
        assert_eq!(retried["spec"]["installed"], 1, "{retried}");
        assert_eq!(api_errors(&t.metrics), 1.0);

        drop(t.reports);
        ends(t.task).await;
        t.api.expect_no_more().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_apply_is_not_retried_but_waits_for_a_change() {
        let mut t = started();
        refuse_apply(&mut t.api, StatusCode::UNPROCESSABLE_ENTITY).await;
        drop(t.reports);
        ends(t.task).await;
        assert_eq!(api_errors(&t.metrics), 1.0);
        t.api.expect_no_more().await;
    }

    #[tokio::test]
    async fn a_refused_apply_is_an_error_and_not_remembered() {
        let (client, mut api) = mock_client();
        let mut publisher = ReportPublisher::new(client);
        let server = tokio::spawn(async move {
            api.expect(
                Method::PATCH,
                "/apis/seccompd.dev/v1alpha1/seccompnodereports/node1",
                &["fieldManager=seccompd-agent", "force=true"],
                StatusCode::FORBIDDEN,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403, "reason": "Forbidden", "message": "no"}),
            )
            .await;
        });
        let err = publisher.publish(&node("u1"), spec("sha256:a")).await;
        server.await.unwrap();
        assert!(matches!(err, Err(AgentError::Kube { .. })), "{err:?}");
        assert_eq!(publisher.last, None);
    }
}
