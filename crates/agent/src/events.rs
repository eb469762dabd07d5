//! Kubernetes Events for what people must know: a deleted profile kept because pods on the
//! node use it (Warning on the Node), its removal once they are gone (Normal on the Node), a
//! pod that references a profile that does not exist (Warning on the pod). Sent from a task of
//! its own, so the loop never waits for the API server, through kube's own event `Recorder`:
//! an event that recurs within minutes (same reason and objects) is counted in the first one's
//! `series`, by PATCH, instead of piling up as new Events; the first event's note stays.

use std::sync::Arc;
use std::time::Duration;

use backon::Retryable as _;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use super::AgentError;
use super::decide::notices::{Notice, pod_list};
use super::decide::suggest::missing_profile_note;
use super::metrics::AgentMetrics;
use super::node_identity::NodeIdentity;
use seccompd_api::SeccompProfile;
use seccompd_runtime::apiserver::api_retry;

/// `reportingController` of the agent's events.
pub const REPORTING_CONTROLLER: &str = "seccompd.dev/agent";

/// Reason of the Warning on the Node while a deleted profile's file is kept.
pub const REASON_RETAINED: &str = "SeccompProfileRetained";

/// Reason of the Normal event on the Node once a kept file is removed.
pub const REASON_RELEASED: &str = "SeccompProfileReleased";

/// Reason of the Warning on a pod that references a profile that does not exist.
pub const REASON_MISSING: &str = "SeccompProfileMissing";

/// How many notices may wait while the API server is unreachable; beyond that they are
/// dropped (the node report still tells the state).
const QUEUE: usize = 256;

/// How long one event is retried (an API server outage) before it is given up; one the API
/// server refuses is given up at once.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Largest event note the API accepts.
const MAX_NOTE_BYTES: usize = 1024;

/// Largest `reportingInstance` the API accepts.
const MAX_INSTANCE_BYTES: usize = 128;

/// Starts the event sender for node `node_name`, whose identity `node` follows.
pub fn spawn(
    client: Client,
    node_name: &str,
    node: watch::Receiver<Option<NodeIdentity>>,
    metrics: Arc<AgentMetrics>,
) -> EventSender {
    let (tx, rx) = mpsc::channel(QUEUE);
    let recorder = Recorder::new(client, reporter(node_name));
    tokio::spawn(send_all(recorder, node_name.to_string(), node, rx, metrics));
    EventSender { tx }
}

/// Hands notices to the event task without waiting.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::Sender<Notice>,
}

impl EventSender {
    /// Queues `notice`; drops it (with a log line) if the queue is full.
    pub fn send(&self, notice: Notice) {
        if let Err(err) = self.tx.try_send(notice) {
            warn!(%err, "event queue full; dropping an event");
        }
    }
}

/// The agent on `node_name` as the reporter of its events.
fn reporter(node_name: &str) -> Reporter {
    Reporter {
        controller: REPORTING_CONTROLLER.into(),
        instance: Some(truncate(node_name.to_string(), MAX_INSTANCE_BYTES)),
    }
}

async fn send_all(
    recorder: Recorder,
    node_name: String,
    node: watch::Receiver<Option<NodeIdentity>>,
    mut notices: mpsc::Receiver<Notice>,
    metrics: Arc<AgentMetrics>,
) {
    while let Some(notice) = notices.recv().await {
        let sent = (|| send_one(&recorder, &node_name, &node, &notice))
            .retry(api_retry().with_total_delay(Some(GIVE_UP_AFTER)))
            .when(AgentError::is_transient)
            .notify(|err, _| {
                metrics.record_api_error();
                debug!(%err, "cannot publish an event; retrying");
            })
            .await;
        if let Err(err) = sent {
            metrics.record_api_error();
            warn!(%err, ?notice, "giving up on an event");
        }
    }
}

async fn send_one(
    recorder: &Recorder,
    node_name: &str,
    node: &watch::Receiver<Option<NodeIdentity>>,
    notice: &Notice,
) -> Result<(), AgentError> {
    let node_obj = node
        .borrow()
        .as_ref()
        .map(NodeIdentity::object_reference)
        .ok_or_else(|| AgentError::NodeUnknown(node_name.to_string()))?;
    let Publication { regarding, event } = event_for(notice, &node_obj, node_name);
    recorder
        .publish(&event, &regarding)
        .await
        .map_err(|source| AgentError::Kube {
            context: format!("publish event {}", event.reason),
            source,
        })
}

/// An event and the object it is about. The Recorder puts it in that object's namespace, and
/// a Node's events in `default`.
pub struct Publication {
    /// The object the event is about (`regarding`).
    pub regarding: ObjectReference,
    /// What the event says.
    pub event: Event,
}

