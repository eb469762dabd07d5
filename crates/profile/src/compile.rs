//! The libseccomp check: compiles a resolved profile for one architecture the way runc 1.1
//! does (filter with the default action, add the extra architectures, add each rule, export
//! the BPF program) and checks the program fits the kernel's limit. Bounded in time: the input
//! is weighed up front and the compile runs in a thread with a deadline.

use std::io::Read;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
    ScmpVersion, error::SeccompError,
};
use thiserror::Error;

use super::limits::{COMPILE_BUDGET, MAX_BPF_INSTRUCTIONS, MAX_ERRNO, MAX_WEIGHT};
use super::model::{Action, Arch, ArgCondition, Operator, SyscallRule};
use super::render::OciProfile;
use super::syscalls::LIBSECCOMP_VERSION;
use super::validate::is_big_endian;

/// Why libseccomp (or the kernel's limits) would refuse a profile.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The target architecture cannot hold one of the profile's architectures.
    #[error(
        "architectures[{index}]: {arch} cannot be added to a filter for {target} ({source}); it is {reason}: remove it"
    )]
    Architecture {
        /// Position in `architectures`.
        index: usize,
        /// The architecture.
        arch: Arch,
        /// The node's architecture.
        target: Arch,
        /// Why, in words.
        reason: &'static str,
        /// libseccomp's error.
        source: SeccompError,
    },
    /// libseccomp refused a rule.
    #[error("{path}: libseccomp refuses the rule for {name} ({source}): {fix}")]
    Rule {
        /// Field path of the rule.
        path: String,
        /// The system call.
        name: String,
        /// What to change.
        fix: &'static str,
        /// libseccomp's error.
        source: SeccompError,
    },
    /// libseccomp refused the default action or the filter setup.
    #[error("{what}: libseccomp refuses it ({source})")]
    Filter {
        /// What was being set up.
        what: &'static str,
        /// libseccomp's error.
        source: SeccompError,
    },
    /// A value libseccomp would silently truncate.
    #[error("{path}: {value} is out of range: use 0 to {MAX_ERRNO}")]
    Errno {
        /// Field path.
        path: String,
        /// The value.
        value: u32,
    },
    /// The program is longer than the kernel accepts.
    #[error(
        "syscalls: the filter compiles to {instructions} BPF instructions for {target}, over the kernel's limit of {MAX_BPF_INSTRUCTIONS} ('error loading seccomp filter: invalid argument'): merge rules, drop argument conditions, or list fewer architectures"
    )]
    TooLarge {
        /// Instructions in the exported program.
        instructions: usize,
        /// The architecture compiled for.
        target: Arch,
    },
    /// The profile is too big to compile within the time budget.
    #[error(
        "syscalls: the profile has {weight} argument conditions over all its (system call, rule) pairs, over the {MAX_WEIGHT} libseccomp compiles in reasonable time (such filters nearly always exceed the kernel's {MAX_BPF_INSTRUCTIONS}-instruction limit too): drop argument conditions or merge rules"
    )]
    TooComplex {
        /// The profile's [`weight`].
        weight: usize,
    },
    /// The compile did not finish within [`COMPILE_BUDGET`].
    #[error(
        "syscalls: compiling the filter took longer than {}s: simplify the profile (fewer rules with argument conditions)", COMPILE_BUDGET.as_secs()
    )]
    Timeout,
    /// The compile thread or the export pipe failed; not the profile's fault.
    #[error("compiling the filter failed: {0}")]
    Internal(String),
    /// An earlier compile that ran out of time has not stopped yet; no second one is started
    /// beside it.
    #[error("an earlier compile that ran out of time is still stopping")]
    Busy,
}

impl CompileError {
    /// True when the compile did not reach a verdict on the profile (it ran out of time, or
    /// failed or waited for reasons of its own): worth trying again later, never to be
    /// remembered as a rejection. libseccomp failing to create, set up or export the filter
    /// counts as its own failure: validation has refused every value that would make it
    /// refuse them (a rule it refuses is a verdict, [`CompileError::Rule`]).
    pub fn is_unfinished(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Internal(_) | Self::Busy | Self::Filter { .. }
        )
    }
}

