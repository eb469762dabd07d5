//! `baseProfileName` resolution: flattens a profile and its chain of bases into one
//! self-contained OCI profile, or says precisely why it cannot.

use std::collections::BTreeSet;

use thiserror::Error;

use super::limits::MAX_BASE_DEPTH;
use super::model::{Mode, ProfileSpec};
use super::render::OciProfile;

/// Why a profile's bases cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResolveError {
    /// A profile names a base that does not exist.
    #[error(
        "spec.baseProfileName: profile {profile:?} extends {base:?}, which does not exist; create it or fix the name"
    )]
    MissingBase {
        /// The profile that names the base.
        profile: String,
        /// The missing base.
        base: String,
    },
    /// The chain of bases loops back on itself.
    #[error("spec.baseProfileName: bases form a cycle ({}); remove one baseProfileName", .chain.join(" -> "))]
    Cycle {
        /// The profiles in the cycle, starting and ending with the same name.
        chain: Vec<String>,
    },
    /// The chain is longer than [`MAX_BASE_DEPTH`].
    #[error(
        "spec.baseProfileName: more than {MAX_BASE_DEPTH} levels of bases starting at {profile:?}; flatten the chain"
    )]
    TooDeep {
        /// The profile whose chain is too long.
        profile: String,
    },
}

/// Resolves `name` (whose spec is `spec`) against the other profiles `lookup` can find.
///
/// The result takes `defaultAction`, `defaultErrnoRet` from `spec`; architectures and flags are
/// the union over the chain (base first); syscall rules are the base's followed by the
/// profile's own.
pub fn resolve<'a>(
    name: &str,
    spec: &'a ProfileSpec,
    lookup: impl Fn(&str) -> Option<&'a ProfileSpec>,
) -> Result<OciProfile, ResolveError> {
    Ok(in_mode(resolve_enforced(name, spec, lookup)?, spec.mode))
}

/// `profile` as a profile in `mode` installs it.
pub fn in_mode(profile: OciProfile, mode: Mode) -> OciProfile {
    match mode {
        Mode::Enforce => profile,
        Mode::Audit => profile.audited(),
    }
}

/// [`resolve`] as if the profile were in Enforce mode: what the floors are merged into before
/// the mode applies (so that an audited profile logs a floor's denials like its own).
pub fn resolve_enforced<'a>(
    name: &str,
    spec: &'a ProfileSpec,
    lookup: impl Fn(&str) -> Option<&'a ProfileSpec>,
) -> Result<OciProfile, ResolveError> {
    let chain = base_chain(name, spec, lookup)?;
    let mut out = OciProfile {
        default_action: spec.default_action,
        default_errno_ret: spec.default_errno_ret,
        architectures: Vec::new(),
        flags: Vec::new(),
        syscalls: Vec::new(),
    };
    // Oldest base first, so that rules read top-down from the most general profile.
    for link in chain.iter().rev() {
        for arch in &link.architectures {
            if !out.architectures.contains(arch) {
                out.architectures.push(*arch);
            }
        }
        for flag in &link.flags {
            if !out.flags.contains(flag) {
                out.flags.push(*flag);
            }
        }
        out.syscalls.extend(link.syscalls.iter().cloned());
    }
    Ok(out)
}

