//! The seccomp profile as users write it: the OCI runtime-spec `LinuxSeccomp` format,
//! plus `baseProfileName`. Plain data; no Kubernetes or I/O types.
//!
//! Doc comments on these types become `kubectl explain seccompprofile.spec` text.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Declares a string enum whose wire names are the OCI/libseccomp constants.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The constant as it appears in profile JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// What the kernel does when a system call matches: SCMP_ACT_ALLOW runs it,
    /// SCMP_ACT_ERRNO fails it with errnoRet (default EPERM), SCMP_ACT_KILL_PROCESS and
    /// SCMP_ACT_KILL_THREAD (SCMP_ACT_KILL) kill, SCMP_ACT_TRAP sends SIGSYS, SCMP_ACT_LOG
    /// allows and logs, SCMP_ACT_TRACE notifies a ptrace tracer. SCMP_ACT_NOTIFY is rejected:
    /// no user-space listener is reachable through the kubelet.
    Action {
        /// Kill the calling thread (same as SCMP_ACT_KILL_THREAD).
        Kill = "SCMP_ACT_KILL",
        /// Kill the whole process.
        KillProcess = "SCMP_ACT_KILL_PROCESS",
        /// Kill the calling thread.
        KillThread = "SCMP_ACT_KILL_THREAD",
        /// Send SIGSYS to the calling thread.
        Trap = "SCMP_ACT_TRAP",
        /// Fail the call with errnoRet (EPERM when unset).
        Errno = "SCMP_ACT_ERRNO",
        /// Notify a ptrace tracer (ENOSYS without one).
        Trace = "SCMP_ACT_TRACE",
        /// Run the call.
        Allow = "SCMP_ACT_ALLOW",
        /// Run the call and log it.
        Log = "SCMP_ACT_LOG",
        /// Hand the call to a user-space listener; not usable through the kubelet.
        Notify = "SCMP_ACT_NOTIFY",
    }
}

wire_enum! {
    /// A CPU architecture (ABI) the filter also applies to, in addition to the node's native
    /// one. List only little-endian architectures for x86_64 and arm64 nodes: a big-endian one
    /// (MIPS, MIPS64, MIPS64N32, PPC, PPC64, S390, S390X, PARISC) makes runc and crun refuse the
    /// whole profile.
    #[allow(missing_docs)] // each variant is named after its architecture
    Arch {
        X86 = "SCMP_ARCH_X86",
        X86_64 = "SCMP_ARCH_X86_64",
        X32 = "SCMP_ARCH_X32",
        Arm = "SCMP_ARCH_ARM",
        Aarch64 = "SCMP_ARCH_AARCH64",
        Mips = "SCMP_ARCH_MIPS",
        Mips64 = "SCMP_ARCH_MIPS64",
        Mips64N32 = "SCMP_ARCH_MIPS64N32",
        Mipsel = "SCMP_ARCH_MIPSEL",
        Mipsel64 = "SCMP_ARCH_MIPSEL64",
        Mipsel64N32 = "SCMP_ARCH_MIPSEL64N32",
        Ppc = "SCMP_ARCH_PPC",
        Ppc64 = "SCMP_ARCH_PPC64",
        Ppc64le = "SCMP_ARCH_PPC64LE",
        S390 = "SCMP_ARCH_S390",
        S390x = "SCMP_ARCH_S390X",
        Parisc = "SCMP_ARCH_PARISC",
        Parisc64 = "SCMP_ARCH_PARISC64",
        Riscv64 = "SCMP_ARCH_RISCV64",
    }
}

wire_enum! {
    /// A flag passed to seccomp(2) when the filter is loaded.
    Flag {
        /// Synchronize the filter across all threads.
        Tsync = "SECCOMP_FILTER_FLAG_TSYNC",
        /// Log every action except SCMP_ACT_ALLOW.
        Log = "SECCOMP_FILTER_FLAG_LOG",
        /// Disable speculative store bypass mitigation.
        SpecAllow = "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        /// Make notifier waits killable.
        WaitKillableRecv = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    }
}

