//! Structural validation: what can be judged from a profile alone, without libseccomp or a
//! node. The same rules run at `kubectl apply` as CEL (the api crate's `profile_rules` adds
//! them to the CRD); this is the Rust side for the agent and the CLI, with warnings the API
//! server cannot give.
//!
//! Every finding names the field (`spec.syscalls[3].errnoRet`) and says how to fix it.

use std::fmt;

use super::limits::{
    DEFAULT_PROFILE, MAX_ARCHITECTURES, MAX_ARG_INDEX, MAX_ARGS_PER_RULE, MAX_ERRNO, MAX_FLAGS,
    MAX_NAMES_PER_RULE, MAX_PROFILE_NAME_LEN, MAX_RULES, MAX_SYSCALL_NAME_LEN, RECORD_PROFILE,
};
use super::model::{Action, Arch, ArgCondition, Flag, ProfileSpec, SyscallRule};
use super::render::OciProfile;
use super::syscalls;

/// System calls the runtime's init process makes after loading the filter when
/// `no_new_privs` is off (the Kubernetes default unless `allowPrivilegeEscalation: false`):
/// then runc and crun load the filter before they change user and groups, drop capabilities
/// and change directory, instead of just before `execve`. Found by `hack/runtime-needs.sh`,
/// which removes one name at a time from a working allowlist: runc 1.1.5 needs capget,
/// capset, chdir, fstat, getcwd, getppid, newfstatat, prctl, read, setgid, setgroups and
/// setuid; crun 1.8.1 needs capset, prctl, rt_sigaction, rt_sigprocmask, setresgid, setresuid
/// and write.
pub const RUNTIME_NEEDS_WITHOUT_NNP: &[&str] = &[
    "capget",
    "capset",
    "chdir",
    "fstat",
    "getcwd",
    "getppid",
    "newfstatat",
    "prctl",
    "read",
    "rt_sigaction",
    "rt_sigprocmask",
    "setgid",
    "setgroups",
    "setresgid",
    "setresuid",
    "setuid",
    "write",
];

/// System calls runc 1.1 makes after loading the filter even with `no_new_privs` on: it closes
/// inherited file descriptors by listing `/proc/self/fd` (openat, fstatfs, getdents64,
/// close), writes to its sync pipe, and its Go runtime may wait on a futex. Without each of the
/// first five the container never starts under runc (`hack/runtime-needs.sh`); without futex
/// it fails now and then. crun needs none of them.
pub const RUNC_NEEDS_ALWAYS: &[&str] =
    &["close", "fstatfs", "futex", "getdents64", "openat", "write"];

/// One finding: the field it concerns and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a field path such as `spec.syscalls[3].errnoRet`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Everything found in one profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Problems that make the profile unusable: it must not be installed.
    pub errors: Vec<Problem>,
    /// Problems that let it work only under some runtimes or pod settings.
    pub warnings: Vec<Problem>,
}

impl Findings {
    /// True when there is no error (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn error(&mut self, path: String, message: impl Into<String>) {
        self.errors.push(Problem {
            path,
            message: message.into(),
        });
    }

    pub(crate) fn warn(&mut self, path: String, message: impl Into<String>) {
        self.warnings.push(Problem {
            path,
            message: message.into(),
        });
    }

    /// Adds `other`'s findings to these.
    pub fn extend(&mut self, other: Findings) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }
}

/// The fields both [`ProfileSpec`] and [`OciProfile`] have.
struct View<'a> {
    default_action: Action,
    default_errno_ret: Option<u32>,
    architectures: &'a [Arch],
    flags: &'a [Flag],
    syscalls: &'a [SyscallRule],
    /// Rules may come from a base profile, so "execve is never allowed" cannot be judged.
    has_base: bool,
}

impl<'a> View<'a> {
    fn of(profile: &'a OciProfile) -> Self {
        View {
            default_action: profile.default_action,
            default_errno_ret: profile.default_errno_ret,
            architectures: &profile.architectures,
            flags: &profile.flags,
            syscalls: &profile.syscalls,
            has_base: false,
        }
    }
}

