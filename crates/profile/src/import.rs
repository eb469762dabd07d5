//! Import of moby/Docker-format profiles: evaluates `includes`/`excludes` (architectures,
//! capabilities, minimum kernel) and `archMap` for one node architecture, the way Docker and
//! CRI-O do, giving a plain profile that means the same on every runtime.

use thiserror::Error;

use super::decode::{JsonProfile, MobyFilter};
use super::model::{Arch, ProfileSpec};

/// The capabilities a container gets by default from Docker, containerd and CRI-O (the
/// bounding set `includes.caps`/`excludes.caps` are evaluated against).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Why a profile cannot be imported.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ImportError {
    /// Both `architectures` and `archMap` are set; Docker refuses that too.
    #[error("both architectures and archMap are set, which Docker refuses too: keep one of them")]
    ArchitecturesAndArchMap,
    /// A `minKernel` that is not `MAJOR.MINOR`.
    #[error("{path}: minKernel {value:?} is not a kernel version like \"4.8\": fix it")]
    BadMinKernel {
        /// Field path.
        path: String,
        /// The value.
        value: String,
    },
}

/// The node the profile is imported for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The node's architecture.
    pub arch: Arch,
    /// The container's capabilities (normally [`DEFAULT_CAPABILITIES`]).
    pub capabilities: Vec<String>,
    /// The node's kernel version as (major, minor); rules with a higher `minKernel` are dropped.
    pub kernel: (u32, u32),
}

/// Go's names for an architecture, as moby's `includes.arches` uses them (plus the aliases
/// found in published profiles).
pub fn go_arch_names(arch: Arch) -> &'static [&'static str] {
    match arch {
        Arch::X86_64 => &["amd64", "x86_64"],
        Arch::X86 => &["386", "x86"],
        Arch::X32 => &["x32"],
        Arch::Aarch64 => &["arm64", "aarch64"],
        Arch::Arm => &["arm"],
        Arch::Ppc64le => &["ppc64le"],
        Arch::Ppc64 => &["ppc64"],
        Arch::Ppc => &["ppc"],
        Arch::S390x => &["s390x"],
        Arch::S390 => &["s390"],
        Arch::Riscv64 => &["riscv64"],
        Arch::Mips => &["mips"],
        Arch::Mipsel => &["mipsle", "mipsel"],
        Arch::Mips64 => &["mips64"],
        Arch::Mipsel64 => &["mips64le", "mipsel64"],
        Arch::Mips64N32 => &["mips64n32"],
        Arch::Mipsel64N32 => &["mipsel64n32", "mips64len32"],
        Arch::Parisc => &["parisc"],
        Arch::Parisc64 => &["parisc64"],
    }
}