/// The event for `notice`. `node` refers to this node, `node_name` names it.
pub fn event_for(notice: &Notice, node: &ObjectReference, node_name: &str) -> Publication {
    let (regarding, secondary, type_, reason, action, note) = match notice {
        Notice::Retained { profile, pods } => (
            node.clone(),
            profile_ref(profile),
            EventType::Warning,
            REASON_RETAINED,
            "KeepProfileFile",
            format!(
                "SeccompProfile {profile:?} was deleted, but pods on node {node_name} still use \
                 it: {}. Its file seccompd/{profile}.json stays until they are gone.",
                pod_list(pods)
            ),
        ),
        Notice::Released { profile } => (
            node.clone(),
            profile_ref(profile),
            EventType::Normal,
            REASON_RELEASED,
            "RemoveProfileFile",
            format!(
                "No pod on node {node_name} uses the deleted SeccompProfile {profile:?} any \
                 more; its file was removed."
            ),
        ),
        Notice::Missing {
            pod,
            profile,
            closest,
        } => (
            ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(pod.namespace.clone()),
                name: Some(pod.name.clone()),
                uid: Some(pod.uid.clone()),
                ..Default::default()
            },
            node.clone(),
            EventType::Warning,
            REASON_MISSING,
            "InstallProfileFile",
            missing_profile_note(profile, closest),
        ),
    };
    Publication {
        regarding,
        event: Event {
            type_,
            reason: reason.into(),
            note: Some(truncate(note, MAX_NOTE_BYTES)),
            action: action.into(),
            secondary: Some(secondary),
        },
    }
}

