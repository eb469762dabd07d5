//! The node agent: keeps this node's profile directory in line with the API and reports back.
//!
//! [`decide`] holds the pure decisions; the modules here are the tasks that do the I/O: the
//! loop ([`mod@run`]) and its pass over the directory ([`sync`]), the watched [`sources`], the
//! report [`publish`]er, [`events`], the [`taint`], the node's identity
//! ([`node_identity`]) and the profile directory itself ([`node`]). Where a task has a decision of its own (`needs_apply`,
//! `removal_patch`, `next_identity`), it is a pure function beside it, tested apart. The
//! tasks share the agent's [`readiness`], which its [`probes`] answer from, and its
//! [`metrics`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod decide;
pub mod events;
pub mod metrics;
pub mod node;
pub mod node_identity;
pub mod probes;
pub mod publish;
pub mod readiness;
pub mod run;
pub mod sources;
pub mod sync;
pub mod taint;
#[cfg(test)]
mod testing;

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

pub use run::run;

/// Command-line options of `seccompd-agent`.
#[derive(Clone, Debug, clap::Args)]
pub struct AgentArgs {
    /// Name of the node this agent runs on (from the downward API in the DaemonSet).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,

    /// The kubelet's root directory; profiles go to `<root>/seccomp/seccompd/`.
    #[arg(long, env = "KUBELET_ROOT", default_value = "/var/lib/kubelet")]
    pub kubelet_root: PathBuf,

    /// Address of the /healthz, /readyz and /metrics endpoint.
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:9810")]
    pub health_addr: SocketAddr,

    /// Seconds between full passes when nothing changes (changes are handled at once).
    #[arg(long, env = "RESYNC_SECONDS", default_value_t = 300)]
    pub resync_seconds: u64,

    /// Install the built-in recording profile `seccompd/record.json` (it allows and logs
    /// every call). Set where the recorder is deployed; without it no node has the file.
    #[arg(long, env = "RECORDING", default_value_t = false, action = clap::ArgAction::Set)]
    pub recording: bool,

    /// The OCI runtime of every node this agent runs on, e.g. runc/1.5.3 or crun/1.19, for
    /// judging profiles the way it will. A node's `seccompd.dev/runtime` label (runc-1.5.3)
    /// wins; with neither, a node is taken to run runc 1.1, the strictest.
    #[arg(long, env = "NODE_RUNTIME")]
    pub node_runtime: Option<seccompd_profile::runtime::OciRuntime>,
}

impl AgentArgs {
    /// The directory the agent owns.
    pub fn profile_dir(&self) -> PathBuf {
        self.kubelet_root
            .join("seccomp")
            .join(seccompd_api::PROFILE_SUBDIR)
    }
}

/// Failures of the agent's API and file work, with what was being done.
#[derive(Debug, Error)]
pub enum AgentError {
    /// An API call failed.
    #[error("{context}: {source}")]
    Kube {
        /// What was being done.
        context: String,
        /// The client error.
        source: kube::Error,
    },
    /// The profile directory could not be used.
    #[error(transparent)]
    Dir(#[from] crate::node::dir::DirError),
    /// The Node object of this node has not been seen (yet, or since it was deleted).
    #[error("node {0} is not known to the API server (yet)")]
    NodeUnknown(String),
}

impl AgentError {
    /// Whether the same attempt may succeed later: an API call whose failure may pass (see
    /// [`seccompd_runtime::apiserver::is_transient`]), or a node the agent's watch has not
    /// seen yet.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Kube { source, .. } => seccompd_runtime::apiserver::is_transient(source),
            Self::NodeUnknown(_) => true,
            Self::Dir(_) => false,
        }
    }
}
