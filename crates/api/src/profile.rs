//! The `SeccompProfile` custom resource: what users apply, and the cluster-wide status the
//! elected status writer writes back.

// Several print columns share `type_ = "string"`, which this lint mistakes for a repeat.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use seccompd_profile::limits::{
    DEFAULT_PROFILE, MAX_FLOOR_NAME_LEN, MAX_LISTED_NODES, MAX_NODE_NAME_LEN, MAX_PROFILE_NAME_LEN,
    MAX_REASON_LEN, MAX_REPORT_FLOORS, MAX_WARNING_LEN, RECORD_PROFILE,
};
use seccompd_profile::model::{Mode, ProfileSpec};
use seccompd_profile::render::ContentHash;

/// `metadata.name` is at most [`MAX_PROFILE_NAME_LEN`] characters, so that the node's file
/// `<name>.json` fits a file name.
fn name_rule() -> kube::core::Rule {
    let message = format!(
        "metadata.name may have at most {MAX_PROFILE_NAME_LEN} characters, so that the node's file <name>.json fits a file name: shorten it"
    );
    kube::core::Rule::new(format!(
        "size(self.metadata.name) <= {MAX_PROFILE_NAME_LEN}"
    ))
    .message(kube::core::Message::Message(message))
}

/// `metadata.name` is not the built-in recording profile's, whose file every agent installs.
fn reserved_name_rule() -> kube::core::Rule {
    kube::core::Rule::new(format!("self.metadata.name != '{RECORD_PROFILE}'")).message(
        kube::core::Message::Message(format!(
            "metadata.name '{RECORD_PROFILE}' is reserved: seccompd installs its built-in recording profile as seccompd/{RECORD_PROFILE}.json on every node; choose another name"
        )),
    )
}

/// `metadata.name` is not the built-in default profile's, whose file every agent installs.
fn default_name_rule() -> kube::core::Rule {
    kube::core::Rule::new(format!("self.metadata.name != '{DEFAULT_PROFILE}'")).message(
        kube::core::Message::Message(format!(
            "metadata.name '{DEFAULT_PROFILE}' is reserved: seccompd installs its built-in default profile (Docker's default with the SeccompFloors) as seccompd/{DEFAULT_PROFILE}.json on every node; choose another name"
        )),
    )
}

/// A seccomp profile that seccompd installs on every node as
/// `<kubelet root>/seccomp/seccompd/<name>.json`. Reference it from a pod with
/// `securityContext.seccompProfile: {type: Localhost, localhostProfile: seccompd/<name>.json}`.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccompd.dev",
    version = "v1alpha1",
    kind = "SeccompProfile",
    shortname = "scp",
    category = "seccompd",
    status = "SeccompProfileStatus",
    validation = name_rule(),
    validation = reserved_name_rule(),
    validation = default_name_rule(),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.phase",
        description = "Installed, Pending, Partial, Invalid or Error"
    ),
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".status.mode",
        description = "The mode the nodes run: Enforce, Audit (what the profile would refuse is only logged), or Audit->Enforce / Enforce->Audit while a switch rolls out"
    ),
    printcolumn(
        name = "Installed",
        type_ = "string",
        json_path = ".status.installed",
        description = "Nodes with the current version / all nodes"
    ),
    printcolumn(
        name = "Denials",
        type_ = "string",
        json_path = ".status.denials.summary",
        description = "Calls the profile refused or, in Audit mode, would refuse (from the nodes' recorders)"
    ),
    printcolumn(
        name = "Profile",
        type_ = "string",
        json_path = ".status.localhostProfile",
        description = "The localhostProfile value to use in a pod"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(transparent)]
#[schemars(transform = crate::profile_rules::add_to_spec)]
pub struct SeccompProfileSpec(pub ProfileSpec);

/// What the cluster knows about a SeccompProfile, summarized from every node's report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfileStatus {
    /// Installed (every node has the current version), Pending (no node has it yet),
    /// Partial (some nodes have it; `nodes` names the others and why, e.g. a node whose
    /// runtime refuses the profile), Invalid (the profile was rejected and no node has it; see
    /// conditions and nodes) or Error (nodes failed to install it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Nodes with the current version over all nodes, as `n/m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,

    /// The mode the nodes run this profile in (the schema takes its description from
    /// [`ModeInForce`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ModeInForce>,

    /// Number of nodes with the current version.
    #[serde(default)]
    pub installed_nodes: u32,

    /// Number of nodes in the cluster.
    #[serde(default)]
    pub total_nodes: u32,

    /// The value for a pod's `securityContext.seccompProfile.localhostProfile`:
    /// `seccompd/<name>.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,

    /// sha256 of the file content the current spec renders to; nodes report the hash they
    /// installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<ContentHash>,

    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Standard conditions. `Ready` is True when every node has the current version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The nodes that do not have the current version, and why (a bounded number are listed;
    /// `omittedNodes` counts the rest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LISTED_NODES))]
    pub nodes: Vec<NodeProblem>,

    /// How many further nodes lack the current version beyond those listed in `nodes`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_nodes: u32,

    /// What nodes warn of the current version: what their runtime or seccomp library does with
    /// this profile, which nodes with another runtime may not (for example runc 1.5 calls statx
    /// after loading the filter, so no container starts under an allowlist without it on such
    /// a node). The profile is installed all the same. A bounded number of nodes are listed;
    /// `omittedWarnings` counts the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LISTED_NODES))]
    pub warnings: Vec<NodeWarning>,

    /// How many further nodes warn of the current version beyond those listed in `warnings`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_warnings: u32,

    /// The SeccompFloors merged into the current version (those that do not exempt this
    /// profile), by name: a node that has the current version carries their rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_REPORT_FLOORS), inner(length(max = MAX_FLOOR_NAME_LEN)))]
    pub floors: Vec<String>,
    /// The calls this profile refused, or in Audit mode would have refused, as the nodes'
    /// recorders counted them from the kernel's audit records (absent without a recorder, or
    /// while nothing was counted). Written by the controller from every node's
    /// SeccompDenialReport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denials: Option<crate::denials::ProfileDenials>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Type of the condition that says whether every node has the current version.
pub const CONDITION_READY: &str = "Ready";

/// Summary state of a profile across the cluster; also the `reason` of its Ready condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Every node has the current version.
    Installed,
    /// No node has reported the current version yet.
    Pending,
    /// Some nodes have the current version, others not yet.
    Partial,
    /// The profile was rejected; nothing new is installed until it is fixed.
    Invalid,
    /// At least one node failed to install the current version.
    Error,
}