/// Validates a SeccompProfile spec as written (before base resolution). `root` prefixes
/// every path: `"spec"` for a SeccompProfile, `""` for a plain OCI file.
pub fn validate_spec(spec: &ProfileSpec, root: &str) -> Findings {
    let view = View {
        default_action: spec.default_action,
        default_errno_ret: spec.default_errno_ret,
        architectures: &spec.architectures,
        flags: &spec.flags,
        syscalls: &spec.syscalls,
        has_base: spec.base_profile_name.is_some(),
    };
    let mut out = check(&view, root);
    check_bounds(&view, root, &mut out);
    if let Some(base) = &spec.base_profile_name
        && (base.is_empty() || base.len() > MAX_PROFILE_NAME_LEN)
    {
        out.error(
                join(root, "baseProfileName"),
                format!(
                    "must be the name of another SeccompProfile (1 to {MAX_PROFILE_NAME_LEN} characters); fix or remove it"
                ),
            );
    }
    out
}

/// Validates a resolved, self-contained profile (what a node installs). `root` prefixes every
/// path, as in [`validate_spec`].
pub fn validate_resolved(profile: &OciProfile, root: &str) -> Findings {
    check(&View::of(profile), root)
}

/// Checks a SeccompProfile's `metadata.name`: a DNS subdomain short enough that
/// `<name>.json` is a valid file name.
pub fn validate_profile_name(name: &str) -> Findings {
    let mut out = Findings::default();
    let path = "metadata.name".to_string();
    if name.len() > MAX_PROFILE_NAME_LEN {
        out.error(
            path,
            format!(
                "is {} characters; at most {MAX_PROFILE_NAME_LEN} fit the node's file name <name>.json: shorten it",
                name.len()
            ),
        );
    } else if name == RECORD_PROFILE {
        out.error(
            path,
            format!("{RECORD_PROFILE:?} is reserved for the built-in recording profile seccompd/{RECORD_PROFILE}.json: choose another name"),
        );
    } else if name == DEFAULT_PROFILE {
        out.error(
            path,
            format!("{DEFAULT_PROFILE:?} is reserved for the built-in default profile seccompd/{DEFAULT_PROFILE}.json: choose another name"),
        );
    } else if !is_dns_subdomain(name) {
        out.error(
            path,
            "must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit: rename it",
        );
    }
    out
}

pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn join(root: &str, field: &str) -> String {
    if root.is_empty() {
        field.to_string()
    } else {
        format!("{root}.{field}")
    }
}

/// Whether the action lets the call run.
pub fn runs(action: Action) -> bool {
    matches!(action, Action::Allow | Action::Log)
}

/// Whether the action uses an errno (`errnoRet`, `defaultErrnoRet`).
pub fn takes_errno(action: Action) -> bool {
    matches!(action, Action::Errno | Action::Trace)
}

/// The size bounds of the SeccompProfile CRD (which keep its CEL rules within the API
/// server's cost budget). Only for what users write: a profile resolved with its bases may
/// exceed them.
fn check_bounds(p: &View<'_>, root: &str, out: &mut Findings) {
    let mut over = |field: String, len: usize, max: usize, fix: &str| {
        if len > max {
            out.error(
                field,
                format!("has {len} entries; at most {max} are allowed: {fix}"),
            );
        }
    };
    over(
        join(root, "architectures"),
        p.architectures.len(),
        MAX_ARCHITECTURES,
        "remove duplicates",
    );
    over(
        join(root, "flags"),
        p.flags.len(),
        MAX_FLAGS,
        "remove duplicates",
    );
    over(
        join(root, "syscalls"),
        p.syscalls.len(),
        MAX_RULES,
        "merge rules with the same action and arguments, or move some into a base profile",
    );
    for (i, rule) in p.syscalls.iter().enumerate() {
        let path = join(root, &format!("syscalls[{i}]"));
        over(
            format!("{path}.names"),
            rule.names.len(),
            MAX_NAMES_PER_RULE,
            "split the rule in two",
        );
        over(
            format!("{path}.args"),
            rule.args.len(),
            MAX_ARGS_PER_RULE,
            "one condition per argument; split the rule",
        );
    }
}

