//! The text of a kernel audit record of type `AUDIT_SECCOMP` (1326), as the audit netlink
//! multicast group delivers it, turned into the call it reports. No I/O.
//!
//! A record reads `audit(1701345678.123:456): auid=4294967295 uid=0 gid=0 ses=4294967295
//! subj=unconfined pid=1234 comm="ls" exe="/usr/bin/ls" sig=0 arch=c000003e syscall=59
//! compat=0 ip=0x7f... code=0x7ffc0000`. `comm` and `exe` are quoted, or written in hex when
//! they hold a space, a quote or a control character (the kernel's "untrusted string").

use seccompd_profile::model::{Action, Arch};
use seccompd_profile::recording::syscall_name;

/// The netlink message type of a seccomp audit record.
pub const AUDIT_SECCOMP: u16 = 1326;

/// The bit x32 system call numbers carry; the kernel reports x32 calls as x86_64 ones with it.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A host process id, as the audit record and the host's `/proc` give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPid(pub u32);

/// One seccomp audit record: which process made which call through which ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompRecord {
    /// The calling process, in the host's PID namespace.
    pub pid: HostPid,
    /// The `AUDIT_ARCH_*` value of the ABI the call came through.
    pub audit_arch: u32,
    /// The system call number in that ABI.
    pub syscall: u32,
    /// The task's command name (at most 15 bytes), lossily decoded.
    pub comm: String,
    /// The executable's path, lossily decoded; `None` when the kernel wrote `(null)`.
    pub exe: Option<String>,
    /// The filter's return value (`code=0x...`): the action and its data; `None` when the
    /// record has no readable code.
    pub code: Option<u32>,
}

/// Why a record's text could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordParseError {
    /// A field the record must have is missing.
    #[error("audit record without {0}=")]
    Missing(&'static str),
    /// A numeric field does not hold a number.
    #[error("audit record field {field}={value:?} is not a number")]
    NotANumber {
        /// The field.
        field: &'static str,
        /// Its text.
        value: String,
    },
}

/// A call named as a profile names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamedCall {
    /// The ABI.
    pub arch: Arch,
    /// The system call's name in that ABI.
    pub name: String,
}

impl SeccompRecord {
    /// Reads the text of an `AUDIT_SECCOMP` record.
    pub fn parse(text: &str) -> Result<Self, RecordParseError> {
        let fields = fields(text);
        let get = |key: &'static str| {
            fields
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
                .ok_or(RecordParseError::Missing(key))
        };
        let number = |key: &'static str, radix: u32| -> Result<u32, RecordParseError> {
            let value = get(key)?;
            u32::from_str_radix(value.text(), radix).map_err(|_| RecordParseError::NotANumber {
                field: key,
                value: value.text().to_string(),
            })
        };
        Ok(Self {
            pid: HostPid(number("pid", 10)?),
            audit_arch: number("arch", 16)?,
            syscall: number("syscall", 10)?,
            comm: get("comm")?.decoded().unwrap_or_default(),
            exe: get("exe").ok().and_then(Value::decoded),
            code: get("code").ok().and_then(|v| {
                let text = v.text();
                let hex = text.strip_prefix("0x").unwrap_or(text);
                u32::from_str_radix(hex, 16).ok()
            }),
        })
    }

    /// The action the filter took, from `code`; `None` without a code or for one no filter
    /// returns.
    pub fn action(&self) -> Option<Action> {
        action_of_code(self.code?)
    }

    /// The call by name, when seccompd knows the ABI and libseccomp the number.
    pub fn call(&self) -> Option<NamedCall> {
        let (arch, number) = abi_of(self.audit_arch, self.syscall)?;
        let name = syscall_name(arch, i32::try_from(number).ok()?)?;
        Some(NamedCall { arch, name })
    }
}

/// The action of a seccomp filter's return value: its upper 16 bits
/// (`SECCOMP_RET_ACTION_FULL`); the lower ones are its data (the errno, say), which the
/// kernel leaves out of the record for errno actions.
pub fn action_of_code(code: u32) -> Option<Action> {
    // include/uapi/linux/seccomp.h
    Some(match code & 0xffff_0000 {
        0x8000_0000 => Action::KillProcess,
        0x0000_0000 => Action::KillThread,
        0x0003_0000 => Action::Trap,
        0x0005_0000 => Action::Errno,
        0x7fc0_0000 => Action::Notify,
        0x7ff0_0000 => Action::Trace,
        0x7ffc_0000 => Action::Log,
        0x7fff_0000 => Action::Allow,
        _ => return None,
    })
}

