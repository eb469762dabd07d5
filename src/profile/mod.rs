//! The seccomp domain: profile model, base resolution, rendering. No I/O, no Kubernetes.

pub mod model;
pub mod render;
pub mod resolve;