/// A reference to SeccompProfile `name` (which may no longer exist).
fn profile_ref(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(SeccompProfile::api_version(&()).into_owned()),
        kind: Some(SeccompProfile::kind(&()).into_owned()),
        name: Some(name.into()),
        ..Default::default()
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use http::{Method, StatusCode};
    use serde_json::{Value, json};

    use super::*;
    use crate::decide::pods::PodRef;
    use crate::testing::{self, api_errors};
    use seccompd_runtime::apiserver::mock::{MockApi, mock_client};

    fn node() -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some("node1".into()),
            uid: Some("node-uid".into()),
            ..Default::default()
        }
    }

    fn pod(name: &str) -> PodRef {
        PodRef {
            namespace: "team".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
        }
    }

    fn retained() -> Notice {
        Notice::Retained {
            profile: "old".into(),
            pods: vec![pod("a"), pod("b")],
        }
    }

    #[test]
    fn retained_is_a_warning_on_the_node_naming_the_pods() {
        let Publication { regarding, event } = event_for(&retained(), &node(), "node1");
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(event.reason, REASON_RETAINED);
        assert_eq!(event.action, "KeepProfileFile");
        // A Node has no namespace: the Recorder files its events in `default`.
        assert_eq!(regarding, node());
        assert_eq!(
            event.secondary.as_ref().and_then(|r| r.kind.as_deref()),
            Some("SeccompProfile")
        );
        let note = event.note.unwrap();
        assert!(note.contains("team/a, team/b"), "{note}");
        assert!(note.contains("seccompd/old.json"), "{note}");
    }

    #[test]
    fn missing_is_a_warning_on_the_pod_related_to_the_node() {
        let notice = Notice::Missing {
            pod: pod("web"),
            profile: "nginx-stirct".into(),
            closest: vec!["nginx-strict".into()],
        };
        let Publication { regarding, event } = event_for(&notice, &node(), "node1");
        assert_eq!(regarding.kind.as_deref(), Some("Pod"));
        assert_eq!(regarding.uid.as_deref(), Some("uid-web"));
        assert_eq!(regarding.namespace.as_deref(), Some("team"));
        assert_eq!(event.secondary, Some(node()));
        assert_eq!(event.type_, EventType::Warning);
        assert!(event.note.unwrap().contains("\"nginx-strict\""));
    }

    #[test]
    fn released_is_normal() {
        let notice = Notice::Released {
            profile: "old".into(),
        };
        let event = event_for(&notice, &node(), "node1").event;
        assert_eq!(event.type_, EventType::Normal);
        assert_eq!(event.reason, REASON_RELEASED);
    }

    #[test]
    fn notes_and_the_instance_fit_the_api_limits() {
        let pods: Vec<PodRef> = (0..200).map(|i| pod(&"p".repeat(60 + i % 3))).collect();
        let notice = Notice::Retained {
            profile: "é".repeat(300),
            pods,
        };
        let event = event_for(&notice, &node(), "node1").event;
        assert!(event.note.unwrap().len() <= MAX_NOTE_BYTES);
        let long = reporter(&"n".repeat(300));
        assert_eq!(long.instance.map(|i| i.len()), Some(MAX_INSTANCE_BYTES));
    }

    /// Where a Node's events go (the request's path is what places them; their own
    /// `metadata.namespace` is left to the API server).
    const EVENTS_IN_DEFAULT: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

    /// Where the events of the pods in namespace `team` go.
    const EVENTS_IN_TEAM: &str = "/apis/events.k8s.io/v1/namespaces/team/events";

    /// Pod team/web references a profile that does not exist.
    fn missing_web() -> Notice {
        Notice::Missing {
            pod: pod("web"),
            profile: "nginx-stirct".into(),
            closest: vec![],
        }
    }

    fn node1() -> NodeIdentity {
        NodeIdentity {
            name: "node1".into(),
            uid: "node-uid".into(),
        }
    }

    struct Started {
        sender: EventSender,
        api: MockApi,
        node: watch::Sender<Option<NodeIdentity>>,
        metrics: Arc<AgentMetrics>,
    }

    /// The event task, with this node's identity `node`.
    fn started(node: Option<NodeIdentity>) -> Started {
        let (client, api) = mock_client();
        let (node_tx, node_rx) = watch::channel(node);
        let metrics = Arc::new(testing::metrics());
        let sender = spawn(client, "node1", node_rx, metrics.clone());
        Started {
            sender,
            api,
            node: node_tx,
            metrics,
        }
    }

    /// What the API server answers to a create or patch: the Recorder only needs an Event.
    fn stored() -> Value {
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "stored"}})
    }

    #[tokio::test]
    async fn creates_an_event_then_counts_its_recurrence_in_a_series_by_patch() {
        let mut t = started(Some(node1()));
        t.sender.send(retained());
        let created = expect_created(&mut t.api, EVENTS_IN_DEFAULT).await;
        assert_eq!(created["reason"], REASON_RETAINED);
        assert_eq!(created["type"], "Warning");
        assert_eq!(created["action"], "KeepProfileFile");
        assert_eq!(created["regarding"]["kind"], "Node");
        assert_eq!(created["regarding"]["uid"], "node-uid");
        assert_eq!(created["related"]["kind"], "SeccompProfile");
        assert_eq!(created["related"]["name"], "old");
        assert_eq!(created["reportingController"], REPORTING_CONTROLLER);
        assert_eq!(created["reportingInstance"], "node1");
        assert!(created["eventTime"].is_string(), "{created}");
        assert!(created.get("series").is_none(), "{created}");
        let name = created["metadata"]["name"].as_str().expect("a name");

        t.sender.send(retained());
        let patched = t
            .api
            .expect(
                Method::PATCH,
                &format!("{EVENTS_IN_DEFAULT}/{name}"),
                &[],
                StatusCode::OK,
                stored(),
            )
            .await;
        assert_eq!(
            patched.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        assert_eq!(patched.body["series"]["count"], 2, "{}", patched.body);
        assert!(patched.body["series"]["lastObservedTime"].is_string());
        assert_eq!(patched.body["note"], created["note"]);

        drop(t.sender);
        t.api.expect_no_more().await;
    }

    /// Takes the next request, a create in `path`, answers it, and returns the event.
    async fn expect_created(api: &mut MockApi, path: &str) -> Value {
        let created = api.expect(Method::POST, path, &[], StatusCode::CREATED, stored());
        created.await.body
    }

    #[tokio::test(start_paused = true)]
    async fn a_pods_event_goes_to_its_namespace_and_a_failed_one_is_retried() {
        let mut t = started(Some(node1()));
        t.sender.send(missing_web());
        let failed = StatusCode::INTERNAL_SERVER_ERROR;
        let first = t.api.refuse(Method::POST, EVENTS_IN_TEAM, &[], failed);
        let first = first.await.body;
        // A refused event is not remembered: the retry creates it, it does not patch.
        let retried = expect_created(&mut t.api, EVENTS_IN_TEAM).await;
        assert_eq!(retried["reason"], REASON_MISSING);
        assert_eq!(retried["regarding"]["name"], "web");
        assert_eq!(retried["related"], first["related"]);
        assert!(retried.get("series").is_none(), "{retried}");
        assert_eq!(api_errors(&t.metrics), 1.0);

        drop(t.sender);
        t.api.expect_no_more().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_the_api_server_refuses_is_given_up_at_once() {
        let mut t = started(Some(node1()));
        t.sender.send(retained());
        t.sender.send(missing_web());
        let forbidden = StatusCode::FORBIDDEN;
        t.api
            .refuse(Method::POST, EVENTS_IN_DEFAULT, &[], forbidden)
            .await;
        // The next request is the next event's, not the refused one again.
        let next = expect_created(&mut t.api, EVENTS_IN_TEAM).await;
        assert_eq!(next["reason"], REASON_MISSING);
        assert_eq!(api_errors(&t.metrics), 1.0);

        drop(t.sender);
        t.api.expect_no_more().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_waits_for_the_node_to_be_known() {
        let mut t = started(None);
        t.sender.send(retained());
        // Lets the first attempt run: it finds no node (and makes no request), then pauses.
        tokio::time::sleep(Duration::from_millis(100)).await;
        t.node.send_replace(Some(node1()));
        let event = expect_created(&mut t.api, EVENTS_IN_DEFAULT).await;
        assert_eq!(event["regarding"]["uid"], "node-uid");
        assert_eq!(api_errors(&t.metrics), 1.0, "the attempt without a node");

        drop(t.sender);
        t.api.expect_no_more().await;
    }
}