/// What a successful compile found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    /// Length of the BPF program libseccomp produced.
    pub instructions: usize,
    /// Things the runtime silently skips or changes, with the fix.
    pub warnings: Vec<String>,
}

/// The architecture this process runs on, if seccompd knows it.
pub fn native_arch() -> Option<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => Some(Arch::X86_64),
        "x86" => Some(Arch::X86),
        "aarch64" => Some(Arch::Aarch64),
        "arm" => Some(Arch::Arm),
        "powerpc64" if cfg!(target_endian = "little") => Some(Arch::Ppc64le),
        "powerpc64" => Some(Arch::Ppc64),
        "s390x" => Some(Arch::S390x),
        "riscv64" => Some(Arch::Riscv64),
        "mips64" if cfg!(target_endian = "little") => Some(Arch::Mipsel64),
        "mips64" => Some(Arch::Mips64),
        "mips" if cfg!(target_endian = "little") => Some(Arch::Mipsel),
        "mips" => Some(Arch::Mips),
        _ => None,
    }
}

/// The libseccomp token for `arch`.
pub fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::X86 => ScmpArch::X86,
        Arch::X86_64 => ScmpArch::X8664,
        Arch::X32 => ScmpArch::X32,
        Arch::Arm => ScmpArch::Arm,
        Arch::Aarch64 => ScmpArch::Aarch64,
        Arch::Mips => ScmpArch::Mips,
        Arch::Mips64 => ScmpArch::Mips64,
        Arch::Mips64N32 => ScmpArch::Mips64N32,
        Arch::Mipsel => ScmpArch::Mipsel,
        Arch::Mipsel64 => ScmpArch::Mipsel64,
        Arch::Mipsel64N32 => ScmpArch::Mipsel64N32,
        Arch::Ppc => ScmpArch::Ppc,
        Arch::Ppc64 => ScmpArch::Ppc64,
        Arch::Ppc64le => ScmpArch::Ppc64Le,
        Arch::S390 => ScmpArch::S390,
        Arch::S390x => ScmpArch::S390X,
        Arch::Parisc => ScmpArch::Parisc,
        Arch::Parisc64 => ScmpArch::Parisc64,
        Arch::Riscv64 => ScmpArch::Riscv64,
    }
}

/// How much work libseccomp will do: the argument conditions over all (call, rule) pairs,
/// that is, for every rule its names times its conditions. Rules without conditions are cheap
/// (one comparison per call) and weigh nothing.
pub fn weight(profile: &OciProfile) -> usize {
    profile
        .syscalls
        .iter()
        .map(|r| r.names.len().saturating_mul(r.args.len()))
        .fold(0usize, usize::saturating_add)
}

/// Compiles `profile` for a node of architecture `target`, within [`COMPILE_BUDGET`].
///
/// Expects a profile that passed [`super::validate::validate_resolved`]; values libseccomp
/// would truncate are refused here too.
///
/// The compile runs in a thread of its own. One that runs out of time is told to stop, and
/// does so before its next rule or before the export (libseccomp cannot be interrupted inside
/// a call); while it has not stopped, further compiles answer [`CompileError::Busy`] instead of
/// starting a second one, so at most one abandoned compile ever runs. (A child process could
/// be killed outright, but it would need an entry point of its own in the binary and a process
/// per compile; with the work bounded up front by [`MAX_WEIGHT`], a thread that stops before
/// its next rule and is never doubled bounds the waste as well.)
pub fn compile(profile: &OciProfile, target: Arch) -> Result<Compiled, CompileError> {
    compile_within(profile, target, COMPILE_BUDGET, &ABANDONED)
}

