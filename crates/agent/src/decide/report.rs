//! What this node tells the cluster about each profile, decided from the plan's outcome.

use std::collections::BTreeMap;
use std::ffi::OsString;

use super::desired::ProfileInput;
use super::notices::{bounded_list, pod_list};
use super::plan::{DesiredProfile, Target, profile_of};
use super::pods::PodRef;
use crate::node::dir::Entry;
use seccompd_api::reason::{bounded_reason, bounded_warning};
use seccompd_api::{
    NodeProfileState, ProfileReport, ProfileWarning, SeccompNodeReportSpec, UnknownEntries,
};
use seccompd_profile::digest::SetDigest;
use seccompd_profile::limits::{MAX_PROFILE_NAME_LEN, MAX_REPORT_EXCEPTIONS, MAX_REPORT_WARNINGS};
use seccompd_profile::render::ContentHash;

/// The report from every profile's outcome on this node: the installed ones only counted and
/// summed into the digest, the others listed by name, so that its size follows the node's
/// problems, not the number of profiles. The list and its reasons are bounded as the CRD's
/// schema bounds them (see [`bounded_exceptions`]), so the API server never refuses the report.
pub fn report_spec(synced: bool, outcomes: Vec<ProfileReport>) -> SeccompNodeReportSpec {
    let (installed, exceptions): (Vec<_>, Vec<_>) = outcomes
        .into_iter()
        .partition(|r| r.state == NodeProfileState::Installed && r.content_hash.is_some());
    let installed_digest = SetDigest::of_set(
        installed
            .iter()
            .filter_map(|r| Some((r.name.as_str(), r.content_hash.as_ref()?))),
    );
    let (exceptions, omitted) = bounded_exceptions(exceptions);
    SeccompNodeReportSpec {
        synced,
        installed: u32::try_from(installed.len()).unwrap_or(u32::MAX),
        installed_digest,
        exceptions,
        exceptions_omitted: u32::try_from(omitted).unwrap_or(u32::MAX),
        unknown_entries: None,
        runtime: None,
        floors: Vec::new(),
        largest_filter: None,
        warnings: Vec::new(),
        warnings_omitted: 0,
    }
}

/// What this node warns of the profiles it installs: one entry per profile (the built-in
/// ones aside, which are in no report) whose rendering the node check accepted with warnings
/// that depend on the node, `warnings_of` its content hash, sorted by name. Not bounded yet:
/// see [`bounded_warnings`].
pub fn profile_warnings<'a>(
    desired: &BTreeMap<String, DesiredProfile>,
    warnings_of: impl Fn(&ContentHash) -> &'a [String],
) -> Vec<ProfileWarning> {
    desired
        .iter()
        .filter(|(name, _)| !super::builtin::is_builtin(name))
        .filter_map(|(name, want)| {
            let Target::Install(rendered) = &want.target else {
                return None;
            };
            let warnings = warnings_of(&rendered.hash);
            (!warnings.is_empty()).then(|| ProfileWarning {
                name: name.clone(),
                content_hash: rendered.hash.clone(),
                message: warnings.join("; "),
            })
        })
        .collect()
}

/// At most [`MAX_REPORT_WARNINGS`] of `warnings`, the first by name, each message cut to
/// [`seccompd_profile::limits::MAX_WARNING_LEN`], and how many were left out (an entry whose
/// name is over [`MAX_PROFILE_NAME_LEN`], which no profile has, is left out too: the API
/// server would refuse the whole report).
pub fn bounded_warnings(mut warnings: Vec<ProfileWarning>) -> (Vec<ProfileWarning>, u32) {
    let before = warnings.len();
    warnings.retain(|w| w.name.chars().count() <= MAX_PROFILE_NAME_LEN);
    warnings.sort_by(|a, b| a.name.cmp(&b.name));
    warnings.truncate(MAX_REPORT_WARNINGS);
    for w in &mut warnings {
        w.message = bounded_warning(std::mem::take(&mut w.message));
    }
    let omitted = before - warnings.len();
    (warnings, u32::try_from(omitted).unwrap_or(u32::MAX))
}

