//! This node as the API knows it, from one watch of its Node object: its name and the uid of
//! the current Node, for owner references and for events about the node (replaced when the
//! Node is recreated: a node that re-registers gets a new uid, and what the old one owned is
//! garbage-collected), and whether it carries the agent-not-ready taint.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;
use tracing::{info, warn};

use super::taint::removal_patch;
use seccompd_api::RUNTIME_LABEL;
use seccompd_runtime::apiserver::watch_retry::WatchRetry;

/// The node's name and the uid of its current Node object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// metadata.name.
    pub name: String,
    /// metadata.uid of the Node object as it is now.
    pub uid: String,
}

impl NodeIdentity {
    /// The identity of a Node object; `None` without a name or uid.
    pub fn of<K: Resource>(node: &K) -> Option<Self> {
        let meta = node.meta();
        Some(Self {
            name: meta.name.clone().filter(|n| !n.is_empty())?,
            uid: meta.uid.clone().filter(|u| !u.is_empty())?,
        })
    }

    /// An owner reference to the node, so that what it owns goes when the node goes.
    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            ..Default::default()
        }
    }

    /// A reference to the node, for events about it.
    pub fn object_reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(self.name.clone()),
            uid: Some(self.uid.clone()),
            ..Default::default()
        }
    }
}

/// What a watch event of the Node means for the identity: `Some(new)` when it changes.
/// Pure, so that every case is tested with plain values.
pub fn next_identity(
    current: Option<&NodeIdentity>,
    event: &watcher::Event<Node>,
) -> Option<Option<NodeIdentity>> {
    let seen = match event {
        watcher::Event::Apply(node) | watcher::Event::InitApply(node) => NodeIdentity::of(node),
        watcher::Event::Delete(_) => None,
        watcher::Event::Init | watcher::Event::InitDone => return None,
    };
    (seen.as_ref() != current).then_some(seen)
}

/// What the one watch of this node's Node object keeps up to date.
pub struct NodeWatch {
    /// The node's identity: `None` until it is first seen and while it does not exist.
    pub identity: watch::Receiver<Option<NodeIdentity>>,
    /// Whether the Node carries the agent-not-ready taint: `None` until it is first seen.
    pub tainted: watch::Receiver<Option<bool>>,
    /// The Node's [`RUNTIME_LABEL`]: which OCI runtime it runs, where someone said so.
    pub runtime_label: watch::Receiver<Option<String>>,
    /// The watch; it runs until this is dropped.
    pub task: AbortOnDropHandle<()>,
}

/// Watches Node `name`.
pub fn watch_node(client: Client, name: &str) -> NodeWatch {
    let (identity_tx, identity) = watch::channel(None);
    let (tainted_tx, tainted) = watch::channel(None);
    let (runtime_tx, runtime_label) = watch::channel(None);
    let nodes = Api::<Node>::all(client);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let task = tokio::spawn(async move {
        let mut events = watcher(nodes, config).boxed();
        let mut retry = WatchRetry::new();
        while let Some(event) = events.next().await {
            match &event {
                Ok(event) => {
                    // Not in the `if let`: its temporaries (a read guard of the sender) would
                    // live through the body, and `send_replace` would wait on that guard
                    // forever.
                    let next = next_identity(identity_tx.borrow().as_ref(), event);
                    if let Some(next) = next {
                        info!(identity = ?next, "this node's identity");
                        identity_tx.send_replace(next);
                    }
                    if let watcher::Event::Apply(node) | watcher::Event::InitApply(node) = event {
                        // The label first: the agent's first pass reads it once the taint
                        // says the Node has been seen.
                        let label = node.labels().get(RUNTIME_LABEL).cloned();
                        runtime_tx.send_if_modified(|seen| {
                            let changed = *seen != label;
                            *seen = label;
                            changed
                        });
                        tainted_tx.send_if_modified(|seen| {
                            let now = Some(removal_patch(node).is_some());
                            std::mem::replace(seen, now) != now
                        });
                    }
                }
                Err(err) => warn!(%err, "watch of this node failed; retrying"),
            }
            retry.settle(&event).await;
        }
    });
    NodeWatch {
        identity,
        tainted,
        runtime_label,
        task: AbortOnDropHandle::new(task),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uid: &str) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some("node1".into());
        n.metadata.uid = Some(uid.into());
        n
    }

    fn id(uid: &str) -> NodeIdentity {
        NodeIdentity {
            name: "node1".into(),
            uid: uid.into(),
        }
    }

    #[test]
    fn first_sight_resolves_and_a_recreated_node_replaces_the_identity() {
        let first = next_identity(None, &watcher::Event::InitApply(node("u1")));
        assert_eq!(first, Some(Some(id("u1"))));
        assert_eq!(
            next_identity(Some(&id("u1")), &watcher::Event::Apply(node("u1"))),
            None,
            "an update of the same Node changes nothing"
        );
        assert_eq!(
            next_identity(Some(&id("u1")), &watcher::Event::Delete(node("u1"))),
            Some(None),
            "gone: nothing may be owned by it"
        );
        assert_eq!(
            next_identity(None, &watcher::Event::Apply(node("u2"))),
            Some(Some(id("u2"))),
            "re-registered with a new uid"
        );
        assert_eq!(next_identity(None, &watcher::Event::Init), None);
    }

    #[test]
    fn references_name_the_node_with_its_uid() {
        let owner = id("u1").owner_reference();
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Node", "u1"));
        let object = id("u1").object_reference();
        assert_eq!(object.uid.as_deref(), Some("u1"));
        assert_eq!(object.name.as_deref(), Some("node1"));
    }

    /// The first identity is published while the watch goes on: updating the channel does
    /// not wait on a borrow of it (which would block the worker thread for good).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_identity_and_the_taint_reach_the_receivers() {
        use http::{Method, StatusCode};
        use seccompd_runtime::apiserver::mock::mock_client;
        use serde_json::json;

        let (client, mut api) = mock_client();
        let NodeWatch {
            mut identity,
            mut tainted,
            runtime_label,
            task: _task,
        } = watch_node(client, "node1");
        api.expect(
            Method::GET,
            "/api/v1/nodes",
            &["fieldSelector=metadata.name%3Dnode1", "limit=500"],
            StatusCode::OK,
            json!({
                "apiVersion": "v1",
                "kind": "NodeList",
                "metadata": {"resourceVersion": "1"},
                "items": [{"apiVersion": "v1", "kind": "Node",
                           "metadata": {"name": "node1", "uid": "u1", "resourceVersion": "1",
                                        "labels": {"seccompd.dev/runtime": "runc-1.5.3"}},
                           "spec": {"taints": [{"key": "seccompd.dev/agent-not-ready", "effect": "NoSchedule"}]}}],
            }),
        )
        .await;
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            identity.wait_for(|id| id.is_some()),
        )
        .await
        .expect("the identity within 5 s")
        .expect("the sender lives");
        assert_eq!(*identity.borrow(), Some(id("u1")));
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tainted.wait_for(|t| t.is_some()),
        )
        .await
        .expect("the taint within 5 s")
        .expect("the sender lives");
        assert_eq!(*tainted.borrow(), Some(true));
        // Published before the taint, so that a reader woken by the taint finds it.
        assert_eq!(runtime_label.borrow().as_deref(), Some("runc-1.5.3"));
    }
}
