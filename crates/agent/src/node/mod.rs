//! The node's filesystem: the one directory seccompd owns. Knows files, not Kubernetes.

pub mod dir;

/// This machine's kernel release as (major, minor), from `/proc/sys/kernel/osrelease`: which
/// of Docker's `minKernel` rules the built-in default profile keeps. `None` when unreadable.
pub fn kernel_release() -> Option<(u32, u32)> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|text| seccompd_profile::import::parse_kernel(&text))
}

pub mod manifest;
pub mod own_events;
pub mod owned;