/// Checks a plain profile file against the SeccompProfile CRD's size bounds (what `kubectl
/// apply` of its import would hit).
pub fn validate_bounds(profile: &OciProfile, root: &str) -> Findings {
    let mut out = Findings::default();
    check_bounds(&View::of(profile), root, &mut out);
    out
}

fn check(p: &View<'_>, root: &str) -> Findings {
    let mut out = Findings::default();
    check_default(p, root, &mut out);
    check_architectures(p.architectures, root, &mut out);
    check_flags(p.flags, root, &mut out);
    for (i, rule) in p.syscalls.iter().enumerate() {
        check_rule(rule, &join(root, &format!("syscalls[{i}]")), p, &mut out);
    }
    check_conflicts(p, root, &mut out);
    check_execve(p, root, &mut out);
    check_runc_needs(p, root, &mut out);
    out
}

fn check_default(p: &View<'_>, root: &str, out: &mut Findings) {
    check_action(
        p.default_action,
        p.default_errno_ret,
        ActionFields {
            action: join(root, "defaultAction"),
            errno: join(root, "defaultErrnoRet"),
            remove_errno: "remove it or change defaultAction",
            zero_errno: "0 makes every unmatched call return success without running: use 1 (EPERM) to deny",
        },
        out,
    );
    if runs(p.default_action) && !p.has_base && !p.syscalls.iter().any(|r| !runs(r.action)) {
        out.warn(
            join(root, "defaultAction"),
            format!(
                "{} with no rule that denies anything filters nothing: add rules, or use the Unconfined profile type instead",
                p.default_action
            ),
        );
    }
}

/// Where an action and its errno live in the document, and how the findings on them read there
/// (the profile's default and each rule say it in their own words).
struct ActionFields {
    action: String,
    errno: String,
    remove_errno: &'static str,
    zero_errno: &'static str,
}

/// NOTIFY and the errno that goes with an action: the same checks for the default and each rule.
fn check_action(action: Action, errno_ret: Option<u32>, at: ActionFields, out: &mut Findings) {
    if action == Action::Notify {
        out.error(
            at.action,
            "SCMP_ACT_NOTIFY needs a user-space listener, which no kubelet-started container has: use SCMP_ACT_ERRNO or a kill action",
        );
    }
    let Some(errno) = errno_ret else { return };
    if errno > MAX_ERRNO {
        out.error(
            at.errno.clone(),
            format!("{errno} is out of range: use 0 to {MAX_ERRNO} (1 is EPERM, 38 is ENOSYS)"),
        );
    }
    if !takes_errno(action) {
        out.error(
            at.errno,
            format!(
                "is only used with SCMP_ACT_ERRNO or SCMP_ACT_TRACE (crun refuses it with {action}): {}",
                at.remove_errno
            ),
        );
    } else if errno == 0 {
        out.warn(at.errno, at.zero_errno);
    }
}

/// Whether `arch` is a big-endian ABI (libseccomp refuses to mix it with little-endian ones).
pub fn is_big_endian(arch: Arch) -> bool {
    matches!(
        arch,
        Arch::Mips
            | Arch::Mips64
            | Arch::Mips64N32
            | Arch::Ppc
            | Arch::Ppc64
            | Arch::S390
            | Arch::S390x
            | Arch::Parisc
            | Arch::Parisc64
    )
}

