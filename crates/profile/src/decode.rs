//! Strict decoding of what users hand in: OCI/Docker seccomp JSON, or SeccompProfile YAML
//! (several documents per file). Refuses what the runtimes would read differently or not at
//! all: a byte-order mark, trailing data, duplicate keys (runc takes the last, crun the first),
//! wrong types, unknown fields, a missing `defaultAction` (`{}` and `null` run unconfined
//! under runc). Never panics; input size is bounded before parsing.

use serde::Deserialize;
use serde::de::IgnoredAny;
use thiserror::Error;

use super::limits::MAX_INPUT_BYTES;
use super::model::{Action, Arch, ArgCondition, Flag, ProfileSpec, SyscallName, SyscallRule};
use super::render::OciProfile;
use super::validate::{Findings, Problem};

/// Why an input could not be read as a profile.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Larger than [`MAX_INPUT_BYTES`].
    #[error(
        "the input is {0} bytes; at most {MAX_INPUT_BYTES} are read: this is not a seccomp profile"
    )]
    TooLarge(usize),
    /// Starts with a UTF-8 byte-order mark.
    #[error(
        "the input starts with a byte-order mark, which Go's and crun's JSON readers refuse: save it as UTF-8 without BOM"
    )]
    ByteOrderMark,
    /// Not UTF-8.
    #[error("the input is not UTF-8 text: {0}")]
    NotUtf8(String),
    /// Nothing but whitespace.
    #[error("the input is empty: write a profile with at least defaultAction")]
    Empty,
    /// Malformed JSON, a wrong type, a duplicate or unknown field, or a missing one.
    #[error("{0}")]
    Json(String),
    /// Malformed YAML, or a document that is not a SeccompProfile.
    #[error("{0}")]
    Yaml(String),
    /// A YAML document of another kind.
    #[error(
        "document {index}: kind {kind:?} apiVersion {api_version:?} is not a seccompd.dev/v1alpha1 SeccompProfile"
    )]
    WrongKind {
        /// 1-based document number.
        index: usize,
        /// Its kind.
        kind: String,
        /// Its apiVersion.
        api_version: String,
    },
}

/// A moby/Docker `includes` or `excludes` condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MobyFilter {
    /// Capabilities (for example `CAP_SYS_ADMIN`).
    #[serde(default)]
    pub caps: Option<Vec<String>>,
    /// Go architecture names (`amd64`, `arm64`, `s390x`, ...).
    #[serde(default)]
    pub arches: Option<Vec<String>>,
    /// Minimum kernel version, such as `4.8`.
    #[serde(default)]
    pub min_kernel: Option<String>,
}

impl MobyRule {
    /// The rule in OCI form: `name` joins `names`; `comment`, `includes` and `excludes` go.
    pub fn to_rule(&self) -> SyscallRule {
        let mut names = self.names.clone().unwrap_or_default();
        names.extend(self.name.iter().cloned());
        SyscallRule {
            names,
            action: self.action,
            errno_ret: self.errno_ret,
            args: self.args.clone().unwrap_or_default(),
        }
    }
}

impl MobyFilter {
    /// True when the filter sets nothing (it then has no effect anywhere).
    pub fn is_empty(&self) -> bool {
        self.caps.as_ref().is_none_or(Vec::is_empty)
            && self.arches.as_ref().is_none_or(Vec::is_empty)
            && self.min_kernel.as_ref().is_none_or(String::is_empty)
    }
}

/// One rule in moby format: OCI fields plus `name`, `comment`, `includes`, `excludes`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MobyRule {
    /// Moby's singular form; containerd ignores it (the rule then matches nothing).
    #[serde(default)]
    pub name: Option<SyscallName>,
    /// System call names.
    #[serde(default)]
    pub names: Option<Vec<SyscallName>>,
    /// The action.
    pub action: Action,
    /// errno for ERRNO/TRACE.
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// Argument conditions.
    #[serde(default)]
    pub args: Option<Vec<ArgCondition>>,
    /// Free text; ignored everywhere.
    #[serde(default)]
    pub comment: Option<String>,
    /// Applies the rule only where this matches (CRI-O and Docker; containerd ignores it).
    #[serde(default)]
    pub includes: Option<MobyFilter>,
    /// Applies the rule only where this does not match.
    #[serde(default)]
    pub excludes: Option<MobyFilter>,
}

/// An `archMap` entry: the sub-architectures Docker adds on a node of `architecture`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchMapEntry {
    /// The node's architecture.
    pub architecture: Arch,
    /// Architectures added for it.
    #[serde(default)]
    pub sub_architectures: Option<Vec<Arch>>,
}