/// The ABI of a call reported with `audit_arch` and `syscall`, and the number libseccomp
/// knows it by in that ABI.
fn abi_of(audit_arch: u32, syscall: u32) -> Option<(Arch, u32)> {
    let arch = Arch::ALL
        .iter()
        .copied()
        .find(|a| audit_arch_of(*a) == Some(audit_arch))?;
    if arch == Arch::X86_64 && syscall & X32_SYSCALL_BIT != 0 {
        // libseccomp numbers x32 calls with the bit set, as the kernel does.
        return Some((Arch::X32, syscall));
    }
    Some((arch, syscall))
}

/// The `AUDIT_ARCH_*` value the kernel reports for calls through `arch`; `None` for x32,
/// which it reports as x86_64 (see [`abi_of`]). libseccomp's architecture tokens are these
/// values.
fn audit_arch_of(arch: Arch) -> Option<u32> {
    use libseccomp_sys as sys;
    Some(match arch {
        Arch::X86 => sys::SCMP_ARCH_X86,
        Arch::X86_64 => sys::SCMP_ARCH_X86_64,
        Arch::X32 => return None,
        Arch::Arm => sys::SCMP_ARCH_ARM,
        Arch::Aarch64 => sys::SCMP_ARCH_AARCH64,
        Arch::Mips => sys::SCMP_ARCH_MIPS,
        Arch::Mips64 => sys::SCMP_ARCH_MIPS64,
        Arch::Mips64N32 => sys::SCMP_ARCH_MIPS64N32,
        Arch::Mipsel => sys::SCMP_ARCH_MIPSEL,
        Arch::Mipsel64 => sys::SCMP_ARCH_MIPSEL64,
        Arch::Mipsel64N32 => sys::SCMP_ARCH_MIPSEL64N32,
        Arch::Ppc => sys::SCMP_ARCH_PPC,
        Arch::Ppc64 => sys::SCMP_ARCH_PPC64,
        Arch::Ppc64le => sys::SCMP_ARCH_PPC64LE,
        Arch::S390 => sys::SCMP_ARCH_S390,
        Arch::S390x => sys::SCMP_ARCH_S390X,
        Arch::Parisc => sys::SCMP_ARCH_PARISC,
        Arch::Parisc64 => sys::SCMP_ARCH_PARISC64,
        Arch::Riscv64 => sys::SCMP_ARCH_RISCV64,
    })
}

/// A field's value as written.
#[derive(Debug)]
enum Value<'a> {
    Quoted(&'a str),
    Bare(&'a str),
}

impl<'a> Value<'a> {
    fn text(&self) -> &'a str {
        match self {
            Value::Quoted(t) | Value::Bare(t) => t,
        }
    }

    /// A string field's content: quoted as is, or hex-encoded; `None` for `(null)`.
    fn decoded(&self) -> Option<String> {
        match self {
            Value::Quoted(t) => Some((*t).to_string()),
            Value::Bare("(null)") => None,
            Value::Bare(t) => Some(match hex::decode(t) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(_) => (*t).to_string(),
            }),
        }
    }
}

