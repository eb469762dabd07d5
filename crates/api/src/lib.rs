//! Kubernetes API types: the custom resources seccompd serves and reads.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binding;
pub mod crd;
pub mod denials;
pub mod floor;
mod floor_rules;
pub mod node_report;
pub mod profile;
mod profile_rules;
pub mod reason;
pub mod recording;

pub use binding::{
    BindingReason, PodSelector, SeccompProfileBinding, SeccompProfileBindingSpec,
    SeccompProfileBindingStatus, SelectorOperator, SelectorRequirement,
};
pub use denials::{
    DenialEntry, LostRecords, PodExample, ProfileDenials, SeccompDenialReport,
    SeccompDenialReportSpec, SyscallDenials,
};
pub use floor::{FloorNode, FloorPhase, SeccompFloor, SeccompFloorSpec, SeccompFloorStatus};
pub use node_report::{
    LargestFilter, NodeFloorReport, NodeProfileState, ProfileReport, ProfileWarning,
    SeccompNodeReport, SeccompNodeReportSpec, UnknownEntries,
};
pub use profile::{
    CONDITION_READY, ModeInForce, NodeProblem, NodeProblemState, NodeWarning, Phase,
    SeccompProfile, SeccompProfileSpec, SeccompProfileStatus,
};
pub use recording::{
    AbiCalls, NodeRecording, RecordingPhase, SeccompProfileRecording, SeccompProfileRecordingSpec,
    SeccompProfileRecordingStatus,
};

/// The API group of every seccompd resource.
pub const GROUP: &str = "seccompd.dev";

/// Directory below `<kubelet root>/seccomp/` that seccompd owns.
pub const PROFILE_SUBDIR: &str = "seccompd";

/// The Node label that says which OCI runtime a node runs (`runc-1.5.3`, `crun-1.19`: a
/// label value cannot hold `/`), so that its agent judges profiles the way that runtime
/// will. Set it per node pool (e.g. the kubelet's `--node-labels`); a node without it is
/// judged as the agent's `--node-runtime` says, or as the most conservative runtime.
pub const RUNTIME_LABEL: &str = "seccompd.dev/runtime";

/// The `localhostProfile` value that makes a pod use profile `name`.
pub fn localhost_profile(name: &str) -> String {
    format!(
        "{PROFILE_SUBDIR}/{name}{}",
        seccompd_profile::limits::FILE_SUFFIX
    )
}
