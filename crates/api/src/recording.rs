//! The `SeccompProfileRecording` custom resource: which pods to record and which
//! SeccompProfile to write from their calls, and the recorders' progress.

// Several print columns share `type_ = "string"`, which this lint mistakes for a repeat.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use seccompd_profile::limits::{MAX_PROFILE_NAME_LEN, MAX_REASON_LEN, RECORD_PROFILE};
use seccompd_profile::model::Arch;

/// `spec.profileName` names a SeccompProfile that can exist.
pub(crate) fn profile_name_rule() -> kube::core::Rule {
    kube::core::Rule::new(format!(
        "self.spec.profileName != '{RECORD_PROFILE}' && self.spec.profileName.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')"
    ))
    .message(kube::core::Message::Message(format!(
        "spec.profileName must be a SeccompProfile name: lowercase letters, digits, '-' and '.', at most {MAX_PROFILE_NAME_LEN} characters, and not '{RECORD_PROFILE}' (the built-in recording profile)"
    )))
}

/// Records the system calls of the pods `podSelector` selects in this namespace, and writes
/// them as the SeccompProfile `profileName` (created or replaced) once every selected pod has
/// finished, or once `done` is set.
///
/// Needs the recorder (an opt-in DaemonSet; see the README). The recorded pods must run under
/// the built-in profile that logs every call:
/// `securityContext.seccompProfile: {type: Localhost, localhostProfile: seccompd/record.json}`.
/// The recorder notes the calls of every container on its node that runs under that profile,
/// so the recording may come before or after its pods, as long as the recorder ran while they
/// did.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccompd.dev",
    version = "v1alpha1",
    kind = "SeccompProfileRecording",
    namespaced,
    shortname = "scpr",
    category = "seccompd",
    status = "SeccompProfileRecordingStatus",
    validation = profile_name_rule(),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Recording, Completed or Failed"
    ),
    printcolumn(
        name = "Profile",
        type_ = "string",
        json_path = ".spec.profileName",
        description = "The SeccompProfile the recording writes"
    ),
    printcolumn(
        name = "Pods",
        type_ = "integer",
        json_path = ".status.podsSeen",
        description = "Selected pods seen running"
    ),
    printcolumn(
        name = "Calls",
        type_ = "integer",
        json_path = ".status.callsRecorded",
        description = "Distinct system calls recorded"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfileRecordingSpec {
    /// The pods to record, by their labels, in the recording's namespace. An empty selector
    /// selects every pod of the namespace.
    pub pod_selector: LabelSelector,

    /// The SeccompProfile (cluster-scoped) to write the recorded calls to: created, or
    /// replaced if it exists. Its pods then use `seccompd/<profileName>.json`.
    #[schemars(length(min = 1, max = MAX_PROFILE_NAME_LEN))]
    pub profile_name: String,

    /// Record only these containers of the selected pods, by name (init containers
    /// included); empty records every container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,

    /// Set to true to end the recording now, with what has been recorded so far, instead
    /// of waiting for every selected pod to finish (for long-running workloads).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
}

impl SeccompProfileRecording {
    /// Whether the recording has ended (Completed or Failed): no recorder writes its part and
    /// the controller decides it no more.
    pub fn is_over(&self) -> bool {
        matches!(
            self.status.as_ref().and_then(|s| s.phase),
            Some(RecordingPhase::Completed | RecordingPhase::Failed)
        )
    }
}

/// What the recorders have seen so far, and the result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfileRecordingStatus {
    /// Recording (waiting for the selected pods to finish, or for `done`), Completed (the
    /// profile is written) or Failed (see `message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RecordingPhase>,

    /// Selected pods the recorders have seen, over all nodes.
    #[serde(default)]
    pub pods_seen: u32,

    /// Distinct system calls recorded, over all pods and nodes.
    #[serde(default)]
    pub calls_recorded: u32,

    /// The SeccompProfile written, once Completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,

    /// Audit records the recording may have missed, over all nodes: records the kernel
    /// dropped while it ran (its `audit_lost` counter, which counts records of any kind),
    /// records the recorder's socket could not hold, and processes that ended before the
    /// recorder could tell which container they were in. Above zero, the profile may lack
    /// calls: record again.
    #[serde(default)]
    pub lost_records: u64,

    /// Why the recording failed, or what to watch out for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// Each node's part, written by that node's recorder; the calls of all of them make the
    /// profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["nodeName"]))]
    pub nodes: Vec<NodeRecording>,
}

/// The phase of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RecordingPhase {
    /// Calls are being recorded.
    Recording,
    /// The profile is written.
    Completed,
    /// Nothing was written; `message` says why.
    Failed,
}

/// One node's part of a recording.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecording {
    /// The node.
    pub node_name: String,

    /// The selected pods seen on this node, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,

    /// The calls recorded on this node, by ABI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<AbiCalls>,

    /// True once this node's part is final: every selected pod on it has ended (or the
    /// recording is done) and its calls are all listed.
    #[serde(default)]
    pub finished: bool,

    /// Audit records this node may have missed (see the status's `lostRecords`).
    #[serde(default)]
    pub lost_records: u64,

    /// The node's native ABI: the recorded profile is written for it (and the other ABIs its
    /// calls were made through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Arch>,

    /// Why this node's recorder cannot hear the kernel's audit records (it is not in the
    /// host's initial network namespace, or the kernel's audit is off): the calls of the
    /// selected pods on this node cannot be recorded, and the recording fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_REASON_LEN))]
    pub audit_unavailable: Option<String>,
}

/// The calls made through one ABI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbiCalls {
    /// The ABI.
    pub arch: Arch,
    /// The system calls' names, sorted.
    pub names: Vec<String>,
}