/// The `key=value` fields of a record, in order; a quoted value runs to its closing quote.
fn fields(text: &str) -> Vec<(&str, Value<'_>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].rsplit(' ').next().unwrap_or_default();
        let after = &rest[eq + 1..];
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (Value::Quoted(&quoted[..end]), &quoted[end + 1..]),
                None => (Value::Quoted(quoted), ""),
            },
            None => {
                let end = after.find(' ').unwrap_or(after.len());
                (Value::Bare(&after[..end]), &after[end..])
            }
        };
        out.push((key, value));
        rest = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS: &str = r#"audit(1764521000.123:4567): auid=4294967295 uid=0 gid=0 ses=4294967295 subj=unconfined pid=41235 comm="ls" exe="/usr/bin/ls" sig=0 arch=c000003e syscall=59 compat=0 ip=0x7f3c1a2b3c4d code=0x7ffc0000"#;

    #[test]
    fn a_record_gives_pid_abi_call_and_names() {
        let r = SeccompRecord::parse(LS).unwrap();
        assert_eq!(r.pid, HostPid(41235));
        assert_eq!(r.audit_arch, 0xc000_003e);
        assert_eq!(r.syscall, 59);
        assert_eq!(r.comm, "ls");
        assert_eq!(r.exe.as_deref(), Some("/usr/bin/ls"));
        assert_eq!(r.code, Some(0x7ffc_0000));
        assert_eq!(r.action(), Some(Action::Log));
        assert_eq!(
            r.call(),
            Some(NamedCall {
                arch: Arch::X86_64,
                name: "execve".to_string()
            })
        );
    }

    #[test]
    fn the_code_gives_the_action_without_its_data() {
        // An errno action logged through SECCOMP_FILTER_FLAG_LOG (seen with runc 1.5.3).
        let text = "pid=5 comm=\"mkdir\" arch=c000003e syscall=83 compat=0 ip=0x1 code=0x50000";
        let r = SeccompRecord::parse(text).unwrap();
        assert_eq!(r.action(), Some(Action::Errno));
        assert_eq!(action_of_code(0x0005_0001), Some(Action::Errno));
        assert_eq!(action_of_code(0x8000_0000), Some(Action::KillProcess));
        assert_eq!(action_of_code(0), Some(Action::KillThread));
        assert_eq!(action_of_code(0x0003_0000), Some(Action::Trap));
        assert_eq!(action_of_code(0x1234_0000), None);
        let no_code = SeccompRecord::parse("pid=1 comm=\"x\" arch=c000003e syscall=1").unwrap();
        assert_eq!(no_code.action(), None);
    }

    #[test]
    fn hex_and_null_strings_are_decoded() {
        let text = r#"audit(1.2:3): pid=7 comm=6D7920636D64 exe=(null) arch=c00000b7 syscall=221"#;
        let r = SeccompRecord::parse(text).unwrap();
        assert_eq!(r.comm, "my cmd");
        assert_eq!(r.exe, None);
        assert_eq!(r.call().unwrap().arch, Arch::Aarch64);
        assert_eq!(r.call().unwrap().name, "execve");
    }

    #[test]
    fn a_quoted_value_may_hold_spaces_and_equals_signs() {
        let text = r#"pid=9 comm="a=b c" exe="/x y" arch=40000003 syscall=11"#;
        let r = SeccompRecord::parse(text).unwrap();
        assert_eq!(r.comm, "a=b c");
        assert_eq!(r.exe.as_deref(), Some("/x y"));
        // i386 through the compat entry of an x86_64 kernel.
        assert_eq!(
            r.call(),
            Some(NamedCall {
                arch: Arch::X86,
                name: "execve".to_string()
            })
        );
    }

    #[test]
    fn x32_calls_are_told_apart_by_their_number_bit() {
        let text = "pid=1 comm=\"t\" arch=c000003e syscall=1073741824";
        let call = SeccompRecord::parse(text).unwrap().call().unwrap();
        assert_eq!((call.arch, call.name.as_str()), (Arch::X32, "read"));
    }

    #[test]
    fn unknown_abis_and_numbers_have_no_name() {
        let r = SeccompRecord::parse("pid=1 comm=\"x\" arch=12345678 syscall=1").unwrap();
        assert_eq!(r.call(), None);
        let r = SeccompRecord::parse("pid=1 comm=\"x\" arch=c000003e syscall=9999").unwrap();
        assert_eq!(r.call(), None);
    }

    #[test]
    fn missing_and_malformed_fields_are_errors() {
        assert_eq!(
            SeccompRecord::parse("comm=\"x\" arch=c000003e syscall=1"),
            Err(RecordParseError::Missing("pid"))
        );
        assert_eq!(
            SeccompRecord::parse("pid=1 comm=\"x\" arch=zz syscall=1"),
            Err(RecordParseError::NotANumber {
                field: "arch",
                value: "zz".to_string()
            })
        );
    }
}
