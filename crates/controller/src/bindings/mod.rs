//! SeccompProfileBinding statuses, written by the elected controller: from watches of the
//! bindings and of the profiles, each pass plans the bindings whose status no longer says what
//! their profile's does ([`decide`]) and writes those, at the pace the API server's flow
//! control allows (as the profile statuses are, `crate::status::writer`).
//! The bindings themselves are applied by the API server (the admission policies of the
//! install); nothing here touches a pod.

pub mod decide;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use thiserror::Error;
use tokio::sync::Notify;
use tracing::warn;

use self::decide::{BindingStatusWrite, plan};
use crate::status::plan::RetryDelays;
use seccompd_api::{SeccompProfile, SeccompProfileBinding, SeccompProfileStatus};
use seccompd_runtime::apiserver::{MAX_API_BACKOFF, api_backoff, reflect};

/// Field manager of binding statuses.
pub const BINDING_STATUS_MANAGER: &str = "seccompd-binding-status";

/// How long a pass waits after being woken, so that changes arriving together are planned
/// together.
const COALESCE: Duration = Duration::from_millis(50);

/// How long the writer waits, when nothing is due, before it looks again anyway.
const RESYNC: Duration = Duration::from_secs(300);

/// A binding status write that failed.
#[derive(Debug, Error)]
#[error("write the status of SeccompProfileBinding {namespace}/{name}: {source}")]
pub struct BindingStatusError {
    /// The binding's namespace.
    pub namespace: String,
    /// The binding's name.
    pub name: String,
    /// The client error.
    pub source: kube::Error,
}

/// Keeps what the planner reads of a binding: its spec, status and identity.
fn trim_binding(b: &mut SeccompProfileBinding) {
    b.metadata.managed_fields = None;
    b.metadata.annotations = None;
    b.metadata.labels = None;
}

/// Keeps what the planner reads of a profile: its name and status (the rules can be large).
fn trim_profile(p: &mut SeccompProfile) {
    p.metadata.managed_fields = None;
    p.metadata.annotations = None;
    p.spec.0.syscalls.clear();
}

/// Writes binding statuses until dropped (when the lease is lost, which also ends its
/// watches).
pub async fn write_binding_statuses(client: Client) {
    let wake = Arc::new(Notify::new());
    let (bindings, _bindings_watch) = reflect(
        Api::<SeccompProfileBinding>::all(client.clone()),
        watcher::Config::default(),
        trim_binding,
        wake.clone(),
    );
    let (profiles, _profiles_watch) = reflect(
        Api::<SeccompProfile>::all(client.clone()),
        watcher::Config::default(),
        trim_profile,
        wake.clone(),
    );
    if bindings.wait_until_ready().await.is_err() || profiles.wait_until_ready().await.is_err() {
        return;
    }
    let mut writer = Writer {
        client,
        settled: BTreeMap::new(),
        retries: None,
    };
    loop {
        let wait = writer.pass(&bindings, &profiles).await;
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        tokio::time::sleep(COALESCE).await;
    }
}

/// What the writer remembers between passes.
struct Writer {
    client: Client,
    /// By binding uid: the resourceVersion a written status was decided from (see
    /// [`plan`]).
    settled: BTreeMap<String, String>,
    /// The pauses before the next pass while writes keep failing.
    retries: Option<RetryDelays>,
}

impl Writer {
    /// Plans and sends the writes due now; returns how long to wait for the next pass when
    /// nothing wakes the writer before.
    async fn pass(
        &mut self,
        bindings: &Store<SeccompProfileBinding>,
        profiles: &Store<SeccompProfile>,
    ) -> Duration {
        let bindings = bindings.state();
        self.settled
            .retain(|uid, _| bindings.iter().any(|b| b.uid().as_deref() == Some(uid)));
        let profiles: BTreeMap<String, Option<SeccompProfileStatus>> = profiles
            .state()
            .iter()
            .map(|p| (p.name_any(), p.status.clone()))
            .collect();
        let stamp = Time(k8s_openapi::jiff::Timestamp::now());
        let bindings: Vec<&SeccompProfileBinding> = bindings.iter().map(Arc::as_ref).collect();
        let writes = plan(&bindings, &profiles, &self.settled, &stamp);
        let mut failed = false;
        for write in writes {
            let decided_from = bindings
                .iter()
                .find(|b| b.uid().as_deref() == Some(&write.uid))
                .and_then(|b| b.resource_version());
            match send(&self.client, &write).await {
                Ok(()) => {
                    if let Some(version) = decided_from {
                        self.settled.insert(write.uid.clone(), version);
                    }
                }
                Err(err) => {
                    warn!(%err, "binding status not written; retrying");
                    failed = true;
                }
            }
        }
        if failed {
            let retries = self.retries.get_or_insert_with(|| Box::new(api_backoff()));
            retries.next().unwrap_or(MAX_API_BACKOFF)
        } else {
            self.retries = None;
            RESYNC
        }
    }
}

/// Applies `write`'s status with server-side apply, to the binding of that uid only.
async fn send(client: &Client, write: &BindingStatusWrite) -> Result<(), BindingStatusError> {
    let api = Api::<SeccompProfileBinding>::namespaced(client.clone(), &write.namespace);
    let body = json!({
        "apiVersion": SeccompProfileBinding::api_version(&()),
        "kind": SeccompProfileBinding::kind(&()),
        "metadata": {"name": write.name, "namespace": write.namespace, "uid": write.uid},
        "status": write.status,
    });
    api.patch_status(
        &write.name,
        &PatchParams::apply(BINDING_STATUS_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| BindingStatusError {
        namespace: write.namespace.clone(),
        name: write.name.clone(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests;