/// A profile as written in a JSON file: the OCI `LinuxSeccomp` fields plus moby's.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsonProfile {
    /// Action for unmatched calls. Required: without it runc runs the container unconfined.
    pub default_action: Action,
    /// errno for an ERRNO/TRACE default action.
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// Extra architectures.
    #[serde(default)]
    pub architectures: Option<Vec<Arch>>,
    /// Moby's per-node-architecture list; containerd ignores it.
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMapEntry>>,
    /// seccomp(2) flags.
    #[serde(default)]
    pub flags: Option<Vec<Flag>>,
    /// OCI field for SCMP_ACT_NOTIFY listeners; never usable through kubelet.
    #[serde(default)]
    pub listener_path: Option<String>,
    /// OCI field for SCMP_ACT_NOTIFY listeners.
    #[serde(default)]
    pub listener_metadata: Option<String>,
    /// Rules.
    #[serde(default)]
    pub syscalls: Option<Vec<MobyRule>>,
}

/// A SeccompProfile document.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    /// `metadata.name`, if present.
    pub name: Option<String>,
    /// The spec.
    pub spec: ProfileSpec,
}

/// One decoded document.
#[derive(Clone, Debug, PartialEq)]
pub enum Document {
    /// A plain OCI or Docker JSON profile.
    Json(JsonProfile),
    /// A SeccompProfile object (YAML, or JSON with `kind`).
    Resource(Resource),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResourceDoc {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: Option<Metadata>,
    spec: ProfileSpec,
    /// Accepted and ignored: `kubectl get -o yaml` output carries it.
    #[serde(default, rename = "status")]
    _status: Option<IgnoredAny>,
}

/// The metadata fields seccompd reads; others (labels, annotations...) are allowed.
#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    name: Option<String>,
}

/// Finds out whether a JSON object is a Kubernetes object (it has `kind`).
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    kind: Option<IgnoredAny>,
}

/// Decodes a file's bytes: JSON (an OCI/Docker profile, or one SeccompProfile object) when
/// the first non-blank character is `{`, otherwise a YAML stream of SeccompProfiles.
pub fn decode(bytes: &[u8]) -> Result<Vec<Document>, DecodeError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(DecodeError::ByteOrderMark);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::NotUtf8(e.to_string()))?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(DecodeError::Empty);
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') || trimmed.starts_with("null") {
        return decode_json(text).map(|d| vec![d]);
    }
    decode_yaml(text)
}

fn json_err(e: serde_json::Error) -> DecodeError {
    let what = e.to_string();
    let hint = if what.contains("missing field `defaultAction`") {
        ": without defaultAction runc runs the container unconfined; add \"defaultAction\": \"SCMP_ACT_ERRNO\" (allowlist) or \"SCMP_ACT_ALLOW\" (denylist)"
    } else if what.contains("duplicate field") {
        ": runc takes the last value and crun the first, so the runtimes disagree; keep one"
    } else if what.contains("unknown field") {
        ": remove or rename it (fields are case-sensitive)"
    } else if what.contains("trailing characters") {
        ": a file holds exactly one JSON profile; remove what follows it"
    } else if what.contains("invalid type: null") {
        ": null runs the container unconfined under runc; write a profile object"
    } else {
        ""
    };
    DecodeError::Json(format!("invalid JSON profile: {what}{hint}"))
}

fn strict_json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = T::deserialize(&mut de).map_err(json_err)?;
    de.end().map_err(json_err)?;
    Ok(value)
}

fn decode_json(text: &str) -> Result<Document, DecodeError> {
    let probe: Probe = strict_json(text)?;
    if probe.kind.is_some() {
        let doc: ResourceDoc = strict_json(text)?;
        return resource(doc, 1);
    }
    strict_json(text).map(Document::Json)
}

fn decode_yaml(text: &str) -> Result<Vec<Document>, DecodeError> {
    let docs: Vec<ResourceDoc> = serde_saphyr::from_multiple(text)
        .map_err(|e| DecodeError::Yaml(format!("invalid SeccompProfile YAML: {e}")))?;
    if docs.is_empty() {
        return Err(DecodeError::Empty);
    }
    docs.into_iter()
        .enumerate()
        .map(|(i, doc)| resource(doc, i + 1))
        .collect()
}

fn resource(doc: ResourceDoc, index: usize) -> Result<Document, DecodeError> {
    if doc.kind != "SeccompProfile" || doc.api_version != "seccompd.dev/v1alpha1" {
        return Err(DecodeError::WrongKind {
            index,
            kind: doc.kind,
            api_version: doc.api_version,
        });
    }
    Ok(Document::Resource(Resource {
        name: doc.metadata.and_then(|m| m.name),
        spec: doc.spec,
    }))
}