/// The specs from `spec` up through its bases, `spec` first.
fn base_chain<'a>(
    name: &str,
    spec: &'a ProfileSpec,
    lookup: impl Fn(&str) -> Option<&'a ProfileSpec>,
) -> Result<Vec<&'a ProfileSpec>, ResolveError> {
    let mut chain = vec![spec];
    let mut names = vec![name.to_string()];
    let mut seen = BTreeSet::from([name.to_string()]);
    let mut current = spec;
    while let Some(base) = current.base_profile_name.as_deref() {
        if seen.contains(base) {
            let start = names.iter().position(|n| n == base).unwrap_or(0);
            let mut cycle = names.split_off(start);
            cycle.push(base.to_string());
            return Err(ResolveError::Cycle { chain: cycle });
        }
        if chain.len() > MAX_BASE_DEPTH {
            return Err(ResolveError::TooDeep {
                profile: name.to_string(),
            });
        }
        let Some(next) = lookup(base) else {
            return Err(ResolveError::MissingBase {
                profile: names.last().cloned().unwrap_or_default(),
                base: base.to_string(),
            });
        };
        seen.insert(base.to_string());
        names.push(base.to_string());
        chain.push(next);
        current = next;
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{Action, Arch, SyscallRule};

    fn spec(base: Option<&str>, names: &[&str], arch: &[Arch]) -> ProfileSpec {
        ProfileSpec {
            base_profile_name: base.map(str::to_string),
            mode: Default::default(),
            default_action: Action::Errno,
            default_errno_ret: None,
            architectures: arch.to_vec(),
            flags: vec![],
            syscalls: vec![SyscallRule {
                names: names.iter().map(|&n| n.into()).collect(),
                action: Action::Allow,
                errno_ret: None,
                args: vec![],
            }],
        }
    }

    fn resolve_in(
        all: &BTreeMap<&str, ProfileSpec>,
        name: &str,
    ) -> Result<OciProfile, ResolveError> {
        resolve(name, &all[name], |n| all.get(n))
    }

    #[test]
    fn profile_without_base_is_itself() {
        let all = BTreeMap::from([("a", spec(None, &["read"], &[Arch::X86_64]))]);
        let got = resolve_in(&all, "a").unwrap();
        assert_eq!(got.syscalls, all["a"].syscalls);
        assert_eq!(got.architectures, vec![Arch::X86_64]);
    }

    #[test]
    fn base_rules_come_first_and_arches_are_united() {
        let mut child = spec(Some("base"), &["write"], &[Arch::X86_64, Arch::X32]);
        child.default_action = Action::KillProcess;
        let all = BTreeMap::from([
            ("base", spec(None, &["read"], &[Arch::X86, Arch::X86_64])),
            ("child", child),
        ]);
        let got = resolve_in(&all, "child").unwrap();
        let names: Vec<_> = got.syscalls.iter().map(|r| r.names[0].as_str()).collect();
        assert_eq!(names, ["read", "write"]);
        assert_eq!(got.architectures, vec![Arch::X86, Arch::X86_64, Arch::X32]);
        assert_eq!(got.default_action, Action::KillProcess);
    }

    #[test]
    fn the_profiles_own_mode_decides_not_its_bases() {
        let mut base = spec(None, &["read"], &[]);
        base.mode = Mode::Audit;
        let mut audited = spec(Some("base"), &["write"], &[]);
        audited.mode = Mode::Audit;
        let all = BTreeMap::from([
            ("base", base),
            ("enforced", spec(Some("base"), &["write"], &[])),
            ("audited", audited),
        ]);
        assert_eq!(
            resolve_in(&all, "enforced").unwrap().default_action,
            Action::Errno
        );
        let got = resolve_in(&all, "audited").unwrap();
        assert_eq!(got.default_action, Action::Log);
        assert_eq!(got.syscalls.len(), 2, "both allows stay: {got:?}");
    }

    #[test]
    fn three_level_chain_is_ordered_oldest_first() {
        let all = BTreeMap::from([
            ("a", spec(None, &["a"], &[])),
            ("b", spec(Some("a"), &["b"], &[])),
            ("c", spec(Some("b"), &["c"], &[])),
        ]);
        let got = resolve_in(&all, "c").unwrap();
        let names: Vec<_> = got.syscalls.iter().map(|r| r.names[0].as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn missing_base_names_both_profiles() {
        let all = BTreeMap::from([
            ("a", spec(Some("b"), &["a"], &[])),
            ("b", spec(Some("gone"), &["b"], &[])),
        ]);
        let err = resolve_in(&all, "a").unwrap_err();
        assert_eq!(
            err,
            ResolveError::MissingBase {
                profile: "b".into(),
                base: "gone".into()
            }
        );
        assert!(err.to_string().contains("\"gone\", which does not exist"));
    }

    #[test]
    fn self_reference_is_a_cycle() {
        let all = BTreeMap::from([("a", spec(Some("a"), &["a"], &[]))]);
        assert_eq!(
            resolve_in(&all, "a").unwrap_err(),
            ResolveError::Cycle {
                chain: vec!["a".into(), "a".into()]
            }
        );
    }

    #[test]
    fn cycle_further_up_the_chain_names_only_the_loop() {
        let all = BTreeMap::from([
            ("leaf", spec(Some("x"), &["l"], &[])),
            ("x", spec(Some("y"), &["x"], &[])),
            ("y", spec(Some("x"), &["y"], &[])),
        ]);
        let err = resolve_in(&all, "leaf").unwrap_err();
        assert_eq!(
            err,
            ResolveError::Cycle {
                chain: vec!["x".into(), "y".into(), "x".into()]
            }
        );
        assert!(err.to_string().contains("x -> y -> x"));
    }

    #[test]
    fn overly_deep_chain_is_refused() {
        let names: Vec<String> = (0..=MAX_BASE_DEPTH + 1).map(|i| format!("p{i}")).collect();
        let mut all = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            let base = names.get(i + 1).map(String::as_str);
            all.insert(n.as_str(), spec(base, &["read"], &[]));
        }
        assert!(matches!(
            resolve_in(&all, "p0"),
            Err(ResolveError::TooDeep { .. })
        ));
    }
}
