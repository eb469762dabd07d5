//! seccompd: installs SeccompProfile objects as seccomp profile files on every Kubernetes node
//! and reports back, per node, what happened.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod api;
pub mod apiserver;
pub mod cli;
pub mod controller;
pub mod host;
pub mod node;
pub mod profile;
pub mod recorder;
pub mod status;
pub mod telemetry;