impl Phase {
    /// The phase as written in the API: `status.phase` and the Ready condition's `reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Installed => "Installed",
            Phase::Pending => "Pending",
            Phase::Partial => "Partial",
            Phase::Invalid => "Invalid",
            Phase::Error => "Error",
        }
    }
}

/// The mode the nodes run this profile in. `Enforce` or `Audit`: `spec.mode` of the
/// generation this status describes (`observedGeneration`), once every node has installed that
/// version (`installed` is `n/n`) or while the mode has not changed. While a change of
/// `spec.mode` rolls out, `Audit->Enforce` or `Enforce->Audit`: the nodes with the current
/// version (`installed` counts them) run the new mode, and the others may still run the old
/// one, since a node keeps its last valid file until it installs the new version (a node that
/// refuses the new version keeps the old file: `nodes` names it and why). It stays so until
/// every node has the current version, also when the mode is switched back meanwhile. Running
/// containers keep the filter they started with, whatever it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ModeInForce {
    /// The nodes that have the profile enforce it.
    Enforce,
    /// The nodes that have the profile run it in Audit mode: what it would refuse is logged.
    Audit,
    /// A switch to Enforce rolls out: the nodes with the current version enforce the profile,
    /// the others may still run it in Audit mode.
    #[serde(rename = "Audit->Enforce")]
    AuditToEnforce,
    /// A switch to Audit rolls out: the nodes with the current version run the profile in
    /// Audit mode, the others may still enforce it.
    #[serde(rename = "Enforce->Audit")]
    EnforceToAudit,
}

impl ModeInForce {
    /// Every node that has the profile runs it in `mode`.
    pub fn settled(mode: Mode) -> Self {
        match mode {
            Mode::Enforce => Self::Enforce,
            Mode::Audit => Self::Audit,
        }
    }

    /// A switch to `mode` rolls out: nodes may still run the other one.
    pub fn switching_to(mode: Mode) -> Self {
        match mode {
            Mode::Enforce => Self::AuditToEnforce,
            Mode::Audit => Self::EnforceToAudit,
        }
    }

    /// The modes nodes may run: the same twice when the mode is settled.
    pub fn modes(self) -> (Mode, Mode) {
        match self {
            Self::Enforce => (Mode::Enforce, Mode::Enforce),
            Self::Audit => (Mode::Audit, Mode::Audit),
            Self::AuditToEnforce => (Mode::Audit, Mode::Enforce),
            Self::EnforceToAudit => (Mode::Enforce, Mode::Audit),
        }
    }

    /// As written in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "Enforce",
            Self::Audit => "Audit",
            Self::AuditToEnforce => "Audit->Enforce",
            Self::EnforceToAudit => "Enforce->Audit",
        }
    }
}

/// A node's warning about the current version of a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeWarning {
    /// The node's name.
    #[schemars(length(max = MAX_NODE_NAME_LEN))]
    pub node_name: String,
    /// What the node's runtime or seccomp library does with the profile, with the fix (the
    /// runtime is named); a long message is cut, ending in ` [...]`.
    #[schemars(length(max = MAX_WARNING_LEN))]
    pub message: String,
}

/// A node that does not have the current version of a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeProblem {
    /// The node's name.
    #[schemars(length(max = MAX_NODE_NAME_LEN))]
    pub node_name: String,
    /// Pending, Outdated, Invalid or Error.
    pub state: NodeProblemState,
    /// Why, in words, with the fix where there is one; a long reason is cut, ending in
    /// ` [...]`.
    #[schemars(length(max = MAX_REASON_LEN))]
    pub reason: String,
}

/// Why a node lacks the current version of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum NodeProblemState {
    /// The node's agent has not installed the current version yet (no agent, not synced,
    /// or not yet seen).
    Pending,
    /// The node has an older version installed.
    Outdated,
    /// The node rejected the profile.
    Invalid,
    /// The node failed to install the profile.
    Error,
}
