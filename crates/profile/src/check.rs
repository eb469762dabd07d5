//! The whole verdict on a resolved profile for one node: structural validation, what the
//! node's runtime refuses, and the libseccomp compile. The agent calls [`check_for_node`];
//! the CLI calls [`check_resolved`] for any architecture.

use super::compile::{self, native_arch};
use super::model::{Arch, Flag};
use super::render::{OciProfile, render};
use super::runtime::{ASSUMED_RUNTIME, OciRuntime};
use super::validate::{self, Findings, Problem};

/// What the node's container runtime accepts beyond what every supported runtime does, and
/// how seccompd knows (see [`crate::runtime`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeRuntime {
    /// The runtime, as configured; `None`: nobody said, so it is taken to be
    /// [`ASSUMED_RUNTIME`].
    pub runtime: Option<OciRuntime>,
    /// The runtime accepts `flags` (runc ≥ 1.2 or crun; WAIT_KILLABLE_RECV needs runc ≥ 1.5).
    pub flags: bool,
    /// The runtime knows SCMP_ARCH_RISCV64 (runc ≥ 1.1.8 or crun).
    pub riscv64: bool,
}

impl Default for NodeRuntime {
    /// A node nobody described.
    fn default() -> Self {
        Self {
            runtime: None,
            ..Self::of(ASSUMED_RUNTIME)
        }
    }
}

impl NodeRuntime {
    /// A node that runs `runtime`.
    pub fn of(runtime: OciRuntime) -> Self {
        Self {
            runtime: Some(runtime),
            flags: runtime.accepts_flags(),
            riscv64: runtime.knows_riscv64(),
        }
    }

    /// The runtime as a message names it, with how to correct it when it is only assumed.
    fn describe(&self) -> String {
        match self.runtime {
            Some(r) => format!("this node's runtime ({r})"),
            None => format!(
                "this node's runtime (taken to be {ASSUMED_RUNTIME}, since none is configured for the node)"
            ),
        }
    }
}

/// Why a profile is not installed on this node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeCheckError {
    /// A verdict: the profile must not be installed here; the reason names the field and the
    /// fix. The same content always gets the same verdict, so it may be remembered.
    #[error("{0}")]
    Rejected(String),
    /// No verdict: the check could not finish (the compile ran out of time or failed for a
    /// reason of its own). It is tried again later, never remembered as a rejection.
    #[error("the node check could not finish ({0}); it is tried again")]
    Unfinished(String),
}

/// What the node check found in a profile it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeVerdict {
    /// Things the runtime skips or changes, with the fix.
    pub warnings: Vec<String>,
    /// Length of the compiled program: its headroom is what is left of the kernel's
    /// [`super::limits::MAX_BPF_INSTRUCTIONS`].
    pub instructions: usize,
}

/// Checks a resolved profile for this node (its native architecture, the default
/// [`NodeRuntime`]). `Ok` carries warnings and the program's length; `Err` says why the
/// profile is not installed.
/// Never panics; returns within about [`super::limits::COMPILE_BUDGET`].
///
/// Paths start at `spec.`; with a `baseProfileName`, rule indexes count the bases' rules first.
pub fn check_for_node(profile: &OciProfile) -> Result<NodeVerdict, NodeCheckError> {
    check_for_node_with(profile, &NodeRuntime::default())
}

/// [`check_for_node`] for a runtime that accepts more than runc 1.1.
pub fn check_for_node_with(
    profile: &OciProfile,
    runtime: &NodeRuntime,
) -> Result<NodeVerdict, NodeCheckError> {
    let Some(arch) = native_arch() else {
        return Err(NodeCheckError::Rejected(format!(
            "this node's architecture ({}) is not one seccompd can compile for",
            std::env::consts::ARCH
        )));
    };
    let (findings, instructions) = judge(profile, arch, runtime, "spec")
        .map_err(|e| NodeCheckError::Unfinished(e.to_string()))?;
    if findings.is_valid() {
        Ok(NodeVerdict {
            warnings: findings.warnings.iter().map(Problem::to_string).collect(),
            instructions: instructions.unwrap_or_default(),
        })
    } else {
        Err(NodeCheckError::Rejected(
            findings
                .errors
                .iter()
                .map(Problem::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

/// Everything wrong with `profile` on a node of architecture `arch` running `runtime`.
/// `root` prefixes field paths (`"spec"`, or `""` for a plain OCI file). A compile that could
/// not finish is one more error here (the CLI has nothing to retry).
pub fn check_resolved(
    profile: &OciProfile,
    arch: Arch,
    runtime: &NodeRuntime,
    root: &str,
) -> Findings {
    judge(profile, arch, runtime, root)
        .map(|(findings, _instructions)| findings)
        .unwrap_or_else(|unfinished| Findings {
            errors: vec![Problem {
                path: whole(root),
                message: unfinished.to_string(),
            }],
            warnings: vec![],
        })
}

/// The path of the whole profile in messages.
fn whole(root: &str) -> String {
    if root.is_empty() {
        "profile".to_string()
    } else {
        root.to_string()
    }
}

/// The findings and the compiled program's length (when it compiled), or the compile error
/// that left the check without a verdict.
fn judge(
    profile: &OciProfile,
    arch: Arch,
    runtime: &NodeRuntime,
    root: &str,
) -> Result<(Findings, Option<usize>), compile::CompileError> {
    let mut findings = validate::validate_resolved(profile, root);
    if let Err(too_large) = render(profile).check_size() {
        findings.errors.push(Problem {
            path: whole(root),
            message: too_large.to_string(),
        });
        return Ok((findings, None));
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
                    "{flag}: {} refuses any flag ('seccomp flags are not yet supported by runc'; runc 1.2 and crun accept them): remove flags",
                    runtime.describe()
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
                message: format!(
                    "{} refuses SCMP_ARCH_RISCV64 ('not a valid arch'; runc 1.1.8 and crun know it): remove it",
                    runtime.describe()
                ),
            });
    }
    if !findings.is_valid() {
        // libseccomp may misbehave on values validation refused (errno truncation).
        return Ok((findings, None));
    }
    let mut instructions = None;
    match compile::compile(profile, arch) {
        Ok(compiled) => {
            instructions = Some(compiled.instructions);
            findings
                .warnings
                .extend(compiled.warnings.into_iter().map(|message| Problem {
                    path: at("syscalls".into()),
                    message,
                }));
        }
        Err(err) if err.is_unfinished() => return Err(err),
        Err(err) => {
            let text = err.to_string();
            let (path, message) = match text.split_once(": ") {
                Some((p, m)) if !p.contains(' ') => (at(p.to_string()), m.to_string()),
                _ => (whole(root), text),
            };
            findings.errors.push(Problem { path, message });
        }
    }
    Ok((findings, instructions))
}
