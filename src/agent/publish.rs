//! Writes this node's SeccompNodeReport, only when its content changes.

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde_json::json;

use super::AgentError;
use crate::api::{SeccompNodeReport, SeccompNodeReportSpec};

/// Field manager of the agent's writes.
pub const AGENT_MANAGER: &str = "seccompd-agent";

/// Publishes one node's report, owned by its Node so that it goes when the node goes.
pub struct ReportPublisher {
    api: Api<SeccompNodeReport>,
    nodes: Api<Node>,
    node_name: String,
    owner: Option<OwnerReference>,
    last: Option<SeccompNodeReportSpec>,
}

impl ReportPublisher {
    /// Prepares to publish the report of `node_name`.
    pub fn new(client: Client, node_name: &str) -> Self {
        Self {
            api: Api::all(client.clone()),
            nodes: Api::all(client),
            node_name: node_name.into(),
            owner: None,
            last: None,
        }
    }

    /// Applies `spec` unless it equals what was last applied.
    pub async fn publish(&mut self, spec: SeccompNodeReportSpec) -> Result<(), AgentError> {
        if self.last.as_ref() == Some(&spec) {
            return Ok(());
        }
        let owner = self.owner().await?;
        let body = json!({
            "apiVersion": SeccompNodeReport::api_version(&()),
            "kind": SeccompNodeReport::kind(&()),
            "metadata": { "name": self.node_name, "ownerReferences": [owner] },
            "spec": spec,
        });
        self.api
            .patch(
                &self.node_name,
                &PatchParams::apply(AGENT_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| AgentError::Kube {
                context: format!("apply SeccompNodeReport {}", self.node_name),
                source,
            })?;
        self.last = Some(spec);
        Ok(())
    }
}

impl ReportPublisher {
    /// The owner reference to this node, looked up once.
    async fn owner(&mut self) -> Result<OwnerReference, AgentError> {
        if let Some(owner) = &self.owner {
            return Ok(owner.clone());
        }
        let node = self
            .nodes
            .get(&self.node_name)
            .await
            .map_err(|source| AgentError::Kube {
                context: format!("get node {}", self.node_name),
                source,
            })?;
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: self.node_name.clone(),
            uid: node.meta().uid.clone().unwrap_or_default(),
            ..Default::default()
        };
        self.owner = Some(owner.clone());
        Ok(owner)
    }
}
