//! The seccomp domain: profile model, base resolution, rendering. No I/O, no Kubernetes, no async
//! runtime (the crate's dependencies keep it so).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod compile;
pub mod decode;
pub mod digest;
pub mod floor;
pub mod import;
pub mod limits;
pub mod model;
pub mod recording;
pub mod render;
pub mod resolve;
pub mod runtime;
pub mod syscall_names;
pub mod syscalls;
pub mod validate;

pub use check::check_for_node;
