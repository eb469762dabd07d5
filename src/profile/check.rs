//! The whole verdict on a resolved profile for one node: structural validation, what the
//! node's runtime refuses, and the libseccomp compile. The agent calls [`check_for_node`];
//! the CLI calls [`check_resolved`] for any architecture.

use super::compile::{self, native_arch};
use super::model::{Arch, Flag};
use super::render::{OciProfile, render};
use super::validate::{self, Findings, Problem};

/// What the node's container runtime accepts beyond what every supported runtime does.
///
/// seccompd cannot ask the runtime, so the default is the most conservative runtime it
/// supports, runc 1.1 (Debian 12, containerd 1.6/1.7 nodes): it refuses every `flags` entry
/// and `SCMP_ARCH_RISCV64`. An agent option should set these when the cluster's nodes run
/// crun or runc 1.2 or later.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeRuntime {
    /// The runtime accepts `flags` (runc ≥ 1.2 or crun; WAIT_KILLABLE_RECV needs runc ≥ 1.5).
    pub flags: bool,
    /// The runtime knows SCMP_ARCH_RISCV64 (runc ≥ 1.1.8 or crun).
    pub riscv64: bool,
}

/// Checks a resolved profile for this node (its native architecture, the default
/// [`NodeRuntime`]). `Ok` carries warnings; `Err` the reason the profile must not be
/// installed, naming the field and the fix. Never panics; returns within about
/// [`super::limits::COMPILE_BUDGET`].
///
/// Paths start at `spec.`; with a `baseProfileName`, rule indexes count the bases' rules first.
pub fn check_for_node(profile: &OciProfile) -> Result<Vec<String>, String> {
    check_for_node_with(profile, &NodeRuntime::default())
}

/// [`check_for_node`] for a runtime that accepts more than runc 1.1.
pub fn check_for_node_with(
    profile: &OciProfile,
    runtime: &NodeRuntime,
) -> Result<Vec<String>, String> {
    let Some(arch) = native_arch() else {
        return Err(format!(
            "this node's architecture ({}) is not one seccompd can compile for",
            std::env::consts::ARCH
        ));
    };
    let findings = check_resolved(profile, arch, runtime, "spec");
    if findings.is_valid() {
        Ok(findings.warnings.iter().map(Problem::to_string).collect())
    } else {
        Err(findings
            .errors
            .iter()
            .map(Problem::to_string)
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// Everything wrong with `profile` on a node of architecture `arch` running `runtime`.
/// `root` prefixes field paths (`"spec"`, or `""` for a plain OCI file).
pub fn check_resolved(
    profile: &OciProfile,
    arch: Arch,
    runtime: &NodeRuntime,
    root: &str,
) -> Findings {
    let mut findings = validate::validate_resolved(profile, root);
    if let Err(too_large) = render(profile).check_size() {
        findings.errors.push(Problem {
            path: if root.is_empty() {
                "profile".into()
            } else {
                root.to_string()
            },
            message: too_large.to_string(),
        });
        return findings;
    }
    let at = |field: String| {
        if root.is_empty() {
            field
        } else {
            format!("{root}.{field}")
        }
    };
    if !runtime.flags {
        if let Some(flag) = profile.flags.first() {
            findings.errors.push(Problem {
                path: at("flags".into()),
                message: format!(
                    "{flag}: this node's runtime is taken to be runc 1.1, which refuses any flag ('seccomp flags are not yet supported by runc'): remove flags (or run the agent with the option saying the runtime supports them)"
                ),
            });
        }
    } else if profile.flags.contains(&Flag::WaitKillableRecv) {
        findings.warnings.push(Problem {
            path: at("flags".into()),
            message: "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs runc 1.5 or crun; it only matters with SCMP_ACT_NOTIFY, which seccompd refuses: remove it".into(),
        });
    }
    if !runtime.riscv64
        && let Some(i) = profile
            .architectures
            .iter()
            .position(|a| *a == Arch::Riscv64)
    {
        findings.errors.push(Problem {
                path: at(format!("architectures[{i}]")),
                message: "this node's runtime is taken to be runc 1.1, which refuses SCMP_ARCH_RISCV64 ('not a valid arch') before 1.1.8: remove it".into(),
            });
    }
    if !findings.is_valid() {
        // libseccomp may misbehave on values validation refused (errno truncation).
        return findings;
    }
    match compile::compile(profile, arch) {
        Ok(compiled) => findings
            .warnings
            .extend(compiled.warnings.into_iter().map(|message| Problem {
                path: at("syscalls".into()),
                message,
            })),
        Err(err) => {
            let text = err.to_string();
            let (path, message) = match text.split_once(": ") {
                Some((p, m)) if !p.contains(' ') => (at(p.to_string()), m.to_string()),
                _ => (
                    if root.is_empty() {
                        "profile".to_string()
                    } else {
                        root.to_string()
                    },
                    text,
                ),
            };
            findings.errors.push(Problem { path, message });
        }
    }
    findings
}