/// At most [`MAX_REPORT_EXCEPTIONS`] of `exceptions`, sorted by name, each reason cut to the
/// bound, and how many were left out.
///
/// Those with a content hash are kept first: they are the retained files of deleted profiles
/// that pods still use, and after a restart the agent keeps such a file only if its last
/// report vouches for it (see [`vouched_files`]); the rest only inform the status. An entry
/// whose name is over [`MAX_PROFILE_NAME_LEN`] (no profile has one) is left out too, since the
/// API server would refuse the whole report for it. After a restart, the file of an entry left
/// out counts as an added file and breaks the digest, so the agent then vouches for the listed
/// exceptions only: it forgets, it never takes bytes it cannot prove it wrote.
pub fn bounded_exceptions(mut exceptions: Vec<ProfileReport>) -> (Vec<ProfileReport>, usize) {
    let before = exceptions.len();
    exceptions.retain(|r| r.name.chars().count() <= MAX_PROFILE_NAME_LEN);
    exceptions.sort_by(|a, b| {
        (a.content_hash.is_none(), &a.name).cmp(&(b.content_hash.is_none(), &b.name))
    });
    exceptions.truncate(MAX_REPORT_EXCEPTIONS);
    exceptions.sort_by(|a, b| a.name.cmp(&b.name));
    for r in &mut exceptions {
        r.reason = r.reason.take().map(bounded_reason);
    }
    let omitted = before - exceptions.len();
    (exceptions, omitted)
}

pub use seccompd_profile::limits::MAX_NAMED_ENTRIES;

/// The report's list of entries seccompd left alone (`names` sorted); `None` when there are
/// none.
pub fn unknown_entries(names: &[OsString]) -> Option<UnknownEntries> {
    (!names.is_empty()).then(|| UnknownEntries {
        count: u32::try_from(names.len()).unwrap_or(u32::MAX),
        names: names
            .iter()
            .take(MAX_NAMED_ENTRIES)
            .map(|n| n.to_string_lossy().into_owned())
            .collect(),
    })
}

/// `a, b and 3 more`, for logs and errors.
pub fn entry_list(names: &[OsString]) -> String {
    let shown: Vec<String> = names
        .iter()
        .map(|n| format!("{:?}", n.to_string_lossy()))
        .collect();
    bounded_list(&shown, MAX_NAMED_ENTRIES)
}

/// The node's report: one entry per profile, sorted by name.
///
/// `write_errors` holds the profiles whose file could not be written on this pass, with why.
/// A profile only counts as installed when its file is known to hold the rendered bytes.
pub fn node_reports(
    desired: &BTreeMap<String, DesiredProfile>,
    write_errors: &BTreeMap<String, String>,
) -> Vec<ProfileReport> {
    desired
        .iter()
        .map(|(name, want)| {
            let (state, content_hash, reason) = match (&want.target, write_errors.get(name)) {
                (Target::Install(_), Some(err)) => {
                    (NodeProfileState::Error, None, Some(err.clone()))
                }
                (Target::Install(r), None) => {
                    (NodeProfileState::Installed, Some(r.hash.clone()), None)
                }
                (Target::Invalid(why), _) => (NodeProfileState::Invalid, None, Some(why.clone())),
                (Target::Unchecked { reason, .. }, _) => (
                    NodeProfileState::Error,
                    None,
                    Some(format!(
                        "the node check could not finish: {reason}; retrying"
                    )),
                ),
            };
            ProfileReport {
                name: name.clone(),
                state,
                generation: want.generation,
                content_hash,
                reason,
            }
        })
        .collect()
}

