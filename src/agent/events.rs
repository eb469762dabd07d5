//! Kubernetes Events for what people must know: a deleted profile kept because pods on the
//! node use it (Warning on the Node), its removal once they are gone (Normal on the Node), a
//! pod that references a profile that does not exist (Warning on the pod). Sent from a task of
//! its own, so the loop never waits for the API server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, Resource};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use super::AgentError;
use super::decide::notices::{Notice, pod_list};
use super::decide::suggest::missing_profile_note;
use super::node_identity::NodeIdentity;
use crate::api::SeccompProfile;
use crate::apiserver::{MAX_API_BACKOFF, api_backoff};
use crate::telemetry::Metrics;

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

/// How long one event is retried (an API server outage) before it is given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Largest event note the API accepts.
const MAX_NOTE_BYTES: usize = 1024;

/// Starts the event sender for node `node_name`, whose identity `node` follows.
pub fn spawn(
    client: Client,
    node_name: &str,
    node: watch::Receiver<Option<NodeIdentity>>,
    metrics: Arc<Metrics>,
) -> EventSender {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(send_all(client, node_name.to_string(), node, rx, metrics));
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

async fn send_all(
    client: Client,
    node_name: String,
    node: watch::Receiver<Option<NodeIdentity>>,
    mut notices: mpsc::Receiver<Notice>,
    metrics: Arc<Metrics>,
) {
    while let Some(notice) = notices.recv().await {
        let since = Instant::now();
        let mut backoff = api_backoff();
        while let Err(err) = send_one(&client, &node_name, &node, &notice).await {
            metrics.record_api_error();
            if since.elapsed() > GIVE_UP_AFTER {
                warn!(%err, ?notice, "giving up on an event");
                break;
            }
            debug!(%err, "cannot create an event; retrying");
            tokio::time::sleep(backoff.next().unwrap_or(MAX_API_BACKOFF)).await;
        }
    }
}

async fn send_one(
    client: &Client,
    node_name: &str,
    node: &watch::Receiver<Option<NodeIdentity>>,
    notice: &Notice,
) -> Result<(), AgentError> {
    let node_obj = node
        .borrow()
        .as_ref()
        .map(NodeIdentity::object_reference)
        .ok_or_else(|| AgentError::NodeUnknown(node_name.to_string()))?;
    let event = event_for(notice, &node_obj, node_name, Timestamp::now());
    let namespace = event.metadata.namespace.clone().unwrap_or_default();
    Api::<Event>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &event)
        .await
        .map_err(|source| AgentError::Kube {
            context: format!(
                "create event {}",
                event.reason.as_deref().unwrap_or_default()
            ),
            source,
        })?;
    Ok(())
}

/// The event for `notice`. `node` refers to this node, `node_name` names it.
pub fn event_for(
    notice: &Notice,
    node: &ObjectReference,
    node_name: &str,
    now: Timestamp,
) -> Event {
    let (regarding, related, type_, reason, action, note) = match notice {
        Notice::Retained { profile, pods } => (
            node.clone(),
            Some(profile_ref(profile)),
            "Warning",
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
            Some(profile_ref(profile)),
            "Normal",
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
            Some(node.clone()),
            "Warning",
            REASON_MISSING,
            "InstallProfileFile",
            missing_profile_note(profile, closest),
        ),
    };
    let namespace = regarding
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    Event {
        metadata: ObjectMeta {
            // The API server appends a random suffix (a trailing '.' is not a valid prefix).
            generate_name: Some(format!(
                "{}-",
                regarding.name.as_deref().unwrap_or("seccompd")
            )),
            namespace: Some(namespace),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(type_.into()),
        reason: Some(reason.into()),
        action: Some(action.into()),
        note: Some(truncate(note, MAX_NOTE_BYTES)),
        regarding: Some(regarding),
        related,
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(truncate(node_name.to_string(), 128)),
        ..Default::default()
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
    use super::*;
    use crate::agent::decide::pods::PodRef;

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

    #[test]
    fn retained_is_a_warning_on_the_node_naming_the_pods() {
        let notice = Notice::Retained {
            profile: "old".into(),
            pods: vec![pod("a"), pod("b")],
        };
        let e = event_for(&notice, &node(), "node1", Timestamp::UNIX_EPOCH);
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some(REASON_RETAINED));
        assert_eq!(e.regarding, Some(node()));
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            e.related.as_ref().and_then(|r| r.kind.as_deref()),
            Some("SeccompProfile")
        );
        let note = e.note.unwrap();
        assert!(note.contains("team/a, team/b"), "{note}");
        assert!(note.contains("seccompd/old.json"), "{note}");
        assert_eq!(
            e.reporting_controller.as_deref(),
            Some(REPORTING_CONTROLLER)
        );
        assert_eq!(e.reporting_instance.as_deref(), Some("node1"));
        assert!(e.event_time.is_some() && e.action.is_some());
    }

    #[test]
    fn missing_is_a_warning_on_the_pod_in_its_namespace() {
        let notice = Notice::Missing {
            pod: pod("web"),
            profile: "nginx-stirct".into(),
            closest: vec!["nginx-strict".into()],
        };
        let e = event_for(&notice, &node(), "node1", Timestamp::UNIX_EPOCH);
        let regarding = e.regarding.unwrap();
        assert_eq!(regarding.kind.as_deref(), Some("Pod"));
        assert_eq!(regarding.uid.as_deref(), Some("uid-web"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("team"));
        assert_eq!(e.metadata.generate_name.as_deref(), Some("web-"));
        assert!(e.note.unwrap().contains("\"nginx-strict\""));
    }

    #[test]
    fn released_is_normal() {
        let e = event_for(
            &Notice::Released {
                profile: "old".into(),
            },
            &node(),
            "node1",
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(e.type_.as_deref(), Some("Normal"));
        assert_eq!(e.reason.as_deref(), Some(REASON_RELEASED));
    }

    #[test]
    fn notes_fit_the_api_limit() {
        let pods: Vec<PodRef> = (0..200).map(|i| pod(&"p".repeat(60 + i % 3))).collect();
        let e = event_for(
            &Notice::Retained {
                profile: "é".repeat(300),
                pods,
            },
            &node(),
            "node1",
            Timestamp::UNIX_EPOCH,
        );
        assert!(e.note.unwrap().len() <= MAX_NOTE_BYTES);
    }
}
