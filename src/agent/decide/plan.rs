//! The pure heart of the agent: given what the API wants and what is on disk, decide which
//! files to write and which to remove. No I/O; every rule here is tested with plain values.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};

use crate::node::dir::Entry;
use crate::profile::limits::FILE_SUFFIX;
use crate::profile::render::{ContentHash, Rendered};

/// What the API wants on this node for one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredProfile {
    /// metadata.generation of the SeccompProfile.
    pub generation: Option<i64>,
    /// Install these bytes, or the profile is invalid for this reason.
    pub target: Target,
}

/// The outcome of resolving, validating and rendering one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Valid: the file must hold exactly these bytes.
    Install(Rendered),
    /// Invalid: nothing new is written; the last valid file (if any) stays.
    Invalid(String),
    /// The node check could not finish for this rendering and is tried again later; until
    /// then it is treated like an invalid one (the last valid file, if any, stays).
    Unchecked {
        /// The content hash of the rendering that waits for its check.
        hash: ContentHash,
        /// Why the check did not finish.
        reason: String,
    },
}

/// Files to write and to remove, in that order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Profiles whose file is missing or differs from what it must hold.
    pub writes: Vec<FileWrite>,
    /// Entries no profile explains.
    pub removals: Vec<Removal>,
}

/// One file to (re)write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileWrite {
    /// The profile it belongs to.
    pub profile: String,
    /// `<profile>.json`.
    pub file_name: OsString,
    /// The content and its hash.
    pub rendered: Rendered,
    /// Why the file is written.
    pub kind: WriteKind,
}

/// Why a file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// Nothing was at the name, and the agent has not written these bytes there before.
    Install,
    /// The profile changed (or the agent does not know what it wrote before, as after a
    /// restart): something else is at the name.
    Update,
    /// Drift: the agent had written exactly these bytes, and the file was deleted, truncated,
    /// edited or swapped for something else behind its back.
    Repair,
}

/// One entry to remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// The entry's name in the directory.
    pub file_name: OsString,
    /// Why it goes.
    pub why: RemovalReason,
}

/// Why an entry is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalReason {
    /// The SeccompProfile it belonged to no longer exists.
    ProfileGone,
    /// Not something seccompd writes: a foreign name, a leftover temporary file, or a
    /// symlink, directory, fifo or oversized file at a profile's name that no write replaces.
    Foreign,
}

/// The file name a profile is installed under.
pub fn file_name(profile: &str) -> OsString {
    OsString::from(format!("{profile}{FILE_SUFFIX}"))
}

/// The profile a file name belongs to, if it has the form `<profile>.json`.
pub fn profile_of(file_name: &OsStr) -> Option<&str> {
    let name = file_name.to_str()?.strip_suffix(FILE_SUFFIX)?;
    (!name.is_empty() && !name.starts_with('.')).then_some(name)
}

/// Decides what to write and remove.
///
/// * `desired`: every SeccompProfile the API has, by name (only call this after a complete
///   list: an unknown state must never look like "no profiles").
/// * `actual`: the directory as scanned.
/// * `last_good`: the last valid rendering written per profile, so that an invalid update can
///   still have its previous file repaired.
/// * `retained`: referenced profiles the API does not have. A file stays at such a name only
///   when the agent vouches for it (it is in `last_good`: written by this agent, or found
///   with the hash of its last report); anything else there is foreign, even though a pod
///   references the name.
pub fn plan(
    desired: &BTreeMap<String, DesiredProfile>,
    actual: &BTreeMap<OsString, Entry>,
    last_good: &BTreeMap<String, Rendered>,
    retained: &BTreeSet<String>,
) -> Plan {
    let mut out = Plan::default();
    for (name, want) in desired {
        let file = file_name(name);
        let on_disk = actual.get(&file);
        let content = match &want.target {
            Target::Install(rendered) => Some(rendered),
            // Keep what is there; only restore it if we know the last valid bytes.
            Target::Invalid(_) | Target::Unchecked { .. } => {
                last_good.get(name).filter(|_| on_disk.is_some())
            }
        };
        push_write_if_differs(&mut out, name, file, on_disk, content, last_good.get(name));
    }
    for name in retained.iter().filter(|n| !desired.contains_key(*n)) {
        let file = file_name(name);
        let on_disk = actual.get(&file);
        let known = last_good.get(name);
        push_write_if_differs(&mut out, name, file, on_disk, known, known);
    }
    let written: BTreeSet<&OsStr> = out.writes.iter().map(|w| w.file_name.as_os_str()).collect();
    for (file, entry) in actual {
        let owner = profile_of(file).filter(|p| {
            desired.contains_key(*p) || (retained.contains(*p) && last_good.contains_key(*p))
        });
        // A profile's name keeps a regular file (perhaps the last valid version) or gets one
        // written over whatever is there; a symlink, fifo or directory never stays.
        let keep = written.contains(file.as_os_str()) || matches!(entry, Entry::File { .. });
        if owner.is_some() && keep {
            continue;
        }
        let unvouched = profile_of(file).is_some_and(|p| retained.contains(p));
        let why = match (owner, profile_of(file), entry) {
            (None, Some(_), Entry::File { .. }) if !unvouched => RemovalReason::ProfileGone,
            _ => RemovalReason::Foreign,
        };
        out.removals.push(Removal {
            file_name: file.clone(),
            why,
        });
    }
    out
}

