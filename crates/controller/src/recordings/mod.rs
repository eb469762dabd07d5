//! Recording outcomes, decided once, by the elected controller: from watches of the
//! recordings, of the profiles' metadata and (while any recording is active) of the pods, it
//! decides each active recording ([`decide`]) whenever one of them changes, writes the
//! recorded SeccompProfile when the recording completes, and the recording's outcome. The
//! node recorders only write their own node's part; no one polls.

pub mod decide;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::Store;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use thiserror::Error;
use tokio::sync::Notify;
use tracing::{info, warn};

use self::decide::{
    Decision, ProfileTarget, ProfileWrite, RECORDED_BY, RECORDING_UID, RecordingFacts, SelectedPod,
    decide,
};
use seccompd_api::{
    RecordingPhase, SeccompProfile, SeccompProfileRecording, SeccompProfileRecordingStatus,
    SeccompProfileSpec,
};
use seccompd_profile::model::{Arch, ProfileSpec};
use seccompd_recording::part::{PodView, Selection, trim_pod};
use seccompd_runtime::apiserver::{MAX_API_BACKOFF, WatchTask, api_backoff, reflect};

/// Field manager of the outcomes and of the recorded profiles.
pub const OUTCOME_MANAGER: &str = "seccompd-recording-decider";

/// How long a pass waits after being woken, so that changes arriving together are decided
/// together.
const COALESCE: Duration = Duration::from_millis(50);

/// How long a pass with nothing failed waits for a change before deciding again anyway (the
/// watches wake it on every change; this only bounds how long a missed wake could last).
const RESYNC: Duration = Duration::from_secs(300);

/// Failures of one recording's writes.
#[derive(Debug, Error)]
pub enum RecordingError {
    /// Writing the recorded profile failed.
    #[error("write SeccompProfile {name} for recording {recording}: {source}")]
    Profile {
        /// The profile.
        name: String,
        /// The recording, `<namespace>/<name>`.
        recording: String,
        /// The client error.
        source: kube::Error,
    },
    /// Writing the recording's outcome failed.
    #[error("write the status of recording {recording}: {source}")]
    Status {
        /// The recording, `<namespace>/<name>`.
        recording: String,
        /// The client error.
        source: kube::Error,
    },
    /// An object could not be serialized.
    #[error("serialize {what}: {source}")]
    Serialize {
        /// What.
        what: &'static str,
        /// Why.
        source: serde_json::Error,
    },
}

/// Keeps what the decider reads of a recording.
fn trim_recording(r: &mut SeccompProfileRecording) {
    r.metadata.managed_fields = None;
    r.metadata.annotations = None;
}

/// Keeps what the decider reads of a profile: its name, version and recording uid.
fn trim_profile(p: &mut PartialObjectMeta<SeccompProfile>) {
    p.metadata.managed_fields = None;
    p.metadata.labels = None;
    if let Some(annotations) = p.metadata.annotations.as_mut() {
        annotations.retain(|k, _| k == RECORDING_UID);
    }
}

