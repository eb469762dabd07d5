//! The node's filesystem: the one directory seccompd owns. Knows files, not Kubernetes.

pub mod dir;
pub mod manifest;
pub mod own_events;
pub mod owned;