fn check_architectures(arches: &[Arch], root: &str, out: &mut Findings) {
    let path = join(root, "architectures");
    let big: Vec<&str> = arches
        .iter()
        .filter(|a| is_big_endian(**a))
        .map(|a| a.as_str())
        .collect();
    let little: Vec<&str> = arches
        .iter()
        .filter(|a| !is_big_endian(**a))
        .map(|a| a.as_str())
        .collect();
    if !big.is_empty() && !little.is_empty() {
        out.error(
            path.clone(),
            format!(
                "mixes big-endian ({}) and little-endian ({}) architectures; libseccomp refuses a big-endian one on a little-endian node and vice versa, so no node can load this: keep only the node's family (for x86_64 and arm64 nodes remove {})",
                big.join(", "),
                little.join(", "),
                big.join(", ")
            ),
        );
    }
    if let Some(i) = arches.iter().position(|a| *a == Arch::Riscv64) {
        out.warn(
            format!("{path}[{i}]"),
            "runc before 1.1.8 refuses SCMP_ARCH_RISCV64 ('not a valid arch'): remove it unless every node runs crun or a newer runc",
        );
    }
}

fn check_flags(flags: &[Flag], root: &str, out: &mut Findings) {
    let path = join(root, "flags");
    if !flags.is_empty() {
        out.warn(
            path,
            "runc before 1.2 (for example Debian 12's runc 1.1.5) refuses any flag ('seccomp flags are not yet supported by runc'), and a node whose runtime is not configured is taken to run runc 1.1: remove flags, or configure the nodes' runtime (the seccompd.dev/runtime node label)",
        );
    }
}

fn check_rule(rule: &SyscallRule, path: &str, p: &View<'_>, out: &mut Findings) {
    let names_path = format!("{path}.names");
    if rule.names.is_empty() {
        out.error(
            names_path.clone(),
            "is empty, so the rule matches nothing: list at least one system call name, or remove the rule",
        );
    }
    for (j, name) in rule.names.iter().enumerate() {
        check_name(name, &format!("{names_path}[{j}]"), out);
    }
    check_action(
        rule.action,
        rule.errno_ret,
        ActionFields {
            action: format!("{path}.action"),
            errno: format!("{path}.errnoRet"),
            remove_errno: "remove errnoRet or change the action",
            zero_errno: "0 makes the call return success without running it: use 1 (EPERM) to deny",
        },
        out,
    );
    for (k, arg) in rule.args.iter().enumerate() {
        check_arg(arg, &format!("{path}.args[{k}]"), out);
    }
    if rule.action == Action::Trace {
        out.warn(
            format!("{path}.action"),
            "SCMP_ACT_TRACE without a ptrace tracer makes the call fail with ENOSYS: use SCMP_ACT_ERRNO with errnoRet 38 to say so plainly",
        );
    }
    if rule.action == p.default_action
        && rule.errno_ret == p.default_errno_ret
        && rule.args.is_empty()
        && !p.has_base
    {
        out.warn(
            format!("{path}.action"),
            "is the same as defaultAction, so the rule has no effect (runc skips it): remove the rule or change its action",
        );
    }
}

pub(crate) fn check_name(name: &str, path: &str, out: &mut Findings) {
    if name.is_empty() {
        out.error(
            path.to_string(),
            "is empty: write a system call name such as \"openat\", or remove the entry",
        );
        return;
    }
    if !syscalls::is_well_formed(name) {
        let hint = match syscalls::suggest(name.trim()) {
            Some(s) => format!("; did you mean \"{s}\"?"),
            None => String::new(),
        };
        out.error(
            path.to_string(),
            format!(
                "{} is not a system call name (lowercase letters, digits and '_', at most {} characters){hint}",
                shorten(name),
                MAX_SYSCALL_NAME_LEN
            ),
        );
        return;
    }
    if !syscalls::is_known(name) {
        let hint = match syscalls::suggest(name) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => "check the spelling against the kernel's system call table".to_string(),
        };
        out.error(
            path.to_string(),
            format!(
                "\"{name}\" is not a system call on any architecture (runc and crun would silently ignore this entry): {hint}"
            ),
        );
    }
}