/// Decides recordings until dropped (when the lease is lost, which also ends its watches).
/// `fallback_arch` is this controller's ABI, for parts of recorders that do not name theirs.
pub async fn decide_recordings(client: Client, fallback_arch: Arch) {
    let wake = Arc::new(Notify::new());
    let (recordings, _recordings_watch) = reflect(
        Api::<SeccompProfileRecording>::all(client.clone()),
        watcher::Config::default(),
        trim_recording,
        wake.clone(),
    );
    let (profiles, _profiles_watch) = reflect(
        Api::<PartialObjectMeta<SeccompProfile>>::all(client.clone()),
        watcher::Config::default(),
        trim_profile,
        wake.clone(),
    );
    if recordings.wait_until_ready().await.is_err() || profiles.wait_until_ready().await.is_err() {
        return;
    }
    let mut decider = Decider {
        client,
        fallback_arch,
        written_from: HashMap::new(),
    };
    // The pods are watched only while some recording is active.
    let mut pods: Option<(Store<Pod>, WatchTask)> = None;
    // A failed write is tried again after the API pauses that every other caller uses, which
    // grow while the failure lasts (an API server that refuses writes is not hammered).
    let mut retry_pauses = api_backoff();
    loop {
        let active = active(&recordings);
        decider
            .written_from
            .retain(|uid, _| active.iter().any(|r| r.uid().as_deref() == Some(uid)));
        let mut failed = false;
        if active.is_empty() {
            pods = None;
        } else {
            if pods.is_none() {
                let (store, task) = reflect(
                    Api::<Pod>::all(decider.client.clone()),
                    watcher::Config::default(),
                    trim_pod,
                    wake.clone(),
                );
                if store.wait_until_ready().await.is_err() {
                    return;
                }
                pods = Some((store, task));
            }
            if let Some((store, _)) = &pods {
                for rec in &active {
                    if let Err(err) = decider.decide_one(rec, store, &profiles).await {
                        warn!(%err, "recording outcome not written; retrying");
                        failed = true;
                    }
                }
            }
        }
        let wait = if failed {
            retry_pauses.next().unwrap_or(MAX_API_BACKOFF)
        } else {
            retry_pauses.reset();
            RESYNC
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        tokio::time::sleep(COALESCE).await;
    }
}

/// The recordings not yet Completed or Failed.
fn active(recordings: &Store<SeccompProfileRecording>) -> Vec<Arc<SeccompProfileRecording>> {
    recordings
        .state()
        .into_iter()
        .filter(|r| !r.is_over())
        .collect()
}

/// The pods `selection` selects, from the pod cache.
fn selected_pods(pods: &Store<Pod>, selection: &Selection) -> Vec<SelectedPod> {
    pods.state()
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            selection.selects(&p.namespace().unwrap_or_default(), &labels)
        })
        .map(|p| SelectedPod {
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            ended: PodView::of(p).is_some_and(|v| v.ended),
        })
        .collect()
}

/// What the profile cache says of `name`.
fn target(profiles: &Store<PartialObjectMeta<SeccompProfile>>, name: &str) -> ProfileTarget {
    match profiles.state().into_iter().find(|p| p.name_any() == name) {
        None => ProfileTarget::Absent,
        Some(p) => ProfileTarget::Present {
            recording_uid: p.annotations().get(RECORDING_UID).cloned(),
            resource_version: p.resource_version(),
        },
    }
}

struct Decider {
    client: Client,
    fallback_arch: Arch,
    /// By recording uid: the resourceVersion an outcome was last written over. Until the
    /// cache has a newer one, deciding again would only repeat the write (and fail its
    /// precondition).
    written_from: HashMap<String, String>,
}

impl Decider {
    async fn decide_one(
        &mut self,
        rec: &SeccompProfileRecording,
        pods: &Store<Pod>,
        profiles: &Store<PartialObjectMeta<SeccompProfile>>,
    ) -> Result<(), RecordingError> {
        let (Some(uid), Some(namespace)) = (rec.uid(), rec.namespace()) else {
            return Ok(());
        };
        if rec.resource_version().is_some()
            && self.written_from.get(&uid) == rec.resource_version().as_ref()
        {
            return Ok(());
        }
        let current = rec.status.clone().unwrap_or_default();
        let decision = match Selection::new(&namespace, &rec.spec) {
            Ok(selection) => {
                let pods = selected_pods(pods, &selection);
                let target = target(profiles, &rec.spec.profile_name);
                decide(&RecordingFacts {
                    uid: &uid,
                    profile_name: &rec.spec.profile_name,
                    done: rec.spec.done,
                    parts: &current.nodes,
                    pods: &pods,
                    target: &target,
                    fallback_arch: self.fallback_arch,
                })
            }
            Err(message) => Decision {
                status: SeccompProfileRecordingStatus {
                    phase: Some(RecordingPhase::Failed),
                    message: Some(message),
                    ..Default::default()
                },
                profile: None,
            },
        };
        if let Some(write) = decision.profile {
            write_profile(&self.client, rec, &uid, write).await?;
            info!(recording = %rec.name_any(), %namespace, profile = %rec.spec.profile_name, calls = decision.status.calls_recorded, "recorded profile written");
        }
        let mut without_parts = current;
        without_parts.nodes.clear();
        if without_parts != decision.status {
            write_outcome(&self.client, rec, &decision.status).await?;
            if let Some(version) = rec.resource_version() {
                self.written_from.insert(uid, version);
            }
        }
        Ok(())
    }
}

