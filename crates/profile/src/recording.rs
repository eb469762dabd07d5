//! What a recording turns into: the system calls seen while a workload ran, by ABI, and the
//! allowlist profile that permits exactly those. No I/O; `seccompd record` fills it from this
//! host, and a recorder in the cluster can fill and merge it the same way.

use std::collections::{BTreeMap, BTreeSet};

use libseccomp::ScmpSyscall;

use super::compile::scmp_arch;
use super::limits::MAX_PROFILE_NAME_LEN;
use super::model::{Action, Arch, ProfileSpec, SyscallName, SyscallRule};
use super::validate::validate_profile_name;

/// The name a recorded profile gets when none is given and the command's name cannot be one.
pub const FALLBACK_PROFILE_NAME: &str = "recorded";

/// Calls a recorded profile for pods allows whether or not the recorded run made them, since
/// whether a run makes them depends on timing, not on the workload: `rt_sigreturn` ends every
/// signal handler (runc's init is a Go program, whose runtime may send itself a preemption
/// signal at any moment after the filter is loaded: a recording of `ls /` in the local cluster
/// had it in one run and not in the next, and pods under the profile without it died in
/// runc's init), and `restart_syscall` resumes a call that a stop signal interrupted.
pub const TIMING_DEPENDENT_CALLS: &[&str] = &["restart_syscall", "rt_sigreturn"];

/// The system calls a workload made, by the ABI it made them through (a 64-bit program
/// calls through the native one; a 32-bit one on the same node through, say, SCMP_ARCH_X86).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordedCalls {
    by_arch: BTreeMap<Arch, BTreeSet<String>>,
}

impl RecordedCalls {
    /// Notes that `name` was called through `arch`.
    pub fn insert(&mut self, arch: Arch, name: &str) {
        let names = self.by_arch.entry(arch).or_default();
        if !names.contains(name) {
            names.insert(name.to_string());
        }
    }

    /// Adds every call of `other` (the calls of another process, container or replica).
    pub fn merge(&mut self, other: &RecordedCalls) {
        for (arch, names) in &other.by_arch {
            self.by_arch
                .entry(*arch)
                .or_default()
                .extend(names.iter().cloned());
        }
    }

    /// The names per ABI, each sorted, ABIs in declaration order.
    pub fn by_arch(&self) -> impl Iterator<Item = (Arch, &BTreeSet<String>)> {
        self.by_arch
            .iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(arch, names)| (*arch, names))
    }

    /// The distinct names over all ABIs, sorted.
    pub fn names(&self) -> BTreeSet<&str> {
        self.by_arch
            .values()
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// Whether `name` was called through any ABI.
    pub fn contains(&self, name: &str) -> bool {
        self.by_arch.values().any(|names| names.contains(name))
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.by_arch.values().all(BTreeSet::is_empty)
    }

    /// The allowlist for these calls on a node of architecture `native`: everything else
    /// fails with EPERM (`SCMP_ACT_ERRNO`); one rule allows the sorted names. `architectures`
    /// lists `native` first, then any other ABI the workload used, so that its calls are
    /// matched too.
    pub fn to_spec(&self, native: Arch) -> ProfileSpec {
        let mut architectures = vec![native];
        architectures.extend(
            self.by_arch
                .iter()
                .filter(|(arch, names)| **arch != native && !names.is_empty())
                .map(|(arch, _)| *arch),
        );
        let names: Vec<SyscallName> = self.names().into_iter().map(Into::into).collect();
        let syscalls = if names.is_empty() {
            Vec::new()
        } else {
            vec![SyscallRule {
                names,
                action: Action::Allow,
                errno_ret: None,
                args: Vec::new(),
            }]
        };
        ProfileSpec {
            base_profile_name: None,
            mode: Default::default(),
            default_action: Action::Errno,
            default_errno_ret: None,
            architectures,
            flags: Vec::new(),
            syscalls,
        }
    }
}

/// The name of system call `number` of ABI `arch`, as libseccomp (and so the node's runtime)
/// knows it; `None` for a number it cannot name. For recorders that see numbers: seccomp
/// notifications, audit records.
pub fn syscall_name(arch: Arch, number: i32) -> Option<String> {
    ScmpSyscall::from(number)
        .get_name_by_arch(scmp_arch(arch))
        .ok()
}