/// Converts a JSON profile to the plain OCI profile runc and containerd would see, reporting
/// moby fields whose meaning differs between runtimes as errors (fix: `seccompd import`).
pub fn to_oci(profile: &JsonProfile, root: &str) -> (OciProfile, Findings) {
    let mut findings = Findings::default();
    let at = |field: &str| {
        if root.is_empty() {
            field.to_string()
        } else {
            format!("{root}.{field}")
        }
    };
    let import_fix = "containerd ignores it while CRI-O and Docker apply it, so the same file gives different filters: convert the file with `seccompd import FILE.json --name NAME [--arch ARCH]`";
    if profile.arch_map.as_ref().is_some_and(|m| !m.is_empty()) {
        findings.errors.push(Problem {
            path: at("archMap"),
            message: format!("moby's archMap: {import_fix}"),
        });
    }
    if profile.listener_path.is_some() || profile.listener_metadata.is_some() {
        findings.errors.push(Problem {
            path: at("listenerPath"),
            message: "SCMP_ACT_NOTIFY listeners cannot be set from a Localhost profile (containerd and CRI-O ignore them): remove listenerPath and listenerMetadata".into(),
        });
    }
    let mut syscalls = Vec::new();
    let mut conditional = Vec::new();
    for (i, rule) in profile.syscalls.iter().flatten().enumerate() {
        let path = at(&format!("syscalls[{i}]"));
        for (field, filter) in [("includes", &rule.includes), ("excludes", &rule.excludes)] {
            let Some(filter) = filter else { continue };
            if filter.is_empty() {
                continue;
            }
            let what = if filter.min_kernel.as_ref().is_some_and(|k| !k.is_empty()) {
                "minKernel"
            } else if filter.arches.as_ref().is_some_and(|a| !a.is_empty()) {
                "arches"
            } else {
                "caps"
            };
            conditional.push(format!("{path}.{field}.{what}"));
        }
        if rule.name.is_some() {
            findings.errors.push(Problem {
                path: format!("{path}.name"),
                message: "moby's singular name is ignored by containerd, so the rule matches nothing there: write \"names\": [...] instead (`seccompd import` does this)".into(),
            });
        } else if rule.names.is_none() {
            findings.errors.push(Problem {
                path: format!("{path}.names"),
                message: "is missing: list the system calls the rule applies to".into(),
            });
        }
        syscalls.push(rule.to_rule());
    }
    if let Some(first) = conditional.first() {
        let more = match conditional.len() - 1 {
            0 => String::new(),
            n => format!(" (and {n} more: {})", conditional[1..].join(", ")),
        };
        findings.errors.push(Problem {
            path: first.clone(),
            message: format!("moby's includes/excludes{more}: {import_fix}"),
        });
    }
    let oci = OciProfile {
        default_action: profile.default_action,
        default_errno_ret: profile.default_errno_ret,
        architectures: profile.architectures.clone().unwrap_or_default(),
        flags: profile.flags.clone().unwrap_or_default(),
        syscalls,
    };
    (oci, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        decode(input.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn plain_oci_json_decodes() {
        let docs = decode(br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
        assert!(
            matches!(&docs[..], [Document::Json(p)] if p.syscalls.as_ref().unwrap().len() == 1)
        );
    }

    #[test]
    fn refuses_what_runtimes_read_differently() {
        assert!(err("{}").contains("missing field `defaultAction`"));
        assert!(err("null").contains("unconfined"));
        assert!(err("\u{feff}{\"defaultAction\":\"SCMP_ACT_ALLOW\"}").contains("byte-order mark"));
        assert!(err(r#"{"defaultAction":"SCMP_ACT_ALLOW"} {}"#).contains("trailing"));
        assert!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultAction":"SCMP_ACT_ERRNO"}"#)
                .contains("duplicate field")
        );
        assert!(
            err(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscals":[]}"#)
                .contains("unknown field `syscals`")
        );
        let e = err(r#"{"defaultAction":1}"#);
        assert!(e.contains("line 1 column 18"), "{e}");
        assert!(err("").contains("empty"));
        assert!(err("[]").contains("invalid"));
    }

    #[test]
    fn yaml_stream_of_seccomp_profiles() {
        let yaml = "apiVersion: seccompd.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: a, labels: {x: y}}\nspec:\n  defaultAction: SCMP_ACT_ALLOW\n---\napiVersion: seccompd.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: b}\nspec: {defaultAction: SCMP_ACT_LOG}\n";
        let docs = decode(yaml.as_bytes()).unwrap();
        assert_eq!(docs.len(), 2);
        assert!(matches!(&docs[1], Document::Resource(r) if r.name.as_deref() == Some("b")));
    }

    #[test]
    fn yaml_duplicate_keys_and_other_kinds_are_refused() {
        let dup = "apiVersion: seccompd.dev/v1alpha1\nkind: SeccompProfile\nspec:\n  defaultAction: SCMP_ACT_ALLOW\n  defaultAction: SCMP_ACT_ERRNO\n";
        assert!(decode(dup.as_bytes()).is_err());
        let cm = "apiVersion: v1\nkind: ConfigMap\nspec: {defaultAction: SCMP_ACT_ALLOW}\n";
        assert!(err(cm).contains("not a seccompd.dev/v1alpha1 SeccompProfile"));
    }

    #[test]
    fn moby_fields_are_reported_with_import_as_the_fix() {
        let text = r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":null}],
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","comment":"ok","includes":{},"excludes":{}},
                        {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}}]}"#;
        let [Document::Json(p)] = &decode(text.as_bytes()).unwrap()[..] else {
            panic!("one JSON document expected")
        };
        let (oci, findings) = to_oci(p, "");
        assert_eq!(oci.syscalls.len(), 2);
        let paths: Vec<_> = findings.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["archMap", "syscalls[1].includes.minKernel"]);
        assert!(findings.errors[0].message.contains("seccompd import"));
    }
}