fn recording_key(rec: &SeccompProfileRecording) -> String {
    format!("{}/{}", rec.namespace().unwrap_or_default(), rec.name_any())
}

/// Creates the recorded profile, or updates the one this recording created over the version
/// decided from. A profile created meanwhile by someone else makes the create fail
/// (AlreadyExists); the next pass then sees it and fails the recording.
async fn write_profile(
    client: &Client,
    rec: &SeccompProfileRecording,
    uid: &str,
    write: ProfileWrite,
) -> Result<(), RecordingError> {
    let name = rec.spec.profile_name.clone();
    let api = Api::<SeccompProfile>::all(client.clone());
    let failed = |source| RecordingError::Profile {
        name: name.clone(),
        recording: recording_key(rec),
        source,
    };
    let (spec, resource_version) = match write {
        ProfileWrite::Create(spec) => {
            let profile = recorded_profile(rec, uid, spec, None);
            let params = PostParams {
                field_manager: Some(OUTCOME_MANAGER.to_string()),
                ..Default::default()
            };
            api.create(&params, &profile).await.map_err(failed)?;
            return Ok(());
        }
        ProfileWrite::Update {
            spec,
            resource_version,
        } => (spec, resource_version),
    };
    let profile = recorded_profile(rec, uid, spec, resource_version);
    let mut body = serde_json::to_value(&profile).map_err(|source| RecordingError::Serialize {
        what: "the recorded profile",
        source,
    })?;
    body["apiVersion"] = json!(SeccompProfile::api_version(&()));
    body["kind"] = json!(SeccompProfile::kind(&()));
    api.patch(
        &name,
        &PatchParams::apply(OUTCOME_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(failed)?;
    Ok(())
}

/// The SeccompProfile a recording writes: its spec, and the annotations that say which
/// recording it belongs to.
fn recorded_profile(
    rec: &SeccompProfileRecording,
    uid: &str,
    spec: ProfileSpec,
    resource_version: Option<String>,
) -> SeccompProfile {
    let mut profile = SeccompProfile::new(&rec.spec.profile_name, SeccompProfileSpec(spec));
    profile.metadata.annotations = Some(
        [
            (RECORDING_UID.to_string(), uid.to_string()),
            (RECORDED_BY.to_string(), recording_key(rec)),
        ]
        .into(),
    );
    profile.metadata.resource_version = resource_version;
    profile
}

/// Writes the outcome, only over the status it was decided from (the resourceVersion is a
/// precondition) and only to this recording (its uid is one too).
async fn write_outcome(
    client: &Client,
    decided_from: &SeccompProfileRecording,
    status: &SeccompProfileRecordingStatus,
) -> Result<(), RecordingError> {
    let namespace = decided_from.namespace().unwrap_or_default();
    let api = Api::<SeccompProfileRecording>::namespaced(client.clone(), &namespace);
    let mut body = json!({
        "apiVersion": SeccompProfileRecording::api_version(&()),
        "kind": SeccompProfileRecording::kind(&()),
        "metadata": {
            "name": decided_from.name_any(),
            "namespace": namespace,
            "uid": decided_from.uid(),
            "resourceVersion": decided_from.resource_version(),
        },
    });
    body["status"] = serde_json::to_value(status).map_err(|source| RecordingError::Serialize {
        what: "the recording's outcome",
        source,
    })?;
    api.patch_status(
        &decided_from.name_any(),
        &PatchParams::apply(OUTCOME_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(|source| RecordingError::Status {
        recording: recording_key(decided_from),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests;