/// [`compile`] with a given budget, counting abandoned threads in `abandoned_count`.
fn compile_within(
    profile: &OciProfile,
    target: Arch,
    budget: Duration,
    abandoned_count: &'static AtomicUsize,
) -> Result<Compiled, CompileError> {
    let weight = weight(profile);
    if weight > MAX_WEIGHT {
        return Err(CompileError::TooComplex { weight });
    }
    if abandoned_count.load(Ordering::Acquire) > 0 {
        return Err(CompileError::Busy);
    }
    let (tx, rx) = mpsc::channel();
    let owned = profile.clone();
    let state = Arc::new(AtomicU8::new(RUNNING));
    let thread_state = state.clone();
    thread::Builder::new()
        .name("seccomp-compile".into())
        .spawn(move || {
            let result = compile_now(&owned, target, &thread_state);
            if thread_state
                .compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // Abandoned: the caller counted this thread, and nobody waits for the result.
                abandoned_count.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            // The receiver may be gone; nothing to do then.
            let _ = tx.send(result);
        })
        .map_err(|e| CompileError::Internal(format!("cannot start the compile thread: {e}")))?;
    match rx.recv_timeout(budget) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Counted before the thread can see the abandonment, so its decrement never
            // comes first.
            abandoned_count.fetch_add(1, Ordering::AcqRel);
            if state
                .compare_exchange(
                    RUNNING,
                    ABANDONED_STATE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                // It finished just now after all: nothing runs on.
                abandoned_count.fetch_sub(1, Ordering::AcqRel);
                return rx.recv().unwrap_or(Err(CompileError::Timeout));
            }
            Err(CompileError::Timeout)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(CompileError::Internal(
            "the compile thread ended without an answer".into(),
        )),
    }
}

/// Compile threads that ran out of time and have not stopped yet (0 or 1).
static ABANDONED: AtomicUsize = AtomicUsize::new(0);

/// States of one compile: running, finished with a result, or abandoned by its caller.
const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED_STATE: u8 = 2;

/// Whether the caller gave up on this compile.
fn abandoned(state: &AtomicU8) -> bool {
    state.load(Ordering::Acquire) == ABANDONED_STATE
}

/// The runtime's mapping of an action and its errno.
fn scmp_action(action: Action, errno: Option<u32>, path: &str) -> Result<ScmpAction, CompileError> {
    // runc and crun default an unset errnoRet to EPERM.
    let errno = errno.unwrap_or(1);
    let checked = || {
        u16::try_from(errno)
            .ok()
            .filter(|e| u32::from(*e) <= MAX_ERRNO)
            .ok_or_else(|| CompileError::Errno {
                path: path.to_string(),
                value: errno,
            })
    };
    Ok(match action {
        Action::Kill | Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
        Action::Trap => ScmpAction::Trap,
        Action::Errno => ScmpAction::Errno(i32::from(checked()?)),
        Action::Trace => ScmpAction::Trace(checked()?),
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        Action::Notify => ScmpAction::Notify,
    })
}

fn comparator(arg: &ArgCondition) -> ScmpArgCompare {
    let op = match arg.op {
        Operator::NotEqual => ScmpCompareOp::NotEqual,
        Operator::LessThan => ScmpCompareOp::Less,
        Operator::LessOrEqual => ScmpCompareOp::LessOrEqual,
        Operator::Equal => ScmpCompareOp::Equal,
        Operator::GreaterOrEqual => ScmpCompareOp::GreaterEqual,
        Operator::GreaterThan => ScmpCompareOp::Greater,
        // OCI: (argument & value) == valueTwo; libseccomp: mask first, then the datum.
        Operator::MaskedEqual => {
            return ScmpArgCompare::new(
                arg.index,
                ScmpCompareOp::MaskedEqual(arg.value),
                arg.value_two,
            );
        }
    };
    ScmpArgCompare::new(arg.index, op, arg.value)
}

fn arch_reason(arch: Arch, target: Arch) -> &'static str {
    let be = is_big_endian;
    match (be(arch), be(target)) {
        (true, false) => "big-endian and this node is little-endian",
        (false, true) => "little-endian and this node is big-endian",
        _ => "not supported together with the node's architecture",
    }
}

