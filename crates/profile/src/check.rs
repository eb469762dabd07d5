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
    /// Calls the runtime makes after loading the filter, which a profile must let run for
    /// any container to start (runc 1.5: statx, readlinkat).
    pub calls_after_filter: &'static [&'static str],
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
            calls_after_filter: runtime.calls_after_filter(),
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
    /// Those of `warnings` that depend on this node, its runtime and its seccomp library
    /// (runc 1.5's calls after the filter, names the node's libseccomp does not know), as
    /// against the structural ones that `seccompd validate` gives the same for every node:
    /// what a node report tells about a profile it installs.
    pub node_warnings: Vec<String>,
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
    let Judged {
        findings,
        instructions,
        structural_warnings,
    } = judge(profile, arch, runtime, "spec")
        .map_err(|e| NodeCheckError::Unfinished(e.to_string()))?;
    if findings.is_valid() {
        let warnings: Vec<String> = findings.warnings.iter().map(Problem::to_string).collect();
        Ok(NodeVerdict {
            node_warnings: warnings[structural_warnings.min(warnings.len())..].to_vec(),
            warnings,
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
        .map(|judged| judged.findings)
        .unwrap_or_else(|unfinished| Findings {
            errors: vec![Problem {
                path: whole(root),
                message: unfinished.to_string(),
            }],
            warnings: vec![],
        })
}

/// Those of `calls` that `profile` keeps from running: neither its default action nor a rule
/// without argument conditions lets them run (a rule with conditions may not match the
/// runtime's arguments, so it is not counted on).
fn blocked_after_filter(profile: &OciProfile, calls: &[&'static str]) -> Vec<&'static str> {
    if validate::runs(profile.default_action) {
        return Vec::new();
    }
    let allowed = |name: &str| {
        profile.syscalls.iter().any(|rule| {
            validate::runs(rule.action)
                && rule.args.is_empty()
                && rule.names.iter().any(|n| n == name)
        })
    };
    calls.iter().copied().filter(|c| !allowed(c)).collect()
}

/// The path of the whole profile in messages.
fn whole(root: &str) -> String {
    if root.is_empty() {
        "profile".to_string()
    } else {
        root.to_string()
    }
}

/// What [`judge`] found.
struct Judged {
    findings: Findings,
    /// The compiled program's length, when it compiled.
    instructions: Option<usize>,
    /// How many of `findings.warnings`, the first ones, are structural (the same on every
    /// node); the rest depend on the node's runtime and seccomp library.
    structural_warnings: usize,
}

/// The findings and the compiled program's length (when it compiled), or the compile error
/// that left the check without a verdict.
fn judge(
    profile: &OciProfile,
    arch: Arch,
    runtime: &NodeRuntime,
    root: &str,
) -> Result<Judged, compile::CompileError> {
    let mut findings = validate::validate_resolved(profile, root);
    let structural_warnings = findings.warnings.len();
    let judged = |findings: Findings, instructions: Option<usize>| Judged {
        findings,
        instructions,
        structural_warnings,
    };
    if let Err(too_large) = render(profile).check_size() {
        findings.errors.push(Problem {
            path: whole(root),
            message: too_large.to_string(),
        });
        return Ok(judged(findings, None));
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
    let blocked = blocked_after_filter(profile, runtime.calls_after_filter);
    // A warning, like the calls every runc makes (validate::RUNC_NEEDS_ALWAYS): the file is
    // installed as written, and pods using it fail at start on this node, as they would
    // under a refused profile, but with the runtime's own error.
    if !blocked.is_empty() {
        findings.warnings.push(Problem {
            path: at("syscalls".into()),
            message: format!(
                "{} calls {} after loading the filter and before the container's process starts, so no container starts under this profile on such a node: allow them",
                runtime.describe(),
                blocked.join(", ")
            ),
        });
    }
    if !findings.is_valid() {
        // libseccomp may misbehave on values validation refused (errno truncation).
        return Ok(judged(findings, None));
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
    Ok(judged(findings, instructions))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An allowlist with everything runc 1.1 needs and what `ls` calls, but not what runc 1.5
    /// calls after loading the filter.
    fn allowlist_without(missing: &[&str]) -> OciProfile {
        let names: Vec<&str> = [
            "access",
            "arch_prctl",
            "brk",
            "capget",
            "capset",
            "chdir",
            "close",
            "execve",
            "exit_group",
            "fcntl",
            "fstat",
            "fstatfs",
            "futex",
            "getdents64",
            "mmap",
            "mprotect",
            "newfstatat",
            "openat",
            "prctl",
            "read",
            "readlinkat",
            "rt_sigreturn",
            "setgid",
            "setgroups",
            "setuid",
            "statx",
            "write",
        ]
        .into_iter()
        .filter(|n| !missing.contains(n))
        .collect();
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{ "names": names, "action": "SCMP_ACT_ALLOW" }],
        }))
        .unwrap()
    }

    fn on(runtime: &str, profile: &OciProfile) -> Result<Vec<String>, NodeCheckError> {
        check_for_node_with(profile, &NodeRuntime::of(runtime.parse().unwrap())).map(|v| v.warnings)
    }

    /// The warnings of an accepted profile.
    fn warnings(runtime: &str, profile: &OciProfile) -> Vec<String> {
        on(runtime, profile).expect("accepted")
    }

    #[test]
    fn runc_1_5_nodes_warn_of_a_profile_that_blocks_the_calls_runc_makes_after_the_filter() {
        let profile = allowlist_without(&["statx", "readlinkat"]);
        let said = warnings("runc/1.5.3", &profile).join("; ");
        assert!(
            said.contains("runc/1.5.3") && said.contains("readlinkat, statx"),
            "{said}"
        );
        for quiet in ["runc/1.1.5", "crun/1.19"] {
            assert!(
                !warnings(quiet, &profile).join("; ").contains("statx"),
                "{quiet}"
            );
        }
        let complete = allowlist_without(&[]);
        assert!(
            !warnings("runc/1.5.3", &complete)
                .join("; ")
                .contains("statx")
        );
    }

    #[test]
    fn the_node_warnings_are_those_that_depend_on_the_node() {
        let profile = allowlist_without(&["statx"]);
        let check = |runtime: &str| {
            check_for_node_with(&profile, &NodeRuntime::of(runtime.parse().unwrap()))
                .expect("accepted")
        };
        let newer = check("runc/1.5.3");
        assert_eq!(newer.node_warnings.len(), 1, "{:?}", newer.node_warnings);
        assert!(
            newer.node_warnings[0]
                .starts_with("spec.syscalls: this node's runtime (runc/1.5.3) calls statx"),
            "{:?}",
            newer.node_warnings
        );
        // The allowlist also lacks what runc calls without no_new_privs: a structural warning,
        // the same on every node, which is not the node's to tell.
        let structural: Vec<&String> = newer
            .warnings
            .iter()
            .filter(|w| !newer.node_warnings.contains(w))
            .collect();
        assert!(
            structural
                .iter()
                .any(|w| w.contains("allowPrivilegeEscalation")),
            "{:?}",
            newer.warnings
        );
        let older = check("runc/1.1.5");
        assert!(older.node_warnings.is_empty(), "{:?}", older.node_warnings);
        assert_eq!(older.warnings.len(), structural.len());
    }

    #[test]
    fn an_audited_profile_lets_those_calls_run() {
        let profile = allowlist_without(&["statx"]).audited();
        assert!(
            !warnings("runc/1.5.3", &profile)
                .join("; ")
                .contains("statx")
        );
    }
}
