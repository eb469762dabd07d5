//! The profiles the bench creates: the seed walkthrough's `ls` allowlist (a realistic small
//! profile), one more allowed call per version so that every update changes the file.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::api::ObjectMeta;
use seccompd_api::{SeccompProfile, SeccompProfileSpec};
use seccompd_profile::model::ProfileSpec;
use seccompd_profile::render::render;
use seccompd_profile::resolve::resolve;
use serde_json::json;

use crate::fleet::RUN_LABEL;

/// The allowlist of manifests/examples/centos8-ls-profile.yaml.
const LS_CALLS: [&str; 44] = [
    "access",
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "close",
    "epoll_ctl",
    "epoll_pwait",
    "execve",
    "exit_group",
    "fchown",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getdents64",
    "getpid",
    "getppid",
    "ioctl",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "openat",
    "prctl",
    "pread64",
    "prlimit64",
    "read",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_yield",
    "seccomp",
    "set_robust_list",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setuid",
    "stat",
    "statfs",
    "tgkill",
    "write",
];

/// Calls added one per version after the first.
const LATER_CALLS: [&str; 4] = ["uname", "getrandom", "getcwd", "lseek"];

/// Name of the bench's profile `i`.
pub fn name(i: usize) -> String {
    format!("scale-bench-{i:04}")
}

/// Version `version` (1, 2, ...) of the bench's profile spec.
pub fn spec(version: usize) -> ProfileSpec {
    let extra = version.saturating_sub(1).min(LATER_CALLS.len());
    let names: Vec<&str> = LS_CALLS
        .iter()
        .chain(&LATER_CALLS[..extra])
        .copied()
        .collect();
    serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": names}],
    }))
    .unwrap_or_else(|e| panic!("the bench's profile spec is invalid: {e}"))
}

/// The SeccompProfile object for profile `name`, labelled with the run.
pub fn object(name: &str, version: usize, run_id: &str) -> SeccompProfile {
    SeccompProfile {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([(RUN_LABEL.to_string(), run_id.to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: SeccompProfileSpec(spec(version)),
        status: None,
    }
}

/// The bytes every node's file must hold for `version`.
pub fn file_bytes(version: usize) -> anyhow::Result<Vec<u8>> {
    let resolved = resolve("scale-bench", &spec(version), |_| None)
        .context("resolving the bench's profile")?;
    Ok(render(&resolved).bytes.to_vec())
}

/// Polls until the file `name` in every one of `dirs` holds `want` (or, with `None`, is gone);
/// returns the time since `start`. An error after `limit`.
pub async fn wait_files(
    dirs: &[PathBuf],
    name: &str,
    want: Option<&[u8]>,
    start: Instant,
    limit: Duration,
    poll: Duration,
) -> anyhow::Result<Duration> {
    let file = format!("{name}.json");
    let mut pending: Vec<PathBuf> = dirs.iter().map(|d| d.join(&file)).collect();
    loop {
        pending.retain(|p| !holds(p, want));
        if pending.is_empty() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!(
                "{file}: {} of {} nodes not done within {limit:?} (first: {})",
                pending.len(),
                dirs.len(),
                pending[0].display()
            );
        }
        tokio::time::sleep(poll).await;
    }
}

/// Whether `path` holds `want` (or is absent). A `stat` first, so that polling hundreds of
/// directories reads only files of the right size and leaves the CPU to the agents.
fn holds(path: &Path, want: Option<&[u8]>) -> bool {
    let meta = fs::symlink_metadata(path);
    match want {
        Some(bytes) => {
            meta.is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64)
                && fs::read(path).is_ok_and(|b| b == bytes)
        }
        None => meta.is_err(),
    }
}
