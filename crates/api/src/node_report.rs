//! The `SeccompNodeReport` custom resource: one per node, written only by that node's agent,
//! read only by the elected summarizer. It keeps per-node state out of the SeccompProfile
//! objects that every agent watches, so a node's report reaches one reader, not N.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use seccompd_profile::digest::SetDigest;
use seccompd_profile::limits::{
    MAX_FLOOR_NAME_LEN, MAX_NAMED_ENTRIES, MAX_PROFILE_NAME_LEN, MAX_REASON_LEN,
    MAX_REPORT_EXCEPTIONS, MAX_REPORT_FLOORS, MAX_REPORT_WARNINGS, MAX_WARNING_LEN, NAME_MAX,
};
use seccompd_profile::render::ContentHash;

/// What one node's seccompd agent has installed. Named after the node and owned by its Node
/// object, so it disappears with the node. Written by the agent; do not edit.
// Two printer columns of type string read as a duplicated attribute to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccompd.dev",
    version = "v1alpha1",
    kind = "SeccompNodeReport",
    shortname = "scnr",
    category = "seccompd",
    printcolumn(
        name = "Synced",
        type_ = "boolean",
        json_path = ".spec.synced",
        description = "The agent has completed its first sync"
    ),
    printcolumn(
        name = "Installed",
        type_ = "integer",
        json_path = ".spec.installed",
        description = "Profiles installed as specified on this node"
    ),
    printcolumn(
        name = "Exceptions",
        type_ = "string",
        json_path = ".spec.exceptions[*].name",
        description = "Profiles not installed as specified"
    ),
    printcolumn(
        name = "Runtime",
        json_path = ".spec.runtime",
        description = "The OCI runtime profiles are judged for on this node, and how the agent knows",
        type_ = "string"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SeccompNodeReportSpec {
    /// True once the agent has listed every SeccompProfile and brought the node's directory in
    /// line with them.
    #[serde(default)]
    pub synced: bool,

    /// How many profiles are installed on this node exactly as specified.
    #[serde(default)]
    pub installed: u32,

    /// A digest of the profiles installed as specified: the sum (mod 2^256) of sha256(name,
    /// NUL, content hash) over them, 64 hex digits. The controller computes the same digest
    /// from the SeccompProfiles it sees; equal digests mean the node has every one of them, so
    /// the report stays this small however many profiles there are.
    #[serde(default)]
    pub installed_digest: SetDigest,

    /// Only the profiles this node does not have installed as specified, by name: rejected
    /// (Invalid), failed (Error), or deleted but kept for pods that use them (Retained). The
    /// list is bounded (`maxItems`); `exceptionsOmitted` counts the rest.
    #[serde(default)]
    #[schemars(
        length(max = MAX_REPORT_EXCEPTIONS),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub exceptions: Vec<ProfileReport>,

    /// How many further profiles this node does not have installed as specified, beyond those
    /// listed in `exceptions`. While it is not zero, the controller may not be able to confirm
    /// new versions on this node: any of them may be among those left out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exceptions_omitted: u32,
    /// Entries in the agent's directory that seccompd did not write: it leaves them in place
    /// and lists them here. Absent when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_entries: Option<UnknownEntries>,
    /// The OCI runtime this node's profiles are judged for and how the agent knows it: the
    /// Node's `seccompd.dev/runtime` label, the agent's `--node-runtime` option, or assumed
    /// (runc 1.1, the strictest) when neither says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_REASON_LEN))]
    pub runtime: Option<String>,
    /// The SeccompFloors this node's profile files carry: per floor, the digest of the rules
    /// merged into them, how many files carry it and which profiles' files do not. Absent
    /// when there is no floor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_REPORT_FLOORS))]
    pub floors: Vec<NodeFloorReport>,
    /// The profile whose compiled filter is the longest on this node (with the floors merged):
    /// the node's least headroom under the kernel's limit of instructions per filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub largest_filter: Option<LargestFilter>,
    /// The profiles this node accepts with a warning that depends on the node (its runtime or
    /// its seccomp library; for example runc 1.5 calls statx after loading the filter, so no
    /// container starts under an allowlist without it), one entry per profile, by name. The
    /// list is bounded (`maxItems`); `warningsOmitted` counts the rest. The profile's status
    /// shows each node's warning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = MAX_REPORT_WARNINGS),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub warnings: Vec<ProfileWarning>,
    /// How many further profiles this node warns of, beyond those listed in `warnings`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warnings_omitted: u32,
}

/// What a node warns of for one profile it accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileWarning {
    /// The SeccompProfile's name.
    #[schemars(length(max = MAX_PROFILE_NAME_LEN))]
    pub name: String,
    /// sha256 of the rendering the warning is about: the file this node installs.
    pub content_hash: ContentHash,
    /// The warnings, each naming the field and the fix, joined with `; `; a long message is
    /// cut, ending in ` [...]`.
    #[schemars(length(max = MAX_WARNING_LEN))]
    pub message: String,
}

/// A profile's compiled size on a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LargestFilter {
    /// The profile.
    #[schemars(length(max = MAX_PROFILE_NAME_LEN))]
    pub profile: String,
    /// BPF instructions of its filter for this node's architecture (all the ABIs it lists).
    pub instructions: u32,
    /// The kernel's limit per filter (BPF_MAXINSNS).
    pub limit: u32,
}

/// One SeccompFloor on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeFloorReport {
    /// The SeccompFloor's name.
    #[schemars(length(max = MAX_FLOOR_NAME_LEN))]
    pub name: String,
    /// sha256 of the floor's rules as this node merged them.
    pub digest: ContentHash,
    /// How many profile files on this node carry these rules (built-in ones included).
    pub carried: u32,
    /// The profiles the floor applies to whose file does not carry these rules, with why
    /// (bounded; `missingOmitted` counts the rest). Empty when every file carries them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_NAMED_ENTRIES))]
    pub missing: Vec<ProfileReport>,
    /// How many further profiles beyond those in `missing`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missing_omitted: u32,
    /// Running pods on this node that use a seccompd profile whose file did not carry these
    /// rules when the pod started: they run without them until restarted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pods_started_before: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Entries seccompd found in its directory and left alone, bounded: the first names and a
/// count, so that the report stays small whatever is planted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnknownEntries {
    /// How many there are.
    pub count: u32,
    /// The first of their names in sorted order (at most 10; bytes that are not UTF-8
    /// replaced).
    #[serde(default)]
    #[schemars(length(max = MAX_NAMED_ENTRIES), inner(length(max = NAME_MAX)))]
    pub names: Vec<String>,
}

/// One node's outcome for one profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileReport {
    /// The SeccompProfile's name.
    #[schemars(length(max = MAX_PROFILE_NAME_LEN))]
    pub name: String,
    /// What this node did with the profile.
    pub state: NodeProfileState,
    /// The metadata.generation of the SeccompProfile this outcome is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// sha256 of the installed file, when installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<ContentHash>,
    /// Why the profile is not installed as specified. A reason longer than the bound
    /// (`maxLength`) is cut, ending in ` [...]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_REASON_LEN))]
    pub reason: Option<String>,
}

/// A node's outcome for one profile.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum NodeProfileState {
    /// The file is on the node with `contentHash`. Installed profiles are counted in the
    /// report's digest, not listed.
    Installed,
    /// The profile was rejected (by validation or this node's seccomp library); any earlier
    /// valid version stays on disk.
    Invalid,
    /// Writing the file failed.
    Error,
    /// The SeccompProfile was deleted, but pods on this node still reference it: the file
    /// stays (and is repaired) until the last of them is gone. `reason` names the pods.
    Retained,
}