fn compile_now(
    profile: &OciProfile,
    target: Arch,
    state: &AtomicU8,
) -> Result<Compiled, CompileError> {
    let (ctx, warnings) = build_filter_unless(profile, target, || abandoned(state))?;
    if abandoned(state) {
        return Err(CompileError::Timeout);
    }
    let instructions = export_len(&ctx)? / 8;
    if instructions > MAX_BPF_INSTRUCTIONS {
        return Err(CompileError::TooLarge {
            instructions,
            target,
        });
    }
    Ok(Compiled {
        instructions,
        warnings,
    })
}

/// Builds the libseccomp filter for `profile` on a node of architecture `target`, the way
/// runc 1.1 does; `seccompd run` loads what this builds, so a profile runs as it was checked.
/// Returns the filter and the warnings of [`Compiled`]. Unbounded in time: call [`compile`]
/// first for a profile that may be heavy.
pub fn build_filter(
    profile: &OciProfile,
    target: Arch,
) -> Result<(ScmpFilterContext, Vec<String>), CompileError> {
    build_filter_unless(profile, target, || false)
}

/// [`build_filter`], giving up with [`CompileError::Timeout`] before the next rule once
/// `abandoned` says so.
fn build_filter_unless(
    profile: &OciProfile,
    target: Arch,
    abandoned: impl Fn() -> bool,
) -> Result<(ScmpFilterContext, Vec<String>), CompileError> {
    let mut warnings = Vec::new();
    let default = scmp_action(
        profile.default_action,
        profile.default_errno_ret,
        "defaultErrnoRet",
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|source| CompileError::Filter {
        what: "defaultAction",
        source,
    })?;
    let target_token = scmp_arch(target);
    if native_arch() != Some(target) {
        // Compiling for another node: make the filter look like one created there.
        let setup = |ctx: &mut ScmpFilterContext| -> Result<(), SeccompError> {
            ctx.remove_arch(ScmpArch::Native)?;
            ctx.add_arch(target_token)?;
            Ok(())
        };
        setup(&mut ctx).map_err(|source| CompileError::Filter {
            what: "the target architecture",
            source,
        })?;
    }
    for (index, &arch) in profile.architectures.iter().enumerate() {
        ctx.add_arch(scmp_arch(arch))
            .map_err(|source| CompileError::Architecture {
                index,
                arch,
                target,
                reason: arch_reason(arch, target),
                source,
            })?;
    }
    let mut unknown = Vec::new();
    for (i, rule) in profile.syscalls.iter().enumerate() {
        if abandoned() {
            return Err(CompileError::Timeout);
        }
        add_rule(&mut ctx, rule, i, profile, &mut unknown)?;
    }
    if !unknown.is_empty() {
        unknown.sort();
        unknown.dedup();
        warnings.push(format!(
            "syscalls: libseccomp {} does not know {}; runc and crun skip such names, so these rules have no effect on this node",
            libseccomp_version(),
            unknown.join(", ")
        ));
    }
    Ok((ctx, warnings))
}

