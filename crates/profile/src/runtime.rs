//! Which OCI runtime a node runs, as an administrator names it (`runc/1.5.3`, `crun/1.19`), and
//! what that runtime accepts in a profile beyond what every supported runtime does.
//!
//! seccompd cannot ask a runtime for its version from inside a pod, so a node's runtime is
//! configured (per node through a label, or for all of an agent DaemonSet's nodes through its
//! option); a node nobody described is taken to be the most conservative runtime seccompd
//! supports, runc 1.1 (Debian 12, containerd 1.6/1.7), so that nothing is installed that a
//! runtime would refuse at container start.

use std::fmt;
use std::str::FromStr;

/// The runtimes seccompd knows the seccomp behaviour of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    /// opencontainers/runc.
    Runc,
    /// containers/crun.
    Crun,
}

/// A runtime and its version: `runc/1.5.3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OciRuntime {
    /// Which runtime.
    pub kind: RuntimeKind,
    /// Its version: major, minor, patch (a missing part is 0).
    pub version: (u32, u32, u32),
}

/// The runtime a node nobody described is taken to be.
pub const ASSUMED_RUNTIME: OciRuntime = OciRuntime {
    kind: RuntimeKind::Runc,
    version: (1, 1, 0),
};

/// System calls runc 1.5 makes after loading the filter and before it starts the container's
/// process, beyond those every runc makes ([`crate::validate::RUNC_NEEDS_ALWAYS`]), with
/// `no_new_privs` on or off: without them no container starts under runc 1.5.3 (the seed's
/// CentOS `ls` profile, which runs under runc 1.1.5, lacks both). Not known for runc 1.2 to
/// 1.4, so claimed from 1.5 on.
const RUNC_1_5_NEEDS: &[&str] = &["readlinkat", "statx"];

impl OciRuntime {
    /// The calls this runtime makes after loading the filter that a profile must let run
    /// for any container to start, beyond those every runc makes (validation warns of both).
    pub fn calls_after_filter(&self) -> &'static [&'static str] {
        match self.kind {
            RuntimeKind::Runc if self.version >= (1, 5, 0) => RUNC_1_5_NEEDS,
            RuntimeKind::Runc | RuntimeKind::Crun => &[],
        }
    }

    /// Whether it accepts a profile's `flags` (runc 1.2 and later, crun).
    pub fn accepts_flags(&self) -> bool {
        match self.kind {
            RuntimeKind::Runc => self.version >= (1, 2, 0),
            RuntimeKind::Crun => true,
        }
    }

    /// Whether it knows SCMP_ARCH_RISCV64 (runc 1.1.8 and later, crun).
    pub fn knows_riscv64(&self) -> bool {
        match self.kind {
            RuntimeKind::Runc => self.version >= (1, 1, 8),
            RuntimeKind::Crun => true,
        }
    }
}

impl fmt::Display for OciRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind {
            RuntimeKind::Runc => "runc",
            RuntimeKind::Crun => "crun",
        };
        let (major, minor, patch) = self.version;
        write!(f, "{name}/{major}.{minor}.{patch}")
    }
}

/// Why a runtime's name was not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a runtime seccompd knows: write runc/<version> or crun/<version>, e.g. runc/1.5.3"
)]
pub struct UnknownRuntime {
    given: String,
}

impl FromStr for OciRuntime {
    type Err = UnknownRuntime;

    /// `runc/1.5.3`, `crun/1.19` (also with `-` or `_` for `/`, so that it fits a label
    /// value, and with a leading `v` on the version).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownRuntime {
            given: s.to_string(),
        };
        let (name, version) = s.trim().split_once(['/', '-', '_']).ok_or_else(unknown)?;
        let kind = match name.to_ascii_lowercase().as_str() {
            "runc" => RuntimeKind::Runc,
            "crun" => RuntimeKind::Crun,
            _ => return Err(unknown()),
        };
        let version = version.strip_prefix('v').unwrap_or(version);
        let mut parts = version.split('.');
        let mut next = |required: bool| -> Result<u32, UnknownRuntime> {
            match parts.next() {
                Some(p) => p.parse().map_err(|_| unknown()),
                None if required => Err(unknown()),
                None => Ok(0),
            }
        };
        let version = (next(true)?, next(false)?, next(false)?);
        if parts.next().is_some() {
            return Err(unknown());
        }
        Ok(Self { kind, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> OciRuntime {
        s.parse().unwrap()
    }

    #[test]
    fn names_parse_in_the_forms_a_label_or_an_option_allows() {
        let want = OciRuntime {
            kind: RuntimeKind::Runc,
            version: (1, 5, 3),
        };
        for s in ["runc/1.5.3", "runc-1.5.3", "runc_v1.5.3", " RUNC/1.5.3 "] {
            assert_eq!(rt(s), want, "{s}");
        }
        assert_eq!(rt("crun/1.19").version, (1, 19, 0));
        assert_eq!(rt("runc/1.5.3").to_string(), "runc/1.5.3");
    }

    #[test]
    fn other_names_are_refused_with_the_form_to_use() {
        for s in ["", "runc", "youki/0.4", "runc/1.x", "runc/1.2.3.4", "runc/"] {
            let err = s.parse::<OciRuntime>().unwrap_err().to_string();
            assert!(err.contains("runc/<version>"), "{s}: {err}");
        }
    }

    #[test]
    fn what_each_runtime_accepts() {
        assert!(!rt("runc/1.1.5").accepts_flags());
        assert!(rt("runc/1.2.0").accepts_flags());
        assert!(rt("runc/1.5.3").accepts_flags());
        assert!(rt("crun/1.8").accepts_flags());
        assert!(!rt("runc/1.1.7").knows_riscv64());
        assert!(rt("runc/1.1.8").knows_riscv64());
        assert!(!ASSUMED_RUNTIME.accepts_flags() && !ASSUMED_RUNTIME.knows_riscv64());
        assert_eq!(
            rt("runc/1.5.3").calls_after_filter(),
            ["readlinkat", "statx"]
        );
        assert!(rt("runc/1.1.5").calls_after_filter().is_empty());
        assert!(rt("crun/1.19").calls_after_filter().is_empty());
    }
}
