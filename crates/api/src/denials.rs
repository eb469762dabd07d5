//! The `SeccompDenialReport` custom resource: one per node, written only by that node's
//! recorder, read only by the elected controller, which sums the reports per profile into each
//! SeccompProfile's `status.denials`. Like the agents' node reports it keeps per-node counts
//! out of the profiles every agent watches.

// Several print columns share `type_ = "integer"`, which this lint mistakes for a repeat.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use seccompd_profile::limits::{
    MAX_DENIAL_EXAMPLES, MAX_NODE_DENIAL_ENTRIES, MAX_NODE_NAME_LEN, MAX_PROFILE_NAME_LEN,
    MAX_REASON_LEN, MAX_STATUS_DENIAL_SYSCALLS, MAX_SYSCALL_NAME_LEN,
};
use seccompd_profile::model::Action;

/// Longest namespace or pod name a denial example holds (a DNS subdomain).
const MAX_OBJECT_NAME_LEN: usize = 253;

/// The system calls that one node's recorder saw refused (or, under an Audit profile, that
/// would have been refused) in containers running under a seccompd profile, counted from the
/// kernel's seccomp audit records since the recorder started. Named after the node. Written
/// by that node's recorder; do not edit.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccompd.dev",
    version = "v1alpha1",
    kind = "SeccompDenialReport",
    shortname = "scdr",
    category = "seccompd",
    printcolumn(
        name = "Entries",
        type_ = "integer",
        json_path = ".spec.entryCount",
        description = "Distinct (profile, system call, action) entries"
    ),
    printcolumn(
        name = "Read",
        type_ = "integer",
        json_path = ".spec.recordsRead",
        description = "Seccomp audit records read"
    ),
    printcolumn(
        name = "Lost",
        type_ = "integer",
        json_path = ".spec.lost.total",
        description = "Records lost: dropped by the kernel, overflows, processes gone before attribution"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SeccompDenialReportSpec {
    /// When this node's recorder started counting: every count is since then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,

    /// Why this node cannot hear the kernel's audit records (no record of the recorder's own
    /// probe arrived: not in the host's initial network namespace, or audit is off), when it
    /// cannot; its counts then say nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_REASON_LEN))]
    pub audit_unavailable: Option<String>,

    /// Seccomp audit records read since `since`, of every process of the node.
    #[serde(default)]
    pub records_read: u64,

    /// Records that may have been denials but were not counted.
    #[serde(default)]
    pub lost: LostRecords,

    /// How many entries `entries` holds.
    #[serde(default)]
    pub entry_count: u32,

    /// The counts, by profile, system call and action (bounded: `omittedRecords` counts the
    /// records of further keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_NODE_DENIAL_ENTRIES))]
    pub entries: Vec<DenialEntry>,

    /// Records of containers under a seccompd profile that were not tallied because
    /// `entries` was full.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_records: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Records lost on one node, by cause, since its recorder started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LostRecords {
    /// Every lost record below, summed.
    #[serde(default)]
    pub total: u64,
    /// Records the kernel dropped (its `audit_lost` grew by this since `since`; of every kind
    /// of audit record, so an upper bound for seccomp's).
    #[serde(default)]
    pub kernel: u64,
    /// Times the recorder's socket buffer overflowed (each drops an unknown number of records).
    #[serde(default)]
    pub overflows: u64,
    /// Records whose process had ended before its container could be told.
    #[serde(default)]
    pub unattributed: u64,
    /// Records of containers whose pod did not reach the recorder in time, or that did not
    /// fit its bounded queue of such records.
    #[serde(default)]
    pub unresolved: u64,
}

impl LostRecords {
    /// This with `total` set to the sum of the causes.
    pub fn totalled(mut self) -> Self {
        self.total = self.kernel + self.overflows + self.unattributed + self.unresolved;
        self
    }
}

/// How often one profile's filter took one action on one system call on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DenialEntry {
    /// The SeccompProfile the container runs under.
    #[schemars(length(max = MAX_PROFILE_NAME_LEN))]
    pub profile: String,
    /// The system call.
    #[schemars(length(max = MAX_SYSCALL_NAME_LEN))]
    pub syscall: String,
    /// The action the kernel logged: SCMP_ACT_LOG under an Audit profile (a call the enforced
    /// profile would refuse); SCMP_ACT_ERRNO, a kill or SCMP_ACT_TRAP under an Enforce profile
    /// with `flags: [SECCOMP_FILTER_FLAG_LOG]` (a call refused).
    pub action: Action,
    /// How many records.
    pub count: u64,
    /// The first record's time.
    pub first_seen: Time,
    /// The last record's time.
    pub last_seen: Time,
    /// Some of the pods that made the call (the first seen).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_DENIAL_EXAMPLES))]
    pub pods: Vec<PodExample>,
}

/// A pod, and the container in it, that made a call.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct PodExample {
    /// The pod's namespace.
    #[schemars(length(max = MAX_OBJECT_NAME_LEN))]
    pub namespace: String,
    /// The pod's name.
    #[schemars(length(max = MAX_OBJECT_NAME_LEN))]
    pub name: String,
    /// The container's name.
    #[schemars(length(max = MAX_OBJECT_NAME_LEN))]
    pub container: String,
}

/// What the nodes' recorders counted for one SeccompProfile, summed over the nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileDenials {
    /// In words, for `kubectl get`: how many calls were refused or would have been, and the
    /// most counted names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_REASON_LEN))]
    pub summary: Option<String>,
    /// Records of calls this profile would have refused (SCMP_ACT_LOG, in Audit mode).
    #[serde(default)]
    pub would_deny: u64,
    /// Records of calls this profile refused (an errno, kill or trap action logged through
    /// `SECCOMP_FILTER_FLAG_LOG`).
    #[serde(default)]
    pub denied: u64,
    /// The system calls, the most counted first (bounded: `omittedSyscalls` counts the rest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_STATUS_DENIAL_SYSCALLS))]
    pub syscalls: Vec<SyscallDenials>,
    /// How many further (system call, action) pairs were counted.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub omitted_syscalls: u32,
    /// Records lost on the nodes that counted, summed (of every profile: a lost record names
    /// no profile). Above zero, the list may lack calls.
    #[serde(default)]
    pub lost_records: u64,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// One system call's count under one profile and action, over the nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyscallDenials {
    /// The system call.
    #[schemars(length(max = MAX_SYSCALL_NAME_LEN))]
    pub name: String,
    /// The action the kernel logged (see SeccompDenialReport's entries).
    pub action: Action,
    /// How many records, on every node.
    pub count: u64,
    /// The earliest first record.
    pub first_seen: Time,
    /// The latest last record.
    pub last_seen: Time,
    /// Some of the pods that made it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_DENIAL_EXAMPLES))]
    pub pods: Vec<PodExample>,
    /// Some of the nodes it was seen on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_DENIAL_EXAMPLES), inner(length(max = MAX_NODE_NAME_LEN)))]
    pub nodes: Vec<String>,
}

/// Whether the kernel logging `action` means the call was refused (or would have been).
/// SCMP_ACT_LOG is what an Audit profile turns every refusal into; an Enforce profile's own
/// SCMP_ACT_LOG rules read the same in a record.
pub fn is_would_deny(action: Action) -> bool {
    action == Action::Log
}