/// The version of the libseccomp this process compiles with: the one that did not know a
/// name, which may be newer than the one the name table was made from.
fn libseccomp_version() -> String {
    ScmpVersion::current().map_or_else(
        |_| format!("(version unknown; the name table is from {LIBSECCOMP_VERSION})"),
        |v| v.to_string(),
    )
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    rule: &SyscallRule,
    i: usize,
    profile: &OciProfile,
    unknown: &mut Vec<String>,
) -> Result<(), CompileError> {
    let path = format!("syscalls[{i}]");
    let action = scmp_action(rule.action, rule.errno_ret, &format!("{path}.errnoRet"))?;
    let default = scmp_action(
        profile.default_action,
        profile.default_errno_ret,
        "defaultErrnoRet",
    )?;
    if action == default {
        // runc skips a rule whose action equals the default; libseccomp would refuse it.
        return Ok(());
    }
    let conditions: Vec<ScmpArgCompare> = rule.args.iter().map(comparator).collect();
    // Two conditions on one argument cannot be ANDed by libseccomp; runc then adds one rule per
    // condition (an OR).
    let repeated = rule
        .args
        .iter()
        .enumerate()
        .any(|(k, a)| rule.args[..k].iter().any(|b| b.index == a.index));
    for (j, name) in rule.names.iter().enumerate() {
        // libseccomp takes rule numbers in this machine's numbering and translates them by
        // name for every architecture in the filter (a call this machine lacks gets a
        // negative pseudo-number that translates too), as runc does on the node itself.
        let Ok(nr) = ScmpSyscall::from_name(name) else {
            unknown.push(name.to_string());
            continue;
        };
        let rule_err = |source: SeccompError| CompileError::Rule {
            path: format!("{path}.names[{j}]"),
            name: name.to_string(),
            fix: "check the rule's action and argument conditions against the other rules for this call",
            source,
        };
        if conditions.is_empty() {
            ctx.add_rule(action, nr).map_err(rule_err)?;
        } else if repeated {
            for c in &conditions {
                ctx.add_rule_conditional(action, nr, std::slice::from_ref(c))
                    .map_err(rule_err)?;
            }
        } else {
            ctx.add_rule_conditional(action, nr, &conditions)
                .map_err(rule_err)?;
        }
    }
    Ok(())
}

