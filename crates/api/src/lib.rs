//! Kubernetes API types: the custom resources seccompd serves and reads.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crd;
pub mod node_report;
pub mod profile;
mod profile_rules;
pub mod reason;
pub mod recording;

pub use node_report::{
    NodeProfileState, ProfileReport, SeccompNodeReport, SeccompNodeReportSpec, UnknownEntries,
};
pub use profile::{
    CONDITION_READY, NodeProblem, NodeProblemState, Phase, SeccompProfile, SeccompProfileSpec,
    SeccompProfileStatus,
};
pub use recording::{
    AbiCalls, NodeRecording, RecordingPhase, SeccompProfileRecording, SeccompProfileRecordingSpec,
    SeccompProfileRecordingStatus,
};

/// The API group of every seccompd resource.
pub const GROUP: &str = "seccompd.dev";

/// Directory below `<kubelet root>/seccomp/` that seccompd owns.
pub const PROFILE_SUBDIR: &str = "seccompd";

/// The `localhostProfile` value that makes a pod use profile `name`.
pub fn localhost_profile(name: &str) -> String {
    format!(
        "{PROFILE_SUBDIR}/{name}{}",
        seccompd_profile::limits::FILE_SUFFIX
    )
}