/// The files on disk that the agent's last report (from before it restarted) vouches for, by
/// profile, with their hash: each listed exception whose hash the file still has, and the
/// installed files when together they still add up to the report's digest. A single changed,
/// added or removed file breaks the digest, and then only the listed exceptions are vouched
/// for: the agent never takes bytes it cannot prove it wrote as a profile's last valid version.
pub fn vouched_files(
    last: &SeccompNodeReportSpec,
    actual: &BTreeMap<OsString, Entry>,
) -> BTreeMap<String, ContentHash> {
    let on_disk: BTreeMap<&str, &ContentHash> = actual
        .iter()
        .filter_map(|(file, entry)| match entry {
            Entry::File { hash } => Some((profile_of(file)?, hash)),
            _ => None,
        })
        // The built-in profiles are in no report (see `builtin::api_reports`).
        .filter(|(name, _)| !super::builtin::is_builtin(name))
        .collect();
    let listed: BTreeMap<&str, Option<&ContentHash>> = last
        .exceptions
        .iter()
        .map(|r| (r.name.as_str(), r.content_hash.as_ref()))
        .collect();
    let mut vouched: BTreeMap<String, ContentHash> = listed
        .iter()
        .filter_map(|(name, hash)| {
            let hash = (*hash)?;
            (on_disk.get(name) == Some(&hash)).then(|| (name.to_string(), hash.clone()))
        })
        .collect();
    let installed: Vec<(&str, &ContentHash)> = on_disk
        .iter()
        .filter(|(name, _)| !listed.contains_key(*name))
        .map(|(name, hash)| (*name, *hash))
        .collect();
    let digest_holds = last.installed as usize == installed.len()
        && SetDigest::of_set(installed.iter().copied()) == last.installed_digest;
    if digest_holds {
        vouched.extend(
            installed
                .into_iter()
                .map(|(name, hash)| (name.to_string(), hash.clone())),
        );
    }
    vouched
}

/// Report entries for deleted profiles whose file stays: `kept` maps each to the hash of its
/// file, `users` names the pods that use it.
pub fn retained_reports(
    kept: &BTreeMap<String, ContentHash>,
    users: &BTreeMap<String, Vec<PodRef>>,
) -> Vec<ProfileReport> {
    kept.iter()
        .map(|(name, hash)| {
            let pods = users.get(name).map(Vec::as_slice).unwrap_or_default();
            ProfileReport {
                name: name.clone(),
                state: NodeProfileState::Retained,
                generation: None,
                content_hash: Some(hash.clone()),
                reason: Some(format!(
                    "the SeccompProfile was deleted; the file stays while pods on this node use it: {}",
                    pod_list(pods)
                )),
            }
        })
        .collect()
}