/// Parses `MAJOR.MINOR[.anything]`.
pub fn parse_kernel(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// Whether `filter` matches the target: every listed capability held, the architecture
/// listed, the kernel new enough. An unset part matches.
fn matches(
    filter: &MobyFilter,
    target: &Target,
    path: &str,
    all_caps: bool,
) -> Result<bool, ImportError> {
    let names = go_arch_names(target.arch);
    let arch_ok = filter
        .arches
        .as_ref()
        .is_none_or(|a| a.is_empty() || a.iter().any(|x| names.contains(&x.as_str())));
    let has = |c: &String| target.capabilities.iter().any(|t| t == c);
    let caps_ok = filter.caps.as_ref().is_none_or(|caps| {
        caps.is_empty()
            || if all_caps {
                caps.iter().all(has)
            } else {
                caps.iter().any(has)
            }
    });
    let kernel_ok = match filter.min_kernel.as_deref() {
        None | Some("") => true,
        Some(text) => {
            let min = parse_kernel(text).ok_or_else(|| ImportError::BadMinKernel {
                path: format!("{path}.minKernel"),
                value: text.to_string(),
            })?;
            target.kernel >= min
        }
    };
    Ok(arch_ok && caps_ok && kernel_ok)
}

fn excluded(filter: &MobyFilter, target: &Target) -> bool {
    let names = go_arch_names(target.arch);
    let arch_hit = filter
        .arches
        .as_ref()
        .is_some_and(|a| a.iter().any(|x| names.contains(&x.as_str())));
    let cap_hit = filter
        .caps
        .as_ref()
        .is_some_and(|caps| caps.iter().any(|c| target.capabilities.contains(c)));
    arch_hit || cap_hit
}

/// What an import did besides copying: one line per dropped rule or decision.
pub type Notes = Vec<String>;

/// Converts `profile` for `target`: rules whose `includes` do not match or whose `excludes`
/// do are dropped, `archMap` becomes `architectures`, `name` becomes `names`, comments go.
pub fn import(profile: &JsonProfile, target: &Target) -> Result<(ProfileSpec, Notes), ImportError> {
    let mut notes = Vec::new();
    let architectures = match (&profile.architectures, &profile.arch_map) {
        (Some(a), Some(m)) if !a.is_empty() && !m.is_empty() => {
            return Err(ImportError::ArchitecturesAndArchMap);
        }
        (_, Some(map)) if !map.is_empty() => {
            let sub = map
                .iter()
                .find(|e| e.architecture == target.arch)
                .and_then(|e| e.sub_architectures.clone())
                .unwrap_or_default();
            let mut arches = vec![target.arch];
            arches.extend(sub);
            notes.push(format!(
                "archMap: architectures for {} nodes: {}",
                target.arch,
                arches
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            arches
        }
        (Some(a), _) => a.clone(),
        (None, _) => Vec::new(),
    };
    let mut syscalls = Vec::new();
    for (i, rule) in profile.syscalls.iter().flatten().enumerate() {
        let path = format!("syscalls[{i}]");
        let included = match &rule.includes {
            Some(f) => matches(f, target, &format!("{path}.includes"), true)?,
            None => true,
        };
        let dropped_by_exclude = rule.excludes.as_ref().is_some_and(|f| excluded(f, target));
        let converted = rule.to_rule();
        if !included || dropped_by_exclude {
            let why = if included { "excludes" } else { "includes" };
            notes.push(format!(
                "{path}: dropped by its {why} ({})",
                converted.names.join(", ")
            ));
            continue;
        }
        syscalls.push(converted);
    }
    let spec = ProfileSpec {
        base_profile_name: None,
        mode: Default::default(),
        default_action: profile.default_action,
        default_errno_ret: profile.default_errno_ret,
        architectures,
        flags: profile.flags.clone().unwrap_or_default(),
        syscalls,
    };
    Ok((spec, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Document, decode};

    fn target(arch: Arch) -> Target {
        Target {
            arch,
            capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            kernel: (6, 1),
        }
    }

    fn docker_default() -> JsonProfile {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/profiles/docker-default.json"
        ))
        .unwrap();
        match decode(&bytes).unwrap().remove(0) {
            Document::Json(p) => p,
            Document::Resource(_) => panic!("JSON expected"),
        }
    }

    fn rule_with<'a>(spec: &'a ProfileSpec, name: &str) -> Vec<&'a crate::model::SyscallRule> {
        spec.syscalls
            .iter()
            .filter(|r| r.names.iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn docker_default_for_amd64() {
        let (spec, _) = import(&docker_default(), &target(Arch::X86_64)).unwrap();
        assert_eq!(spec.architectures, [Arch::X86_64, Arch::X86, Arch::X32]);
        // amd64-only and default-capability rules stay; s390 and CAP_SYS_ADMIN ones go.
        assert_eq!(rule_with(&spec, "arch_prctl").len(), 1);
        assert!(rule_with(&spec, "s390_runtime_instr").is_empty());
        assert!(rule_with(&spec, "bpf").is_empty());
        assert_eq!(rule_with(&spec, "chroot").len(), 1); // CAP_SYS_CHROOT is a default cap
        // clone with the namespace mask (excludes CAP_SYS_ADMIN and s390) stays; clone3 gets ENOSYS.
        let clone3 = rule_with(&spec, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].errno_ret, Some(38));
        // ptrace needs kernel 4.8: kept for 6.1, dropped for 4.4.
        assert_eq!(rule_with(&spec, "ptrace").len(), 1);
        let old = Target {
            kernel: (4, 4),
            ..target(Arch::X86_64)
        };
        let (spec_old, notes) = import(&docker_default(), &old).unwrap();
        assert!(rule_with(&spec_old, "ptrace").is_empty());
        assert!(notes.iter().any(|n| n.contains("ptrace")));
    }

    #[test]
    fn docker_default_for_arm64_and_s390x() {
        let (arm, _) = import(&docker_default(), &target(Arch::Aarch64)).unwrap();
        assert_eq!(arm.architectures, [Arch::Aarch64, Arch::Arm]);
        assert_eq!(rule_with(&arm, "cacheflush").len(), 1);
        assert!(rule_with(&arm, "arch_prctl").is_empty());
        let (s390, _) = import(&docker_default(), &target(Arch::S390x)).unwrap();
        assert_eq!(s390.architectures, [Arch::S390x, Arch::S390]);
        let clone: Vec<_> = rule_with(&s390, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].args[0].index, 1);
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(parse_kernel("x"), None);
    }
}