fn push_write_if_differs(
    out: &mut Plan,
    profile: &str,
    file: OsString,
    on_disk: Option<&Entry>,
    content: Option<&Rendered>,
    written_before: Option<&Rendered>,
) {
    let Some(rendered) = content else { return };
    let up_to_date = matches!(on_disk, Some(Entry::File { hash }) if *hash == rendered.hash);
    if up_to_date {
        return;
    }
    let kind = if written_before == Some(rendered) {
        WriteKind::Repair
    } else if on_disk.is_some() {
        WriteKind::Update
    } else {
        WriteKind::Install
    };
    out.writes.push(FileWrite {
        profile: profile.to_string(),
        file_name: file,
        rendered: rendered.clone(),
        kind,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::dir::EntryKind;
    use crate::profile::render::content_hash;

    fn rendered(text: &str) -> Rendered {
        Rendered {
            bytes: text.as_bytes().to_vec(),
            hash: content_hash(text.as_bytes()),
        }
    }

    fn install(text: &str) -> DesiredProfile {
        DesiredProfile {
            generation: Some(1),
            target: Target::Install(rendered(text)),
        }
    }

    fn invalid() -> DesiredProfile {
        DesiredProfile {
            generation: Some(2),
            target: Target::Invalid("bad".into()),
        }
    }

    fn file(text: &str) -> Entry {
        Entry::File {
            hash: content_hash(text.as_bytes()),
        }
    }

    fn desired(items: &[(&str, DesiredProfile)]) -> BTreeMap<String, DesiredProfile> {
        items
            .iter()
            .map(|(n, d)| (n.to_string(), d.clone()))
            .collect()
    }

    fn actual(items: &[(&str, Entry)]) -> BTreeMap<OsString, Entry> {
        items
            .iter()
            .map(|(n, e)| (OsString::from(n), e.clone()))
            .collect()
    }

    fn names(writes: &[FileWrite]) -> Vec<&str> {
        writes.iter().map(|w| w.profile.as_str()).collect()
    }

    fn removed(plan: &Plan) -> Vec<(&str, RemovalReason)> {
        plan.removals
            .iter()
            .map(|r| (r.file_name.to_str().unwrap(), r.why))
            .collect()
    }

    #[test]
    fn missing_file_is_written() {
        let p = plan(
            &desired(&[("a", install("A"))]),
            &actual(&[]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert_eq!(names(&p.writes), ["a"]);
        assert_eq!(p.writes[0].file_name, "a.json");
        assert_eq!(p.writes[0].kind, WriteKind::Install);
        assert!(p.removals.is_empty());
    }

    #[test]
    fn identical_file_is_left_alone() {
        let p = plan(
            &desired(&[("a", install("A"))]),
            &actual(&[("a.json", file("A"))]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn changed_symlinked_or_oversized_file_is_rewritten() {
        for entry in [
            file("tampered"),
            Entry::NotAFile(EntryKind::Symlink),
            Entry::NotAFile(EntryKind::Directory),
            Entry::Oversized,
        ] {
            let p = plan(
                &desired(&[("a", install("A"))]),
                &actual(&[("a.json", entry.clone())]),
                &BTreeMap::new(),
                &BTreeSet::new(),
            );
            assert_eq!(names(&p.writes), ["a"], "{entry:?}");
            assert_eq!(p.writes[0].kind, WriteKind::Update);
        }
    }

    #[test]
    fn orphans_and_foreign_entries_are_removed() {
        let p = plan(
            &desired(&[("a", install("A"))]),
            &actual(&[
                ("a.json", file("A")),
                ("gone.json", file("G")),
                ("notes.txt", file("N")),
                (".seccompd-tmp-1-0-a.json", file("partial")),
                ("link.json", Entry::NotAFile(EntryKind::Symlink)),
            ]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert!(p.writes.is_empty());
        assert_eq!(
            removed(&p),
            [
                (".seccompd-tmp-1-0-a.json", RemovalReason::Foreign),
                ("gone.json", RemovalReason::ProfileGone),
                ("link.json", RemovalReason::Foreign),
                ("notes.txt", RemovalReason::Foreign),
            ]
        );
    }

    #[test]
    fn invalid_update_keeps_the_last_valid_file() {
        let p = plan(
            &desired(&[("a", invalid())]),
            &actual(&[("a.json", file("A1"))]),
            &BTreeMap::from([("a".to_string(), rendered("A1"))]),
            &BTreeSet::new(),
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn invalid_profile_with_unknown_history_keeps_whatever_is_there() {
        // After a restart the agent has no memory of the last valid bytes: the file stays.
        let p = plan(
            &desired(&[("a", invalid())]),
            &actual(&[("a.json", file("A1"))]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn invalid_profile_is_never_written_fresh() {
        let p = plan(
            &desired(&[("a", invalid())]),
            &actual(&[]),
            &BTreeMap::from([("a".to_string(), rendered("A1"))]),
            &BTreeSet::new(),
        );
        assert!(
            p.writes.is_empty(),
            "a deleted file is not recreated from an older version"
        );
    }

    #[test]
    fn tampered_file_of_an_invalid_profile_is_restored_to_the_last_valid_bytes() {
        let p = plan(
            &desired(&[("a", invalid())]),
            &actual(&[("a.json", file("garbage"))]),
            &BTreeMap::from([("a".to_string(), rendered("A1"))]),
            &BTreeSet::new(),
        );
        assert_eq!(names(&p.writes), ["a"]);
        assert_eq!(p.writes[0].rendered, rendered("A1"));
    }

    #[test]
    fn retained_profile_keeps_its_file_and_is_repaired() {
        let last_good = BTreeMap::from([("used".to_string(), rendered("U"))]);
        let retained = BTreeSet::from(["used".to_string()]);
        let kept = plan(
            &desired(&[]),
            &actual(&[("used.json", file("U"))]),
            &last_good,
            &retained,
        );
        assert_eq!(kept, Plan::default());
        let repaired = plan(
            &desired(&[]),
            &actual(&[("used.json", file("X"))]),
            &last_good,
            &retained,
        );
        assert_eq!(names(&repaired.writes), ["used"]);
    }

    #[test]
    fn drift_of_a_file_the_agent_wrote_is_a_repair() {
        let last_good = BTreeMap::from([("a".to_string(), rendered("A"))]);
        for on_disk in [
            vec![],
            vec![("a.json", file(""))],
            vec![("a.json", file("edited"))],
            vec![("a.json", Entry::NotAFile(EntryKind::Symlink))],
        ] {
            let p = plan(
                &desired(&[("a", install("A"))]),
                &actual(&on_disk),
                &last_good,
                &BTreeSet::new(),
            );
            assert_eq!(names(&p.writes), ["a"], "{on_disk:?}");
            assert_eq!(p.writes[0].kind, WriteKind::Repair, "{on_disk:?}");
        }
    }

    #[test]
    fn a_changed_profile_is_an_update_and_a_new_one_an_install() {
        let last_good = BTreeMap::from([("a".to_string(), rendered("A1"))]);
        let p = plan(
            &desired(&[("a", install("A2")), ("b", install("B"))]),
            &actual(&[("a.json", file("A1"))]),
            &last_good,
            &BTreeSet::new(),
        );
        let kinds: Vec<_> = p
            .writes
            .iter()
            .map(|w| (w.profile.as_str(), w.kind))
            .collect();
        assert_eq!(kinds, [("a", WriteKind::Update), ("b", WriteKind::Install)]);
    }

    #[test]
    fn a_referenced_name_keeps_only_a_file_the_agent_vouches_for() {
        // A pod references "used", which the API does not have. Without a version the agent
        // wrote or found with its last report's hash, whatever is there is foreign: a pod
        // must not run under content nobody validated.
        let retained = BTreeSet::from(["used".to_string()]);
        for entry in [
            file("U"),
            Entry::NotAFile(EntryKind::Symlink),
            Entry::NotAFile(EntryKind::Directory),
            Entry::NotAFile(EntryKind::Special),
            Entry::Oversized,
            Entry::Unreadable("permission denied".into()),
        ] {
            let p = plan(
                &desired(&[]),
                &actual(&[("used.json", entry.clone())]),
                &BTreeMap::new(),
                &retained,
            );
            assert!(p.writes.is_empty());
            assert_eq!(
                removed(&p),
                [("used.json", RemovalReason::Foreign)],
                "{entry:?}"
            );
        }
    }

    #[test]
    fn an_unreadable_entry_at_a_profile_name_is_rewritten() {
        let p = plan(
            &desired(&[("a", install("A"))]),
            &actual(&[("a.json", Entry::Unreadable("permission denied".into()))]),
            &BTreeMap::from([("a".to_string(), rendered("A"))]),
            &BTreeSet::new(),
        );
        assert_eq!(names(&p.writes), ["a"]);
        assert_eq!(p.writes[0].kind, WriteKind::Repair);
        assert!(p.removals.is_empty());
    }

    #[test]
    fn an_unchecked_profile_keeps_its_last_valid_file_like_an_invalid_one() {
        let unchecked = DesiredProfile {
            generation: Some(2),
            target: Target::Unchecked {
                hash: content_hash(b"A2"),
                reason: "timed out".into(),
            },
        };
        let last_good = BTreeMap::from([("a".to_string(), rendered("A1"))]);
        let kept = plan(
            &desired(&[("a", unchecked.clone())]),
            &actual(&[("a.json", file("A1"))]),
            &last_good,
            &BTreeSet::new(),
        );
        assert_eq!(kept, Plan::default());
        let fresh = plan(
            &desired(&[("a", unchecked)]),
            &actual(&[]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert_eq!(fresh, Plan::default(), "nothing unchecked is written");
    }

    #[test]
    fn retained_profile_that_was_never_on_disk_is_not_written() {
        let p = plan(
            &desired(&[]),
            &actual(&[]),
            &BTreeMap::new(),
            &BTreeSet::from(["never".to_string()]),
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn retained_file_goes_when_the_last_user_does() {
        let last_good = BTreeMap::from([("used".to_string(), rendered("U"))]);
        let p = plan(
            &desired(&[]),
            &actual(&[("used.json", file("U"))]),
            &last_good,
            &BTreeSet::new(),
        );
        assert_eq!(removed(&p), [("used.json", RemovalReason::ProfileGone)]);
    }

    #[test]
    fn symlink_at_an_invalid_profile_without_history_is_removed() {
        let p = plan(
            &desired(&[("a", invalid())]),
            &actual(&[("a.json", Entry::NotAFile(EntryKind::Symlink))]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert!(p.writes.is_empty());
        assert_eq!(removed(&p), [("a.json", RemovalReason::Foreign)]);
    }

    #[test]
    fn empty_desired_removes_every_profile_file() {
        // Only safe because the caller never plans before a complete list.
        let p = plan(
            &desired(&[]),
            &actual(&[("a.json", file("A")), ("b.json", file("B"))]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert_eq!(p.removals.len(), 2);
    }

    #[test]
    fn profile_of_recognises_only_profile_file_names() {
        assert_eq!(profile_of(OsStr::new("a.json")), Some("a"));
        assert_eq!(profile_of(OsStr::new("a.b.json")), Some("a.b"));
        assert_eq!(profile_of(OsStr::new(".json")), None);
        assert_eq!(profile_of(OsStr::new(".seccompd-tmp-1.json")), None);
        assert_eq!(profile_of(OsStr::new("a.txt")), None);
    }
}
