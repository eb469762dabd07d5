//! Rendering: the exact bytes written to a node, and their content hash.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::limits::MAX_FILE_BYTES;
use super::model::{Action, Arch, Flag, SyscallRule};

/// A self-contained profile in the plain OCI format that containerd, CRI-O, runc and crun read
/// (no `baseProfileName`, no moby extensions).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OciProfile {
    /// Action for calls that match no rule.
    pub default_action: Action,
    /// errno for an ERRNO/TRACE default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Extra architectures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Arch>,
    /// seccomp(2) flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// Rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<SyscallRule>,
}

impl OciProfile {
    /// The same profile logging what it would refuse: every action other than allow becomes
    /// SCMP_ACT_LOG, and the rules whose action is then the default's are dropped (runtimes
    /// and libseccomp refuse a rule that repeats the default action; it means the same).
    pub fn audited(self) -> Self {
        let logged = |action: Action| match action {
            Action::Allow => Action::Allow,
            _ => Action::Log,
        };
        let default_action = logged(self.default_action);
        let syscalls = self
            .syscalls
            .into_iter()
            .map(|rule| SyscallRule {
                action: logged(rule.action),
                errno_ret: None,
                ..rule
            })
            .filter(|rule| rule.action != default_action)
            .collect();
        Self {
            default_action,
            default_errno_ret: None,
            syscalls,
            ..self
        }
    }
}

/// A profile rendered for the node: its file content and that content's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The file's bytes: pretty JSON with a trailing newline, fields in a fixed order. Shared:
    /// an agent keeps one copy per profile however many places (the renderings it reuses, the
    /// last valid version of each file) hold it.
    pub bytes: Arc<[u8]>,
    /// `sha256:<hex>` of `bytes`.
    pub hash: ContentHash,
}

/// `sha256:<hex>` of a profile file's bytes: what the status expects, what nodes report and
/// what the agent compares files by. A type of its own, so that a hash never passes for a name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentHash(String);

/// What the API accepts as a content hash: the exact form [`ContentHash::of`] writes, which
/// also bounds its length in every report and status.
const CONTENT_HASH_PATTERN: &str = "^sha256:[0-9a-f]{64}$";

impl JsonSchema for ContentHash {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ContentHash".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": CONTENT_HASH_PATTERN,
        })
    }
}

impl ContentHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The `sha256:<hex>` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A hash as read back from the API (a report or a status), taken as written.
impl From<&str> for ContentHash {
    fn from(text: &str) -> Self {
        Self(text.to_string())
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rendered profile larger than a node reads back ([`MAX_FILE_BYTES`]): every scan would find
/// it oversized and write it again.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the profile renders to {size} bytes with its bases, over the {} MiB bound on a profile file (MAX_FILE_BYTES): remove or merge rules, or extend fewer or smaller bases",
    MAX_FILE_BYTES / (1024 * 1024)
)]
pub struct TooLarge {
    /// The rendered size in bytes.
    pub size: usize,
}

impl Rendered {
    /// Whether the file fits [`MAX_FILE_BYTES`].
    pub fn check_size(&self) -> Result<(), TooLarge> {
        let size = self.bytes.len();
        if size > MAX_FILE_BYTES {
            Err(TooLarge { size })
        } else {
            Ok(())
        }
    }
}

/// Renders `profile` to the bytes a node stores. The same profile always gives the same bytes.
pub fn render(profile: &OciProfile) -> Rendered {
    // Serializing plain structs, enums, strings and integers to a Vec cannot fail.
    let mut bytes = serde_json::to_vec_pretty(profile).unwrap_or_default();
    bytes.push(b'\n');
    let hash = content_hash(&bytes);
    Rendered {
        bytes: bytes.into(),
        hash,
    }
}

