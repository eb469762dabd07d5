//! This node's identity in the API (its uid), looked up once, for owner references and for
//! events about the node.

use k8s_openapi::api::core::v1::{Node, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Api, Client, Resource};

use super::AgentError;

/// The Node object the agent runs on.
pub struct NodeRef {
    nodes: Api<Node>,
    name: String,
    uid: Option<String>,
}

impl NodeRef {
    /// Refers to node `name`; nothing is fetched yet.
    pub fn new(client: Client, name: &str) -> Self {
        Self {
            nodes: Api::all(client),
            name: name.into(),
            uid: None,
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's uid, fetched on first use.
    pub async fn uid(&mut self) -> Result<String, AgentError> {
        if let Some(uid) = &self.uid {
            return Ok(uid.clone());
        }
        let node = self
            .nodes
            .get(&self.name)
            .await
            .map_err(|source| AgentError::Kube {
                context: format!("get node {}", self.name),
                source,
            })?;
        let uid = node.meta().uid.clone().unwrap_or_default();
        self.uid = Some(uid.clone());
        Ok(uid)
    }

    /// An owner reference to the node, so that what it owns goes when the node goes.
    pub async fn owner(&mut self) -> Result<OwnerReference, AgentError> {
        Ok(OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: self.name.clone(),
            uid: self.uid().await?,
            ..Default::default()
        })
    }

    /// A reference to the node, for events about it.
    pub async fn object_ref(&mut self) -> Result<ObjectReference, AgentError> {
        Ok(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(self.name.clone()),
            uid: Some(self.uid().await?),
            ..Default::default()
        })
    }
}
