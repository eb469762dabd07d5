//! Writes this node's SeccompNodeReport, only when its content changes, from a task of its
//! own: the loop hands over the latest report and never waits for the API server, so files
//! are kept right through an API outage.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde_json::json;
use tokio::sync::watch;
use tracing::warn;

use super::AgentError;
use super::node_ref::NodeRef;
use crate::api::{SeccompNodeReport, SeccompNodeReportSpec};
use crate::apiserver::{MAX_API_BACKOFF, api_backoff};
use crate::profile::render::ContentHash;
use crate::telemetry::Metrics;

/// Field manager of the agent's writes.
pub const AGENT_MANAGER: &str = "seccompd-agent";

/// Starts the publisher of node `node_name`'s report; send it each new report. Only the
/// latest one matters: a report superseded while the API is unreachable is never sent.
pub fn spawn(
    client: Client,
    node_name: &str,
    metrics: Arc<Metrics>,
) -> watch::Sender<Option<SeccompNodeReportSpec>> {
    let (tx, rx) = watch::channel(None);
    let publisher = ReportPublisher::new(client, node_name);
    tokio::spawn(publish_latest(publisher, rx, metrics));
    tx
}

async fn publish_latest(
    mut publisher: ReportPublisher,
    mut reports: watch::Receiver<Option<SeccompNodeReportSpec>>,
    metrics: Arc<Metrics>,
) {
    while reports.changed().await.is_ok() {
        let mut backoff = api_backoff();
        loop {
            let Some(spec) = reports.borrow_and_update().clone() else {
                break;
            };
            match publisher.publish(spec).await {
                Ok(()) => break,
                Err(err) => {
                    warn!(%err, "cannot publish the node report; retrying");
                    metrics.record_api_error();
                }
            }
            // Retry after the backoff, or at once with a newer report.
            let pause = backoff.next().unwrap_or(MAX_API_BACKOFF);
            tokio::select! {
                changed = reports.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The content hashes of node `node_name`'s last report, by profile: what the agent had
/// installed or kept before it (re)started. Empty when there is no report or the API does not
/// answer within a few seconds; the agent then simply learns nothing from it.
pub async fn reported_hashes(client: &Client, node_name: &str) -> BTreeMap<String, ContentHash> {
    let api: Api<SeccompNodeReport> = Api::all(client.clone());
    let report = match tokio::time::timeout(Duration::from_secs(5), api.get_opt(node_name)).await {
        Ok(Ok(Some(report))) => report,
        Ok(Ok(None)) => return BTreeMap::new(),
        Ok(Err(err)) => {
            warn!(%err, "cannot read this node's last report");
            return BTreeMap::new();
        }
        Err(_) => {
            warn!("no answer reading this node's last report");
            return BTreeMap::new();
        }
    };
    report
        .spec
        .profiles
        .into_iter()
        .filter_map(|p| Some((p.name, p.content_hash?)))
        .collect()
}

/// Publishes one node's report, owned by its Node so that it goes when the node goes.
pub struct ReportPublisher {
    api: Api<SeccompNodeReport>,
    node: NodeRef,
    last: Option<SeccompNodeReportSpec>,
}

impl ReportPublisher {
    /// Prepares to publish the report of `node_name`.
    pub fn new(client: Client, node_name: &str) -> Self {
        Self {
            api: Api::all(client.clone()),
            node: NodeRef::new(client, node_name),
            last: None,
        }
    }

    /// Applies `spec` unless it equals what was last applied.
    pub async fn publish(&mut self, spec: SeccompNodeReportSpec) -> Result<(), AgentError> {
        if self.last.as_ref() == Some(&spec) {
            return Ok(());
        }
        let owner = self.node.owner().await?;
        let name = self.node.name().to_string();
        let body = json!({
            "apiVersion": SeccompNodeReport::api_version(&()),
            "kind": SeccompNodeReport::kind(&()),
            "metadata": { "name": name, "ownerReferences": [owner] },
            "spec": spec,
        });
        self.api
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
        self.last = Some(spec);
        Ok(())
    }
}