/// `sha256:<hex>` of `bytes`, the form used in status and on disk comparisons.
pub fn content_hash(bytes: &[u8]) -> ContentHash {
    ContentHash::of(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArgCondition, Operator};

    fn sample() -> OciProfile {
        OciProfile {
            default_action: Action::Errno,
            default_errno_ret: Some(38),
            architectures: vec![Arch::X86_64, Arch::X86],
            flags: vec![],
            syscalls: vec![SyscallRule {
                names: vec!["personality".into()],
                action: Action::Allow,
                errno_ret: None,
                args: vec![ArgCondition {
                    index: 0,
                    value: 0xffff_ffff,
                    value_two: 0,
                    op: Operator::Equal,
                }],
            }],
        }
    }

    #[test]
    fn a_content_hash_has_the_form_the_schema_admits() {
        let hash = ContentHash::of(b"{}");
        let hex = hash.as_str().strip_prefix("sha256:").unwrap();
        assert!(hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
        assert_eq!(
            CONTENT_HASH_PATTERN,
            format!("^sha256:[0-9a-f]{{{}}}$", hex.len())
        );
    }

    #[test]
    fn renders_plain_oci_json_in_fixed_field_order() {
        let out = render(&sample());
        let text = String::from_utf8(out.bytes.to_vec()).unwrap();
        let expected = r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 38,
  "architectures": [
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86"
  ],
  "syscalls": [
    {
      "names": [
        "personality"
      ],
      "action": "SCMP_ACT_ALLOW",
      "args": [
        {
          "index": 0,
          "value": 4294967295,
          "op": "SCMP_CMP_EQ"
        }
      ]
    }
  ]
}
"#;
        assert_eq!(text, expected);
    }

    #[test]
    fn same_profile_same_bytes_and_hash() {
        assert_eq!(render(&sample()), render(&sample()));
    }

    #[test]
    fn any_change_changes_the_hash() {
        let mut other = sample();
        other.syscalls[0].names.push("read".into());
        assert_ne!(render(&sample()).hash, render(&other).hash);
    }

    #[test]
    fn rendered_bytes_parse_back_to_the_same_profile() {
        let out = render(&sample());
        let back: OciProfile = serde_json::from_slice(&out.bytes).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn a_rendering_over_the_file_bound_is_refused_with_the_bound_and_the_fix() {
        let mut big = sample();
        big.syscalls[0].names = vec!["read".repeat(64).into(); MAX_FILE_BYTES / 256 + 1];
        let err = render(&big).check_size().unwrap_err();
        assert!(err.size > MAX_FILE_BYTES);
        let text = err.to_string();
        assert!(
            text.contains("MAX_FILE_BYTES") && text.contains("4 MiB"),
            "{text}"
        );
        assert!(render(&sample()).check_size().is_ok());
    }

    #[test]
    fn hash_is_sha256_of_bytes() {
        assert_eq!(
            content_hash(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn an_audited_profile_logs_whatever_it_would_refuse_and_keeps_its_allows() {
        let enforced = OciProfile {
            default_action: Action::Errno,
            default_errno_ret: Some(38),
            architectures: vec![Arch::X86_64],
            flags: vec![Flag::Log],
            syscalls: vec![
                SyscallRule {
                    names: vec!["read".into()],
                    action: Action::Allow,
                    errno_ret: None,
                    args: vec![],
                },
                SyscallRule {
                    names: vec!["mkdir".into()],
                    action: Action::KillProcess,
                    errno_ret: None,
                    args: vec![],
                },
                SyscallRule {
                    names: vec!["chmod".into()],
                    action: Action::Errno,
                    errno_ret: Some(13),
                    args: vec![],
                },
            ],
        };
        let audited = enforced.clone().audited();
        assert_eq!(audited.default_action, Action::Log);
        assert_eq!(audited.default_errno_ret, None);
        // The refusing rules now equal the default and are dropped; the allow stays, so that
        // allowed calls are not logged.
        assert_eq!(audited.syscalls, enforced.syscalls[..1].to_vec());
        assert_eq!(
            (audited.architectures, audited.flags),
            (enforced.architectures, enforced.flags)
        );
    }

    #[test]
    fn an_audited_denylist_logs_the_calls_it_denies() {
        let denylist = OciProfile {
            default_action: Action::Allow,
            default_errno_ret: None,
            architectures: vec![],
            flags: vec![],
            syscalls: vec![SyscallRule {
                names: vec!["mkdir".into()],
                action: Action::Errno,
                errno_ret: Some(1),
                args: vec![],
            }],
        };
        let audited = denylist.audited();
        assert_eq!(audited.default_action, Action::Allow);
        assert_eq!(audited.syscalls.len(), 1);
        assert_eq!(
            (audited.syscalls[0].action, audited.syscalls[0].errno_ret),
            (Action::Log, None)
        );
    }
}