/// Exports the BPF program through a pipe and returns its length in bytes.
fn export_len(ctx: &ScmpFilterContext) -> Result<usize, CompileError> {
    let (mut reader, writer) = std::io::pipe()
        .map_err(|e| CompileError::Internal(format!("cannot create a pipe: {e}")))?;
    let counter = thread::Builder::new()
        .name("seccomp-export".into())
        .spawn(move || -> std::io::Result<usize> {
            let mut total = 0;
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf)? {
                    0 => return Ok(total),
                    n => total += n,
                }
            }
        })
        .map_err(|e| CompileError::Internal(format!("cannot start the export reader: {e}")))?;
    let exported = ctx.export_bpf(&writer);
    drop(writer);
    let read = counter
        .join()
        .map_err(|_| CompileError::Internal("the export reader panicked".into()))?
        .map_err(|e| CompileError::Internal(format!("reading the exported filter: {e}")))?;
    exported.map_err(|source| CompileError::Filter {
        what: "exporting the filter",
        source,
    })?;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscalls::{NEWER_THAN_LIBSECCOMP, SYSCALL_NAMES};

    fn denylist(rules: Vec<SyscallRule>) -> OciProfile {
        OciProfile {
            default_action: Action::Allow,
            default_errno_ret: None,
            architectures: vec![],
            flags: vec![],
            syscalls: rules,
        }
    }

    fn arg_rule(names: &[&str], index: u32, value: u64) -> SyscallRule {
        SyscallRule {
            names: names.iter().map(|&n| n.into()).collect(),
            action: Action::Errno,
            errno_ret: None,
            args: vec![ArgCondition {
                index,
                value,
                value_two: 0,
                op: Operator::Equal,
            }],
        }
    }

    #[test]
    fn small_profile_compiles_to_a_short_program() {
        let p = denylist(vec![arg_rule(&["mkdir"], 0, 1)]);
        let out = compile(&p, Arch::X86_64).unwrap();
        assert!(out.instructions > 4 && out.instructions < 40, "{out:?}");
    }

    #[test]
    fn big_endian_arch_is_refused_on_a_little_endian_target() {
        let mut p = denylist(vec![]);
        p.architectures = vec![Arch::X86, Arch::S390x];
        let err = compile(&p, Arch::X86_64).unwrap_err().to_string();
        assert!(
            err.starts_with("architectures[1]: SCMP_ARCH_S390X"),
            "{err}"
        );
        assert!(err.contains("big-endian"), "{err}");
        // ... and the other way round on an s390x node.
        let mut q = denylist(vec![]);
        q.architectures = vec![Arch::S390, Arch::X86];
        let err = compile(&q, Arch::S390x).unwrap_err().to_string();
        assert!(
            err.contains("little-endian and this node is big-endian"),
            "{err}"
        );
        q.architectures = vec![Arch::S390];
        assert!(compile(&q, Arch::S390x).is_ok());
    }

    /// A name the installed libseccomp does not know is skipped with a warning naming that
    /// libseccomp.
    #[test]
    fn unknown_names_become_a_warning() {
        let unknown = NEWER_THAN_LIBSECCOMP
            .iter()
            .copied()
            .find(|n| ScmpSyscall::from_name(n).is_err())
            .expect("a name of NEWER_THAN_LIBSECCOMP that the installed libseccomp does not know");
        let p = denylist(vec![arg_rule(&[unknown, "mkdir"], 0, 1)]);
        let out = compile(&p, Arch::X86_64).unwrap();
        let installed = ScmpVersion::current().unwrap();
        assert!(
            out.warnings[0].contains(&format!("libseccomp {installed} does not know {unknown};")),
            "{out:?}"
        );
    }

    #[test]
    fn unconditional_rules_weigh_nothing() {
        let names: Vec<&str> = SYSCALL_NAMES.iter().copied().take(400).collect();
        let mut rule = arg_rule(&names, 0, 1);
        rule.args.clear();
        assert_eq!(weight(&denylist(vec![rule.clone(), rule])), 0);
    }

    #[test]
    fn many_argument_rules_exceed_the_kernel_limit() {
        // 600 two-condition rules over 300 calls plus unconditional rules for the other calls
        // (runc saw 4500 one-condition rules on one call compile to 4531 instructions).
        let mut p = spread(600, 2);
        let mut plain = arg_rule(&[], 0, 0);
        plain.args.clear();
        plain.names = x86_64_names()
            .into_iter()
            .skip(300)
            .map(Into::into)
            .collect();
        p.syscalls.push(plain);
        assert_eq!(weight(&p), MAX_WEIGHT);
        // A verdict, not a timeout: the compile finished and measured the program.
        let err = compile(&p, Arch::X86_64).unwrap_err();
        assert!(
            matches!(err, CompileError::TooLarge { instructions, .. } if instructions > 4096),
            "{err}"
        );
    }

    /// Names that are system calls on x86_64, minus execve.
    fn x86_64_names() -> Vec<&'static str> {
        SYSCALL_NAMES
            .iter()
            .copied()
            .filter(|n| {
                *n != "execve"
                    && ScmpSyscall::from_name_by_arch(n, ScmpArch::X8664)
                        .is_ok_and(|s| i32::from(s) >= 0)
            })
            .collect()
    }

    /// One rule per (call, value) pair with `conds` conditions, spread over many calls: the
    /// shape libseccomp 2.5 is slowest on.
    fn spread(pairs: usize, conds: u32) -> OciProfile {
        let pool: Vec<&str> = SYSCALL_NAMES
            .iter()
            .copied()
            .filter(|n| {
                ScmpSyscall::from_name_by_arch(n, ScmpArch::X8664).is_ok_and(|s| i32::from(s) >= 0)
            })
            .take(300)
            .collect();
        denylist(
            (0..pairs)
                .map(|i| SyscallRule {
                    names: vec![pool[i % pool.len()].into()],
                    action: Action::Errno,
                    errno_ret: None,
                    args: (0..conds)
                        .map(|k| ArgCondition {
                            index: k,
                            value: (i * 10) as u64 + u64::from(k),
                            value_two: 0,
                            op: Operator::Equal,
                        })
                        .collect(),
                })
                .collect(),
        )
    }

    /// Every shape at the weight bound gets a verdict from the compile (it compiles, or its
    /// program is too long): none runs out of [`COMPILE_BUDGET`]. One over the bound is refused
    /// by its weight. How long these compiles take is the bench's business, not a unit test's.
    #[test]
    fn worst_shapes_at_the_bound_get_a_verdict() {
        for conds in [1, 2, 6] {
            let p = spread(MAX_WEIGHT / conds as usize, conds);
            assert_eq!(weight(&p), MAX_WEIGHT);
            match compile(&p, Arch::X86_64) {
                Ok(_) | Err(CompileError::TooLarge { .. }) => {}
                Err(e) => panic!("{conds} conditions per rule: {e:?}"),
            }
        }
        assert!(matches!(
            compile(&spread(MAX_WEIGHT + 1, 1), Arch::X86_64),
            Err(CompileError::TooComplex { .. })
        ));
    }

    /// Waits until no compile that `abandoned` counts is running. Always ends: an abandoned
    /// compile stops at its next rule, and would end at its last one otherwise.
    fn wait_until_stopped(abandoned: &AtomicUsize) {
        while abandoned.load(Ordering::Acquire) > 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_compile_out_of_time_is_unfinished_and_its_thread_stops() {
        static ABANDONED_HERE: AtomicUsize = AtomicUsize::new(0);
        let heavy = spread(MAX_WEIGHT / 6, 6);
        let err =
            compile_within(&heavy, Arch::X86_64, Duration::ZERO, &ABANDONED_HERE).unwrap_err();
        assert!(matches!(err, CompileError::Timeout), "{err}");
        assert!(err.is_unfinished());
        assert!(!CompileError::TooComplex { weight: 1 }.is_unfinished());
        wait_until_stopped(&ABANDONED_HERE);
        let small = denylist(vec![arg_rule(&["mkdir"], 0, 1)]);
        assert!(compile_within(&small, Arch::X86_64, COMPILE_BUDGET, &ABANDONED_HERE).is_ok());
        assert_eq!(ABANDONED_HERE.load(Ordering::Acquire), 0);
    }

    #[test]
    fn no_compile_starts_beside_an_abandoned_one() {
        static STILL_STOPPING: AtomicUsize = AtomicUsize::new(1);
        let small = denylist(vec![arg_rule(&["mkdir"], 0, 1)]);
        let err =
            compile_within(&small, Arch::X86_64, COMPILE_BUDGET, &STILL_STOPPING).unwrap_err();
        assert!(matches!(err, CompileError::Busy), "{err}");
        assert!(err.is_unfinished());
        STILL_STOPPING.store(0, Ordering::Release);
        assert!(compile_within(&small, Arch::X86_64, COMPILE_BUDGET, &STILL_STOPPING).is_ok());
    }

    /// An abandoned build asks before each rule and adds none after it is told to stop.
    #[test]
    fn an_abandoned_build_stops_before_its_next_rule() {
        let heavy = spread(MAX_WEIGHT / 6, 6);
        let rules = heavy.syscalls.len();
        for stop_before in [0, 1, rules / 2] {
            let asked = AtomicUsize::new(0);
            let result = build_filter_unless(&heavy, Arch::X86_64, || {
                asked.fetch_add(1, Ordering::AcqRel) >= stop_before
            });
            assert!(matches!(result, Err(CompileError::Timeout)));
            assert_eq!(asked.load(Ordering::Acquire), stop_before + 1);
        }
        let asked = AtomicUsize::new(0);
        let built = build_filter_unless(&heavy, Arch::X86_64, || {
            asked.fetch_add(1, Ordering::AcqRel);
            false
        });
        assert!(built.is_ok());
        assert_eq!(asked.load(Ordering::Acquire), rules);
    }

    /// Too heavy a profile is refused by its weight before any compile starts: even with no
    /// time at all, and beside an abandoned compile, the answer is the weight, not a timeout or
    /// busy.
    #[test]
    fn slow_shapes_are_refused_up_front() {
        static STILL_STOPPING: AtomicUsize = AtomicUsize::new(1);
        let names: Vec<&str> = SYSCALL_NAMES.iter().copied().take(400).collect();
        let rules: Vec<_> = (0..15).map(|v| arg_rule(&names, 0, v)).collect();
        let err = compile_within(
            &denylist(rules),
            Arch::X86_64,
            Duration::ZERO,
            &STILL_STOPPING,
        )
        .unwrap_err();
        assert!(
            matches!(err, CompileError::TooComplex { weight: 6000 }),
            "{err}"
        );
    }
}