/// A SeccompProfile name for a recording of `command` (a path or a program name): the
/// program's file name, lowercased, with characters a name cannot hold turned into `-`;
/// [`FALLBACK_PROFILE_NAME`] when nothing valid is left.
pub fn profile_name_for(command: &str) -> String {
    let file_name = command.rsplit('/').next().unwrap_or(command);
    let mapped: String = file_name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '.') => c,
            _ => '-',
        })
        .take(MAX_PROFILE_NAME_LEN)
        .collect();
    let trimmed = mapped.trim_matches(|c| c == '-' || c == '.');
    if validate_profile_name(trimmed).is_valid() {
        trimmed.to_string()
    } else {
        FALLBACK_PROFILE_NAME.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(entries: &[(Arch, &str)]) -> RecordedCalls {
        let mut out = RecordedCalls::default();
        for (arch, name) in entries {
            out.insert(*arch, name);
        }
        out
    }

    #[test]
    fn one_allow_rule_with_sorted_distinct_names() {
        let rec = calls(&[
            (Arch::X86_64, "write"),
            (Arch::X86_64, "execve"),
            (Arch::X86_64, "write"),
            (Arch::X86_64, "exit_group"),
        ]);
        let spec = rec.to_spec(Arch::X86_64);
        assert_eq!(spec.default_action, Action::Errno);
        assert_eq!(spec.default_errno_ret, None);
        assert_eq!(spec.architectures, [Arch::X86_64]);
        assert_eq!(spec.base_profile_name, None);
        assert!(spec.flags.is_empty());
        assert_eq!(spec.syscalls.len(), 1);
        let rule = &spec.syscalls[0];
        assert_eq!(rule.action, Action::Allow);
        assert_eq!(rule.names, ["execve", "exit_group", "write"]);
        assert!(rule.args.is_empty() && rule.errno_ret.is_none());
    }

    #[test]
    fn other_abis_join_the_architectures_after_the_native_one() {
        let rec = calls(&[
            (Arch::X86, "socketcall"),
            (Arch::X86_64, "read"),
            (Arch::X32, "read"),
        ]);
        let spec = rec.to_spec(Arch::X86_64);
        assert_eq!(spec.architectures, [Arch::X86_64, Arch::X86, Arch::X32]);
        assert_eq!(spec.syscalls[0].names, ["read", "socketcall"]);
        // A native-only recording on arm64 names arm64 alone.
        let arm = calls(&[(Arch::Aarch64, "openat")]).to_spec(Arch::Aarch64);
        assert_eq!(arm.architectures, [Arch::Aarch64]);
    }

    #[test]
    fn merging_is_a_union_per_abi() {
        let mut a = calls(&[(Arch::X86_64, "read"), (Arch::X86_64, "write")]);
        let b = calls(&[(Arch::X86_64, "write"), (Arch::X86, "getpriority")]);
        a.merge(&b);
        assert_eq!(
            a,
            calls(&[
                (Arch::X86_64, "read"),
                (Arch::X86_64, "write"),
                (Arch::X86, "getpriority"),
            ])
        );
        assert!(a.contains("getpriority") && !a.contains("mkdir"));
        assert_eq!(
            a.names().into_iter().collect::<Vec<_>>(),
            ["getpriority", "read", "write"]
        );
    }

    #[test]
    fn nothing_recorded_gives_no_rule() {
        let rec = RecordedCalls::default();
        assert!(rec.is_empty());
        let spec = rec.to_spec(Arch::X86_64);
        assert!(spec.syscalls.is_empty());
        assert_eq!(spec.default_action, Action::Errno);
    }

    #[test]
    fn the_recorded_spec_passes_the_node_check() {
        let rec = calls(&[
            (Arch::X86_64, "execve"),
            (Arch::X86_64, "exit_group"),
            (Arch::X86_64, "write"),
        ]);
        let spec = rec.to_spec(Arch::X86_64);
        let oci = crate::resolve::resolve("true", &spec, |_| None).unwrap();
        let findings = crate::check::check_resolved(
            &oci,
            Arch::X86_64,
            &crate::check::NodeRuntime::default(),
            "spec",
        );
        assert!(findings.is_valid(), "{findings:?}");
        // The only remarks: what a container runtime calls besides the workload.
        assert!(
            findings
                .warnings
                .iter()
                .all(|w| w.message.contains("after loading the filter")),
            "{findings:?}"
        );
    }

    #[test]
    fn numbers_are_named_per_abi() {
        assert_eq!(syscall_name(Arch::X86_64, 59).as_deref(), Some("execve"));
        assert_eq!(syscall_name(Arch::X86, 11).as_deref(), Some("execve"));
        assert_eq!(syscall_name(Arch::Aarch64, 221).as_deref(), Some("execve"));
        assert_eq!(syscall_name(Arch::X86_64, 999), None);
    }

    #[test]
    fn names_come_from_the_program_file_name() {
        assert_eq!(profile_name_for("ls"), "ls");
        assert_eq!(profile_name_for("/usr/bin/python3.11"), "python3.11");
        assert_eq!(profile_name_for("./My_Tool"), "my-tool");
        assert_eq!(profile_name_for("/bin/["), FALLBACK_PROFILE_NAME);
        assert_eq!(profile_name_for("..."), FALLBACK_PROFILE_NAME);
        // The built-in recording profile's name is reserved.
        assert!(!validate_profile_name(crate::limits::RECORD_PROFILE).is_valid());
        assert_eq!(profile_name_for("/usr/bin/record"), FALLBACK_PROFILE_NAME);
        assert_eq!(profile_name_for(""), FALLBACK_PROFILE_NAME);
        let long = "a".repeat(300);
        let name = profile_name_for(&long);
        assert_eq!(name.len(), MAX_PROFILE_NAME_LEN);
        assert!(validate_profile_name(&name).is_valid());
    }
}