wire_enum! {
    /// How a system call argument is compared with `value`.
    Operator {
        /// Argument != value.
        NotEqual = "SCMP_CMP_NE",
        /// Argument < value.
        LessThan = "SCMP_CMP_LT",
        /// Argument <= value.
        LessOrEqual = "SCMP_CMP_LE",
        /// Argument == value.
        Equal = "SCMP_CMP_EQ",
        /// Argument >= value.
        GreaterOrEqual = "SCMP_CMP_GE",
        /// Argument > value.
        GreaterThan = "SCMP_CMP_GT",
        /// (Argument & value) == valueTwo.
        MaskedEqual = "SCMP_CMP_MASKED_EQ",
    }
}

/// Whether a profile refuses what it does not allow, or only records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    /// Every action as written: calls the profile does not allow fail or kill.
    #[default]
    Enforce,
    /// Every action other than SCMP_ACT_ALLOW becomes SCMP_ACT_LOG: pods run as if
    /// unconfined, and the kernel records each call the enforced profile would refuse.
    Audit,
}

impl Mode {
    fn is_enforce(&self) -> bool {
        *self == Mode::Enforce
    }
}

/// A seccomp profile in the OCI runtime format, optionally extending another SeccompProfile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSpec {
    /// Name of another SeccompProfile whose syscall rules, architectures and flags this profile
    /// extends. The base's rules come first; this profile's defaultAction and defaultErrnoRet win.
    /// A missing base or a cycle is reported in status and nothing is installed until it is fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_profile_name: Option<String>,

    /// Enforce (the default) installs the profile as written. Audit installs it, at the same
    /// path, with every action other than SCMP_ACT_ALLOW turned into SCMP_ACT_LOG: pods that
    /// use it run as if unconfined while the kernel records every call the enforced profile
    /// would refuse. Switching it changes the file for containers started afterwards.
    #[serde(default, skip_serializing_if = "Mode::is_enforce")]
    pub mode: Mode,

    /// Action for every system call that no rule in `syscalls` matches. An allowlist uses
    /// SCMP_ACT_ERRNO (or a kill action) here and SCMP_ACT_ALLOW in its rules.
    pub default_action: Action,

    /// errno returned by the default action when it is SCMP_ACT_ERRNO or SCMP_ACT_TRACE
    /// (0 to 4094; EPERM=1 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,

    /// Additional architectures the filter covers besides the node's native one, for example
    /// SCMP_ARCH_X86 and SCMP_ARCH_X32 on x86_64 nodes. Empty means the native one only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Arch>,

    /// seccomp(2) flags used when loading the filter. Leave empty unless you know the node's
    /// runtime supports them (runc before 1.2 refuses any flag).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,

    /// Rules, matched in order of specificity by the kernel filter. A call matching none of
    /// them gets defaultAction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<SyscallRule>,
}

/// One rule: the action taken for a set of system calls, optionally only when their
/// arguments match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyscallRule {
    /// System call names as the kernel knows them, lowercase, for example `read`, `openat`,
    /// `clone3`. A name the node's architecture does not have is skipped there.
    #[schemars(with = "Vec<String>")]
    pub names: Vec<SyscallName>,

    /// Action taken when one of `names` is called and every entry of `args` matches.
    pub action: Action,

    /// errno returned when `action` is SCMP_ACT_ERRNO or SCMP_ACT_TRACE (0 to 4094; EPERM=1
    /// when unset). 0 makes the call return success without running it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,

    /// Conditions on the call's arguments; all must hold for the rule to apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCondition>,
}

impl ProfileSpec {
    /// Gives back the spare capacity of its lists. A list decoded from JSON grows by doubling
    /// (the decoder does not know its length), so a spec kept for long, as the agent keeps every
    /// profile's, holds up to twice the room its rules need.
    pub fn shrink_to_fit(&mut self) {
        for rule in &mut self.syscalls {
            rule.names.shrink_to_fit();
            rule.args.shrink_to_fit();
        }
        self.syscalls.shrink_to_fit();
        self.architectures.shrink_to_fit();
        self.flags.shrink_to_fit();
    }
}

/// A system call's name. Kept inline, without an allocation of its own: every name the kernel
/// has fits (the longest are 23 bytes), and an agent keeps every profile's names, tens of
/// thousands of them with a thousand profiles.
pub type SyscallName = compact_str::CompactString;

/// A condition on one system call argument.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgCondition {
    /// Position of the argument, 0 to 5.
    pub index: u32,

    /// Value the argument is compared with.
    pub value: u64,

    /// Second value, used only by SCMP_CMP_MASKED_EQ: (argument & value) == valueTwo.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value_two: u64,

    /// Comparison operator.
    pub op: Operator,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
