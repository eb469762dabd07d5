//! The recorder (`seccompd recorder`): an opt-in DaemonSet that reads the kernel's seccomp
//! audit records on its node, attributes them to the containers of the pods that
//! SeccompProfileRecordings select, and writes its node's part of each recording (the
//! controller decides the outcome and writes the profile); it also counts what seccompd
//! profiles refuse (or would refuse, in Audit mode) into its node's SeccompDenialReport.
//!
//! The pure decisions live in [`seccompd_recording`] (shared with the controller); the
//! modules here do the I/O.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit_socket;
pub mod denials;
pub mod events;
pub mod health;
pub mod metrics;
pub mod probe;
pub mod reader;
pub mod run;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use run::run;

/// Command-line options of `seccompd recorder`.
#[derive(Clone, Debug, clap::Args)]
pub struct RecorderArgs {
    /// Name of the node this recorder runs on (from the downward API in the DaemonSet).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,

    /// The host's /proc (mounted read-only in the DaemonSet): audit records name host PIDs.
    #[arg(long, env = "PROC_ROOT", default_value = "/proc")]
    pub proc_root: PathBuf,

    /// Address of the /healthz, /readyz and /metrics endpoint.
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:9811")]
    pub health_addr: SocketAddr,
}
