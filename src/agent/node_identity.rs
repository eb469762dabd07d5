//! This node as the API knows it: its name and the uid of its current Node object, for owner
//! references and for events about the node. Resolved once by a watch of the Node, and
//! replaced when the Node is recreated (a node that re-registers gets a new uid, and what the
//! old one owned is garbage-collected).

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher;
use kube::{Client, Resource};
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;
use tracing::{info, warn};

use crate::apiserver::watch_retry::WatchRetry;

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
    event: &watcher::Event<PartialObjectMeta<Node>>,
) -> Option<Option<NodeIdentity>> {
    let seen = match event {
        watcher::Event::Apply(node) | watcher::Event::InitApply(node) => NodeIdentity::of(node),
        watcher::Event::Delete(_) => None,
        watcher::Event::Init | watcher::Event::InitDone => return None,
    };
    (seen.as_ref() != current).then_some(seen)
}

/// Watches Node `name` (its metadata only) and keeps the returned receiver at its identity:
/// `None` until it is first seen and while it does not exist. The watch runs until the
/// returned task is dropped.
pub fn watch_identity(
    client: Client,
    name: &str,
) -> (watch::Receiver<Option<NodeIdentity>>, AbortOnDropHandle<()>) {
    let (tx, rx) = watch::channel(None);
    let nodes = Api::<PartialObjectMeta<Node>>::all(client);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let task = tokio::spawn(async move {
        let mut events = watcher(nodes, config).boxed();
        let mut retry = WatchRetry::new();
        while let Some(event) = events.next().await {
            match &event {
                Ok(event) => {
                    // Not in the `if let`: its temporaries (a read guard of `tx`) would live
                    // through the body, and `send_replace` would wait on that guard forever.
                    let next = next_identity(tx.borrow().as_ref(), event);
                    if let Some(next) = next {
                        info!(identity = ?next, "this node's identity");
                        tx.send_replace(next);
                    }
                }
                Err(err) => warn!(%err, "watch of this node failed; retrying"),
            }
            retry.settle(&event).await;
        }
    });
    (rx, AbortOnDropHandle::new(task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uid: &str) -> PartialObjectMeta<Node> {
        let mut n = PartialObjectMeta::<Node>::default();
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
}