/// Report entries when the directory could not even be listed: every profile is an `Error`
/// with `reason`, since what its file holds is unknown.
pub fn unknown_state_reports(profiles: &[ProfileInput<'_>], reason: &str) -> Vec<ProfileReport> {
    let mut out: Vec<ProfileReport> = profiles
        .iter()
        .map(|p| ProfileReport {
            name: p.name.to_string(),
            state: NodeProfileState::Error,
            generation: p.generation,
            content_hash: None,
            reason: Some(reason.to_string()),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::desired::Origin;
    use seccompd_profile::limits::{MAX_REASON_LEN, MAX_WARNING_LEN};
    use seccompd_profile::render::{Rendered, content_hash};

    fn install(text: &str) -> DesiredProfile {
        DesiredProfile {
            generation: Some(4),
            floors: Vec::new(),
            instructions: None,
            target: Target::Install(Rendered {
                bytes: text.as_bytes().into(),
                hash: content_hash(text.as_bytes()),
            }),
        }
    }

    #[test]
    fn installed_profiles_are_summed_into_the_digest_and_the_rest_listed() {
        let desired = BTreeMap::from([
            ("a".to_string(), install("A")),
            ("b".to_string(), install("B")),
            (
                "bad".to_string(),
                DesiredProfile {
                    generation: Some(2),
                    floors: Vec::new(),
                    instructions: None,
                    target: Target::Invalid("spec.syscalls[0].names: empty".into()),
                },
            ),
        ]);
        let spec = report_spec(true, node_reports(&desired, &BTreeMap::new()));
        assert!(spec.synced);
        assert_eq!(spec.installed, 2);
        assert_eq!(
            spec.installed_digest,
            SetDigest::of_set([("a", &content_hash(b"A")), ("b", &content_hash(b"B"))])
        );
        let listed: Vec<_> = spec.exceptions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(listed, ["bad"]);
        assert_eq!(spec.exceptions[0].state, NodeProfileState::Invalid);
    }

    fn rejected(name: &str, reason: &str) -> ProfileReport {
        ProfileReport {
            name: name.into(),
            state: NodeProfileState::Invalid,
            generation: Some(1),
            content_hash: None,
            reason: Some(reason.into()),
        }
    }

    fn retained(name: &str) -> ProfileReport {
        ProfileReport {
            name: name.into(),
            state: NodeProfileState::Retained,
            generation: None,
            content_hash: Some(content_hash(name.as_bytes())),
            reason: Some("pods use it".into()),
        }
    }

    #[test]
    fn exceptions_over_the_bound_are_counted_not_listed() {
        let extra = 10;
        let outcomes: Vec<_> = (0..MAX_REPORT_EXCEPTIONS + extra)
            .rev()
            .map(|i| rejected(&format!("p{i:04}"), "bad"))
            .collect();
        let spec = report_spec(true, outcomes);
        assert_eq!(spec.exceptions.len(), MAX_REPORT_EXCEPTIONS);
        assert_eq!(spec.exceptions_omitted as usize, extra);
        let listed: Vec<_> = spec.exceptions.iter().map(|r| r.name.clone()).collect();
        let first: Vec<_> = (0..MAX_REPORT_EXCEPTIONS)
            .map(|i| format!("p{i:04}"))
            .collect();
        assert_eq!(listed, first, "the first by name, sorted");

        let within = report_spec(true, vec![rejected("a", "bad"), retained("b")]);
        assert_eq!(within.exceptions.len(), 2);
        assert_eq!(within.exceptions_omitted, 0);
    }

    #[test]
    fn retained_files_stay_listed_when_the_list_is_full() {
        let mut outcomes: Vec<_> = (0..MAX_REPORT_EXCEPTIONS)
            .map(|i| rejected(&format!("a{i:04}"), "bad"))
            .collect();
        outcomes.extend(["z1", "z2", "z3"].map(retained));
        let spec = report_spec(true, outcomes);
        assert_eq!(spec.exceptions.len(), MAX_REPORT_EXCEPTIONS);
        assert_eq!(spec.exceptions_omitted, 3);
        let kept: Vec<_> = spec
            .exceptions
            .iter()
            .filter(|r| r.state == NodeProfileState::Retained)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(kept, ["z1", "z2", "z3"]);
        assert!(
            spec.exceptions.windows(2).all(|w| w[0].name < w[1].name),
            "still sorted by name"
        );
    }

    #[test]
    fn long_reasons_are_cut_to_the_bound() {
        let long = "y".repeat(100 * 1024);
        let spec = report_spec(true, vec![rejected("p", &long), rejected("q", "short")]);
        let reason = spec.exceptions[0].reason.as_deref().unwrap();
        assert_eq!(reason.chars().count(), MAX_REASON_LEN);
        assert!(reason.ends_with(seccompd_api::reason::CUT_MARKER));
        assert_eq!(spec.exceptions[1].reason.as_deref(), Some("short"));
    }

    #[test]
    fn an_entry_with_a_name_over_the_bound_is_left_out_and_counted() {
        let long = "n".repeat(MAX_PROFILE_NAME_LEN + 1);
        let at_bound = "m".repeat(MAX_PROFILE_NAME_LEN);
        let spec = report_spec(
            true,
            vec![rejected(&long, "bad"), rejected(&at_bound, "bad")],
        );
        let listed: Vec<_> = spec.exceptions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(listed, [at_bound.as_str()]);
        assert_eq!(spec.exceptions_omitted, 1);
    }

    /// Every string at its bound, in characters that JSON escapes at 6 bytes each: the
    /// largest report the schema admits still fits one API object.
    #[test]
    fn a_report_at_every_bound_fits_the_api_servers_object_limit() {
        use seccompd_profile::limits::{
            MAX_API_OBJECT_BYTES, MAX_FLOOR_NAME_LEN, MAX_NODE_NAME_LEN, MAX_REPORT_FLOORS,
        };
        let worst_reason = "\u{1}".repeat(MAX_REASON_LEN * 2);
        let outcomes: Vec<_> = (0..MAX_REPORT_EXCEPTIONS)
            .map(|i| {
                let mut name = format!("{i:04}");
                name.push_str(&"n".repeat(MAX_PROFILE_NAME_LEN - name.len()));
                ProfileReport {
                    generation: Some(i64::MAX),
                    content_hash: Some(content_hash(name.as_bytes())),
                    ..rejected(&name, &worst_reason)
                }
            })
            .collect();
        // Every floor missing from as many profiles as a floor's report names, each with the
        // worst reason.
        let floors: Vec<seccompd_profile::floor::FloorStamp> = (0..MAX_REPORT_FLOORS)
            .map(|i| {
                let mut name = format!("{i:04}");
                name.push_str(&"f".repeat(MAX_FLOOR_NAME_LEN - name.len()));
                seccompd_profile::floor::FloorStamp {
                    digest: content_hash(name.as_bytes()),
                    name,
                }
            })
            .collect();
        let desired: BTreeMap<String, DesiredProfile> = outcomes
            .iter()
            .map(|r| {
                let want = DesiredProfile {
                    generation: r.generation,
                    floors: floors.clone(),
                    instructions: None,
                    target: Target::Invalid(worst_reason.clone()),
                };
                (r.name.clone(), want)
            })
            .collect();
        let floor_reports = crate::decide::floors::floor_reports(&floors, &desired, &outcomes);
        assert!(
            floor_reports
                .iter()
                .all(|f| f.missing.len() == MAX_NAMED_ENTRIES)
        );
        // As many warnings as a report lists, each at the longest message.
        let warnings: Vec<ProfileWarning> = outcomes
            .iter()
            .map(|r| ProfileWarning {
                name: r.name.clone(),
                content_hash: content_hash(r.name.as_bytes()),
                message: worst_reason.clone(),
            })
            .collect();
        let (warnings, warnings_omitted) = bounded_warnings(warnings);
        let spec = SeccompNodeReportSpec {
            floors: floor_reports,
            warnings,
            warnings_omitted,
            ..report_spec(true, outcomes)
        };
        assert_eq!(spec.floors.len(), MAX_REPORT_FLOORS);
        assert_eq!(spec.exceptions.len(), MAX_REPORT_EXCEPTIONS);
        assert_eq!(spec.warnings.len(), MAX_REPORT_WARNINGS);
        let node = "n".repeat(MAX_NODE_NAME_LEN);
        // Server-side apply stores the agent's field set with the object: one key per entry.
        let entry_fields = serde_json::json!({".": {}, "f:contentHash": {}, "f:generation": {},
            "f:name": {}, "f:reason": {}, "f:state": {}});
        let exception_fields: serde_json::Map<String, serde_json::Value> = spec
            .exceptions
            .iter()
            .map(|r| {
                (
                    format!("k:{{\"name\":\"{}\"}}", r.name),
                    entry_fields.clone(),
                )
            })
            .collect();
        let warning_fields: serde_json::Map<String, serde_json::Value> = spec
            .warnings
            .iter()
            .map(|w| {
                (
                    format!("k:{{\"name\":\"{}\"}}", w.name),
                    serde_json::json!({".": {}, "f:contentHash": {}, "f:message": {}, "f:name": {}}),
                )
            })
            .collect();
        let object = serde_json::json!({
            "apiVersion": "seccompd.dev/v1alpha1",
            "kind": "SeccompNodeReport",
            "metadata": {
                "name": node,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": "u".repeat(36)}],
                "managedFields": [{"manager": "seccompd-agent", "operation": "Apply",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:exceptions": exception_fields, "f:floors": {}, "f:warnings": warning_fields}}}],
            },
            "spec": spec,
        });
        let bytes = serde_json::to_vec(&object).unwrap().len();
        assert!(
            bytes < MAX_API_OBJECT_BYTES,
            "{bytes} bytes at the bounds, over {MAX_API_OBJECT_BYTES}"
        );
    }

    #[test]
    fn the_profiles_installed_with_node_warnings_are_listed_with_them() {
        let desired = BTreeMap::from([
            ("quiet".to_string(), install("Q")),
            ("statx".to_string(), install("S")),
            ("default".to_string(), install("D")),
            (
                "bad".to_string(),
                DesiredProfile {
                    generation: Some(2),
                    floors: Vec::new(),
                    instructions: None,
                    target: Target::Invalid("rejected".into()),
                },
            ),
        ]);
        let said = [
            "spec.syscalls: this node's runtime (runc/1.5.3) calls statx".to_string(),
            "spec.syscalls: libseccomp 2.5.4 does not know foo".to_string(),
        ];
        let warnings_of = |hash: &ContentHash| -> &[String] {
            if *hash == content_hash(b"S") || *hash == content_hash(b"D") {
                &said
            } else {
                &[]
            }
        };
        let got = profile_warnings(&desired, warnings_of);
        assert_eq!(
            got,
            [ProfileWarning {
                name: "statx".into(),
                content_hash: content_hash(b"S"),
                message: "spec.syscalls: this node's runtime (runc/1.5.3) calls statx; spec.syscalls: libseccomp 2.5.4 does not know foo".into(),
            }],
            "the built-in default profile is in no report"
        );
    }

    #[test]
    fn warnings_over_the_bound_are_counted_and_long_ones_cut() {
        let extra = 5;
        let warnings: Vec<ProfileWarning> = (0..MAX_REPORT_WARNINGS + extra)
            .rev()
            .map(|i| ProfileWarning {
                name: format!("p{i:04}"),
                content_hash: content_hash(b"x"),
                message: "w".repeat(MAX_WARNING_LEN * 3),
            })
            .collect();
        let (listed, omitted) = bounded_warnings(warnings);
        assert_eq!(listed.len(), MAX_REPORT_WARNINGS);
        assert_eq!(omitted as usize, extra);
        assert_eq!(listed[0].name, "p0000", "the first by name");
        assert!(listed.windows(2).all(|w| w[0].name < w[1].name));
        assert!(
            listed
                .iter()
                .all(|w| w.message.chars().count() == MAX_WARNING_LEN
                    && w.message.ends_with(seccompd_api::reason::CUT_MARKER))
        );
    }

    fn files(pairs: &[(&str, &[u8])]) -> BTreeMap<OsString, Entry> {
        pairs
            .iter()
            .map(|(file, bytes)| {
                (
                    OsString::from(*file),
                    Entry::File {
                        hash: content_hash(bytes),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn the_last_report_vouches_for_files_that_still_add_up_to_its_digest() {
        let desired = BTreeMap::from([
            ("a".to_string(), install("A")),
            ("b".to_string(), install("B")),
        ]);
        let kept = BTreeMap::from([("old".to_string(), content_hash(b"O"))]);
        let mut outcomes = node_reports(&desired, &BTreeMap::new());
        outcomes.extend(retained_reports(&kept, &BTreeMap::new()));
        let last = report_spec(true, outcomes);
        let intact = files(&[("a.json", b"A"), ("b.json", b"B"), ("old.json", b"O")]);
        let got = vouched_files(&last, &intact);
        assert_eq!(got.keys().collect::<Vec<_>>(), ["a", "b", "old"]);
        assert_eq!(got["a"], content_hash(b"A"));
        // The built-in recording profile's file is in no report and breaks no digest.
        let with_builtin = files(&[
            ("a.json", b"A"),
            ("b.json", b"B"),
            ("old.json", b"O"),
            ("record.json", b"R"),
        ]);
        assert_eq!(vouched_files(&last, &with_builtin), got);

        let tampered = files(&[("a.json", b"A"), ("b.json", b"X"), ("old.json", b"O")]);
        let got = vouched_files(&last, &tampered);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            ["old"],
            "one changed file breaks the digest: only the listed exception stays vouched for"
        );

        let added = files(&[("a.json", b"A"), ("b.json", b"B"), ("c.json", b"C")]);
        assert!(
            vouched_files(&last, &added).is_empty(),
            "an extra file, and old.json gone"
        );
    }

    #[test]
    fn each_outcome_maps_to_its_state() {
        let desired = BTreeMap::from([
            ("ok".to_string(), install("A")),
            ("broken-disk".to_string(), install("B")),
            (
                "bad".to_string(),
                DesiredProfile {
                    generation: Some(2),
                    floors: Vec::new(),
                    instructions: None,
                    target: Target::Invalid("spec.syscalls[0].names: empty".into()),
                },
            ),
        ]);
        let errors = BTreeMap::from([("broken-disk".to_string(), "No space left".to_string())]);
        let got = node_reports(&desired, &errors);
        let by_name: BTreeMap<_, _> = got.iter().map(|r| (r.name.as_str(), r)).collect();
        assert_eq!(by_name["ok"].state, NodeProfileState::Installed);
        assert_eq!(
            by_name["ok"].content_hash.as_ref(),
            Some(&content_hash(b"A"))
        );
        assert_eq!(by_name["ok"].generation, Some(4));
        assert_eq!(by_name["broken-disk"].state, NodeProfileState::Error);
        assert_eq!(
            by_name["broken-disk"].reason.as_deref(),
            Some("No space left")
        );
        assert_eq!(by_name["broken-disk"].content_hash, None);
        assert_eq!(by_name["bad"].state, NodeProfileState::Invalid);
        assert_eq!(by_name["bad"].generation, Some(2));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn retained_profiles_name_their_pods() {
        let kept = BTreeMap::from([("old".to_string(), ContentHash::from("sha256:o"))]);
        let users = BTreeMap::from([(
            "old".to_string(),
            vec![PodRef {
                namespace: "ns".into(),
                name: "web".into(),
                uid: "u".into(),
            }],
        )]);
        let got = retained_reports(&kept, &users);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].state, NodeProfileState::Retained);
        assert_eq!(got[0].content_hash, Some(ContentHash::from("sha256:o")));
        assert!(
            got[0]
                .reason
                .as_deref()
                .unwrap()
                .ends_with("use it: ns/web")
        );
    }

    #[test]
    fn unknown_entries_are_counted_and_the_first_named() {
        assert_eq!(unknown_entries(&[]), None);
        let names: Vec<OsString> = (0..12)
            .map(|i| OsString::from(format!("x{i:02}")))
            .collect();
        let got = unknown_entries(&names).unwrap();
        assert_eq!(got.count, 12);
        assert_eq!(got.names.len(), MAX_NAMED_ENTRIES);
        assert_eq!(got.names[0], "x00");
        let text = entry_list(&names);
        assert!(text.starts_with("\"x00\", \"x01\""), "{text}");
        assert!(text.ends_with("\"x09\" and 2 more"), "{text}");
    }

    #[test]
    fn an_unlisted_directory_reports_every_profile_as_error_without_a_hash() {
        let spec: seccompd_profile::model::ProfileSpec =
            serde_json::from_value(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"})).unwrap();
        let inputs = [
            ProfileInput {
                name: "b",
                generation: Some(2),
                origin: Origin::Api { uid: None },
                spec: &spec,
            },
            ProfileInput {
                name: "a",
                generation: Some(1),
                origin: Origin::Api { uid: None },
                spec: &spec,
            },
        ];
        let got = unknown_state_reports(&inputs, "permission denied");
        let names: Vec<_> = got.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(got.iter().all(|r| r.state == NodeProfileState::Error
            && r.content_hash.is_none()
            && r.reason.as_deref() == Some("permission denied")));
        assert_eq!(got[1].generation, Some(2));
    }
}
