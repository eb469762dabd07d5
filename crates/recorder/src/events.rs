//! Events on pods whose calls a seccompd profile refused, or in Audit mode would refuse:
//! "would be denied under profile ls: mkdir". One per pod, system call and action, at a
//! bounded rate ([`seccompd_recording::denials::EventGate`] decides which), sent from a task
//! of its own through kube's event `Recorder` so the loop never waits for the API server. The
//! related object is this node, which the recorder's admission policy checks.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;
use tracing::warn;

use super::metrics::RecorderMetrics;
use seccompd_api::PodExample;
use seccompd_api::denials::is_would_deny;
use seccompd_profile::model::Action;
use seccompd_recording::cgroup::PodUid;

/// `reportingController` of the recorder's events.
pub const REPORTING_CONTROLLER: &str = "seccompd.dev/recorder";

/// Reason of the event for a call an Audit profile would refuse.
pub const REASON_WOULD_DENY: &str = "SeccompWouldDeny";

/// Reason of the event for a call a profile refused.
pub const REASON_DENIED: &str = "SeccompDenied";

/// How many events may wait while the API server is slow; beyond that they are dropped (the
/// counts still tell).
const QUEUE: usize = 256;

/// Largest `reportingInstance` the API accepts.
const MAX_INSTANCE_BYTES: usize = 128;

/// A denial to tell a pod about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenialNotice {
    /// The pod and container.
    pub pod: PodExample,
    /// The pod's uid.
    pub uid: PodUid,
    /// The SeccompProfile.
    pub profile: String,
    /// The system call.
    pub syscall: String,
    /// The action the kernel logged.
    pub action: Action,
}

/// Hands notices to the event task without waiting.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::Sender<DenialNotice>,
}

impl EventSender {
    /// Queues `notice`; drops it (with a log line) if the queue is full.
    pub fn send(&self, notice: DenialNotice) {
        if let Err(err) = self.tx.try_send(notice) {
            warn!(%err, "event queue full; dropping a denial event");
        }
    }
}

/// Starts the event task of the recorder on `node`.
pub fn spawn(client: Client, node: &str, metrics: Arc<RecorderMetrics>) -> EventSender {
    let (tx, mut rx) = mpsc::channel::<DenialNotice>(QUEUE);
    let reporter = Reporter {
        controller: REPORTING_CONTROLLER.into(),
        instance: Some(
            format!("seccompd-recorder-{node}")
                .chars()
                .take(MAX_INSTANCE_BYTES)
                .collect(),
        ),
    };
    let recorder = Recorder::new(client, reporter);
    let node = node.to_string();
    tokio::spawn(async move {
        while let Some(notice) = rx.recv().await {
            let (regarding, event) = event_for(&notice, &node);
            if let Err(err) = recorder.publish(&event, &regarding).await {
                metrics.record_api_error();
                warn!(%err, pod = %notice.pod.name, "denial event not sent");
            }
        }
    });
    EventSender { tx }
}

/// The pod the event is about, and the event (its related object: node `node`).
pub fn event_for(notice: &DenialNotice, node: &str) -> (ObjectReference, Event) {
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some(notice.pod.namespace.clone()),
        name: Some(notice.pod.name.clone()),
        uid: Some(notice.uid.0.clone()),
        ..Default::default()
    };
    let node_ref = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some(node.to_string()),
        ..Default::default()
    };
    let (reason, action, verdict) = if is_would_deny(notice.action) {
        (REASON_WOULD_DENY, "Audit", "would be denied")
    } else {
        (REASON_DENIED, "Deny", "denied")
    };
    let note = format!(
        "{verdict} under profile {}: {} (container {}, {})",
        notice.profile, notice.syscall, notice.pod.container, notice.action
    );
    let event = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: Some(node_ref),
    };
    (regarding, event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(action: Action) -> DenialNotice {
        DenialNotice {
            pod: PodExample {
                namespace: "ns".to_string(),
                name: "web".to_string(),
                container: "main".to_string(),
            },
            uid: PodUid("uid-1".to_string()),
            profile: "ls".to_string(),
            syscall: "mkdir".to_string(),
            action,
        }
    }

    #[test]
    fn an_audited_call_would_be_denied_and_an_enforced_one_is() {
        let (pod, event) = event_for(&notice(Action::Log), "node1");
        assert_eq!(pod.kind.as_deref(), Some("Pod"));
        assert_eq!(pod.uid.as_deref(), Some("uid-1"));
        assert_eq!(event.reason, REASON_WOULD_DENY);
        assert_eq!(
            event.note.as_deref(),
            Some("would be denied under profile ls: mkdir (container main, SCMP_ACT_LOG)")
        );
        let related = event.secondary.unwrap();
        assert_eq!(
            (related.kind.as_deref(), related.name.as_deref()),
            (Some("Node"), Some("node1"))
        );
        let (_, event) = event_for(&notice(Action::Errno), "node1");
        assert_eq!(event.reason, REASON_DENIED);
        assert!(
            event
                .note
                .unwrap()
                .starts_with("denied under profile ls: mkdir")
        );
    }
}