/// A name quoted for a message, cut short if it is long.
fn shorten(name: &str) -> String {
    let cut: String = name.chars().take(40).collect();
    if cut.len() < name.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

pub(crate) fn check_arg(arg: &ArgCondition, path: &str, out: &mut Findings) {
    if arg.index > MAX_ARG_INDEX {
        out.error(
            format!("{path}.index"),
            format!(
                "{} is not an argument position: system calls have six arguments, index 0 to {MAX_ARG_INDEX}",
                arg.index
            ),
        );
    }
}

/// Two unconditional rules for one system call with different outcomes: libseccomp keeps the
/// first and silently drops the other (runc and crun alike).
/// Rules with the default's outcome are skipped by runc, so they do not count.
fn check_conflicts(p: &View<'_>, root: &str, out: &mut Findings) {
    let rules = p.syscalls;
    let default = (p.default_action, p.default_errno_ret);
    let mut first: std::collections::HashMap<&str, (usize, Action, Option<u32>)> =
        std::collections::HashMap::new();
    for (i, rule) in rules.iter().enumerate() {
        if !rule.args.is_empty() || (rule.action, rule.errno_ret) == default {
            continue;
        }
        for (j, name) in rule.names.iter().enumerate() {
            let outcome = (rule.action, rule.errno_ret);
            match first.get(name.as_str()) {
                None => {
                    first.insert(name, (i, rule.action, rule.errno_ret));
                }
                Some(&(k, action, errno)) if k != i && (action, errno) != outcome => {
                    out.error(
                        join(root, &format!("syscalls[{i}].names[{j}]")),
                        format!(
                            "{name} already has a rule without conditions, syscalls[{k}] ({action}); libseccomp keeps that one and silently ignores this one: remove {name} from one of the two rules"
                        ),
                    );
                }
                Some(_) => {}
            }
        }
    }
}

/// A rule that matches every call of `execve` (no argument conditions).
fn unconditional_execve(rule: &SyscallRule) -> Option<usize> {
    if !rule.args.is_empty() {
        return None;
    }
    rule.names.iter().position(|n| n == "execve")
}

fn check_execve(p: &View<'_>, root: &str, out: &mut Findings) {
    for (i, rule) in p.syscalls.iter().enumerate() {
        if !runs(rule.action)
            && let Some(j) = unconditional_execve(rule)
        {
            out.error(
                    join(root, &format!("syscalls[{i}].names[{j}]")),
                    format!(
                        "denies execve with {}, so no container can start its process: remove \"execve\" from this rule",
                        rule.action
                    ),
                );
        }
    }
    if runs(p.default_action) || p.has_base {
        return;
    }
    let allowed = p
        .syscalls
        .iter()
        .any(|r| runs(r.action) && unconditional_execve(r).is_some());
    if !allowed {
        out.error(
            join(root, "defaultAction"),
            format!(
                "{} denies execve and no rule allows it, so no container can start its process: add \"execve\" to a rule with SCMP_ACT_ALLOW",
                p.default_action
            ),
        );
    }
}

fn check_runc_needs(p: &View<'_>, root: &str, out: &mut Findings) {
    if runs(p.default_action) || p.has_base {
        return;
    }
    let allowed = |name: &str| {
        p.syscalls
            .iter()
            .any(|r| runs(r.action) && r.args.is_empty() && r.names.iter().any(|n| n == name))
    };
    let lacking = |list: &[&'static str]| -> Vec<&'static str> {
        list.iter().copied().filter(|n| !allowed(n)).collect()
    };
    let always = lacking(RUNC_NEEDS_ALWAYS);
    if !always.is_empty() {
        out.warn(
            join(root, "syscalls"),
            format!(
                "the allowlist lacks {}, which runc calls after loading the filter and before starting the container's process, so pods using it fail to start on runc nodes (crun does not need them): allow them",
                always.join(", ")
            ),
        );
    }
    let missing = lacking(RUNTIME_NEEDS_WITHOUT_NNP);
    if !missing.is_empty() {
        out.warn(
            join(root, "syscalls"),
            format!(
                "the allowlist lacks {}, which runc or crun call after loading the filter unless the pod sets allowPrivilegeEscalation: false; such pods fail to start (runc: 'unable to setup user: ... operation not permitted'): allow them, or set allowPrivilegeEscalation: false in every pod using this profile",
                missing.join(", ")
            ),
        );
    }
}
