//! The pure heart of the agent: given what the API wants, what is on disk and which names the
//! agent owns (its manifest), decide which files to write and which to remove, and which
//! entries to leave alone and report. No I/O; every rule here is tested with plain values.
//!
//! The one rule about removal: only an entry the agent can tell is its own goes, that is a
//! name its manifest lists or one of its temporary files, and never a directory. Anything else
//! (another tool's file, a planted symlink, a directory) stays where it is and is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};

use crate::node::dir::{Entry, EntryKind, is_temp_name};
use crate::node::manifest::{MANIFEST_NAME, Manifest};
use seccompd_profile::floor::FloorStamp;
use seccompd_profile::limits::FILE_SUFFIX;
use seccompd_profile::render::{ContentHash, Rendered};

/// What the API wants on this node for one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredProfile {
    /// metadata.generation of the SeccompProfile.
    pub generation: Option<i64>,
    /// The SeccompFloors that apply to the profile (those that do not exempt it), in the
    /// version merged into `target`; its file carries them once it is installed.
    pub floors: Vec<FloorStamp>,
    /// Length of the compiled program for this node, once the node check has accepted it.
    pub instructions: Option<usize>,
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

/// What to write, take over, remove and report, in that order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Profiles whose file is missing or differs from what it must hold.
    pub writes: Vec<FileWrite>,
    /// Files at a profile's name that hold exactly the bytes the agent would write there but
    /// that its manifest does not list: listed from now on, as the agent's own.
    pub adopt: Vec<OsString>,
    /// The agent's own entries no profile explains.
    pub removals: Vec<Removal>,
    /// Entries left in place, sorted: every one the agent did not write (a directory never is
    /// one it wrote, even at a name it owns).
    pub unknown: Vec<OsString>,
    /// Profiles whose file cannot be written because an entry the agent may not remove is at
    /// its name, with why.
    pub blocked: BTreeMap<String, String>,
    /// Listed names with nothing on disk and nothing to write: dropped from the manifest.
    pub forget: Vec<OsString>,
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

/// Why an entry of the agent's own is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalReason {
    /// The SeccompProfile it belonged to no longer exists.
    ProfileGone,
    /// A leftover temporary file, or something swapped in at a name the agent owns (a
    /// symlink, a fifo, an oversized or unreadable file, or a file it cannot vouch for at a
    /// referenced name) that no write replaces.
    Stray,
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

/// What was at a name, in words: for logs and report reasons.
pub fn describe(found: Option<&Entry>) -> String {
    match found {
        None => "nothing (deleted)".into(),
        Some(Entry::File { hash }) => format!("a file with other content ({hash})"),
        Some(Entry::Oversized) => "an oversized file".into(),
        Some(Entry::NotAFile(EntryKind::Symlink)) => "a symlink".into(),
        Some(Entry::NotAFile(EntryKind::Directory)) => "a directory".into(),
        Some(Entry::NotAFile(EntryKind::Special)) => "a fifo, socket or device".into(),
        Some(Entry::Unreadable(why)) => format!("an entry the agent cannot read ({why})"),
    }
}

/// Decides what to write, adopt, remove and report.
///
/// * `desired`: every SeccompProfile the API has, by name (only call this after a complete
///   list: an unknown state must never look like "no profiles").
/// * `actual`: the directory as scanned.
/// * `owned`: the names the agent's manifest lists: the only ones it writes over or removes
///   (besides its temporary files).
/// * `last_good`: the last valid rendering written per profile, so that an invalid update can
///   still have its previous file repaired.
/// * `retained`: referenced profiles the API does not have. A file stays at such a name only
///   when the agent vouches for it (it is in `last_good`: written by this agent, or found
///   with the hash of its last report); another of its own there is removed, anyone else's
///   is left and reported.
pub fn plan(
    desired: &BTreeMap<String, DesiredProfile>,
    actual: &BTreeMap<OsString, Entry>,
    owned: &Manifest,
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
        let write = Candidate {
            profile: name,
            on_disk,
            content,
            written_before: last_good.get(name),
        };
        out.push_write_if_differs(file, write, owned);
    }
    for name in retained.iter().filter(|n| !desired.contains_key(*n)) {
        let file = file_name(name);
        let known = last_good.get(name);
        let write = Candidate {
            profile: name,
            on_disk: actual.get(&file),
            content: known,
            written_before: known,
        };
        out.push_write_if_differs(file, write, owned);
    }
    let written: BTreeSet<&OsStr> = out.writes.iter().map(|w| w.file_name.as_os_str()).collect();
    let adopted: BTreeSet<&OsStr> = out.adopt.iter().map(OsString::as_os_str).collect();
    let mut removals = Vec::new();
    let mut unknown = Vec::new();
    for (file, entry) in actual {
        if file == MANIFEST_NAME {
            continue;
        }
        let is_directory = matches!(entry, Entry::NotAFile(EntryKind::Directory));
        if is_temp_name(file) {
            // A crash between staging and renaming leaves a regular file under such a name;
            // anything else there was planted.
            if matches!(entry, Entry::File { .. }) {
                removals.push(Removal {
                    file_name: file.clone(),
                    why: RemovalReason::Stray,
                });
            } else {
                unknown.push(file.clone());
            }
            continue;
        }
        if is_directory || !(owned.contains(file) || adopted.contains(file.as_os_str())) {
            unknown.push(file.clone());
            continue;
        }
        let owner = profile_of(file).filter(|p| {
            desired.contains_key(*p) || (retained.contains(*p) && last_good.contains_key(*p))
        });
        // A profile's name keeps a regular file (perhaps the last valid version) or gets one
        // written over whatever is there; a symlink or fifo never stays.
        let keep = written.contains(file.as_os_str()) || matches!(entry, Entry::File { .. });
        if owner.is_some() && keep {
            continue;
        }
        let unvouched = profile_of(file).is_some_and(|p| retained.contains(p));
        let why = match (owner, profile_of(file), entry) {
            (None, Some(_), Entry::File { .. }) if !unvouched => RemovalReason::ProfileGone,
            _ => RemovalReason::Stray,
        };
        removals.push(Removal {
            file_name: file.clone(),
            why,
        });
    }
    out.removals = removals;
    out.unknown = unknown;
    out.forget = owned
        .names()
        .filter(|n| !actual.contains_key(*n) && !written.contains(n))
        .map(OsStr::to_os_string)
        .collect();
    out
}

/// A profile's file that may need writing.
struct Candidate<'a> {
    profile: &'a str,
    on_disk: Option<&'a Entry>,
    /// The bytes it must hold; `None`: leave it as it is.
    content: Option<&'a Rendered>,
    /// The bytes the agent last wrote there, if it knows them.
    written_before: Option<&'a Rendered>,
}

impl Plan {
    fn push_write_if_differs(&mut self, file: OsString, c: Candidate<'_>, owned: &Manifest) {
        let Some(rendered) = c.content else { return };
        let listed = owned.contains(&file);
        let up_to_date = matches!(c.on_disk, Some(Entry::File { hash }) if *hash == rendered.hash);
        if up_to_date {
            // Exactly the bytes seccompd renders for this name: seccompd's, whoever put them
            // there (an earlier release without a manifest, for one).
            if !listed {
                self.adopt.push(file);
            }
            return;
        }
        if let Some(why) = obstacle(&file, c.on_disk, listed) {
            self.blocked.insert(c.profile.to_string(), why);
            return;
        }
        let kind = if c.written_before == Some(rendered) {
            WriteKind::Repair
        } else if c.on_disk.is_some() {
            WriteKind::Update
        } else {
            WriteKind::Install
        };
        self.writes.push(FileWrite {
            profile: c.profile.to_string(),
            file_name: file,
            rendered: rendered.clone(),
            kind,
        });
    }
}

/// Why nothing can be written at `file`, if so: a directory (never removed), or an entry the
/// agent did not write (never replaced).
fn obstacle(file: &OsStr, on_disk: Option<&Entry>, listed: bool) -> Option<String> {
    let found = on_disk?;
    let name = file.to_string_lossy();
    if matches!(found, Entry::NotAFile(EntryKind::Directory)) {
        return Some(format!(
            "a directory is at {name}, and seccompd never removes a directory: move it away and \
             the profile is installed"
        ));
    }
    (!listed).then(|| {
        format!(
            "{name} holds {} that seccompd did not write, which it leaves in place: move it \
             away and the profile is installed",
            describe(Some(found))
        )
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use seccompd_profile::render::content_hash;

    fn rendered(text: &str) -> Rendered {
        Rendered {
            bytes: text.as_bytes().into(),
            hash: content_hash(text.as_bytes()),
        }
    }

    fn install(text: &str) -> DesiredProfile {
        DesiredProfile {
            generation: Some(1),
            floors: Vec::new(),
            instructions: None,
            target: Target::Install(rendered(text)),
        }
    }

    fn invalid() -> DesiredProfile {
        DesiredProfile {
            generation: Some(2),
            floors: Vec::new(),
            instructions: None,
            target: Target::Invalid("bad".into()),
        }
    }

    /// A regular file holding `text`, as a scan sees it.
    pub(crate) fn file(text: &str) -> Entry {
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

    /// A scanned directory holding `items`.
    pub(crate) fn actual(items: &[(&str, Entry)]) -> BTreeMap<OsString, Entry> {
        items
            .iter()
            .map(|(n, e)| (OsString::from(n), e.clone()))
            .collect()
    }

    /// A manifest listing `names`.
    fn listed(names: &[&str]) -> Manifest {
        let mut m = Manifest::default();
        for n in names {
            m.insert(OsStr::new(n)).unwrap();
        }
        m
    }

    fn none() -> Manifest {
        Manifest::default()
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

    fn left(plan: &Plan) -> Vec<&str> {
        plan.unknown.iter().map(|n| n.to_str().unwrap()).collect()
    }

    const TEMP: &str = ".seccompd-tmp-0123456789abcdefghijklmno";

    #[test]
    fn missing_file_is_written() {
        let p = plan(
            &desired(&[("a", install("A"))]),
            &actual(&[]),
            &none(),
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
            &listed(&["a.json"]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn changed_symlinked_or_oversized_file_of_its_own_is_rewritten() {
        for entry in [
            file("tampered"),
            Entry::NotAFile(EntryKind::Symlink),
            Entry::NotAFile(EntryKind::Special),
            Entry::Oversized,
        ] {
            let p = plan(
                &desired(&[("a", install("A"))]),
                &actual(&[("a.json", entry.clone())]),
                &listed(&["a.json"]),
                &BTreeMap::new(),
                &BTreeSet::new(),
            );
            assert_eq!(names(&p.writes), ["a"], "{entry:?}");
            assert_eq!(p.writes[0].kind, WriteKind::Update);
            assert!(p.unknown.is_empty() && p.blocked.is_empty(), "{entry:?}");
        }
    }

    #[test]
    fn orphans_and_leftover_temp_files_of_its_own_are_removed() {
        let p = plan(
            &desired(&[("a", install("A"))]),
            &actual(&[
                ("a.json", file("A")),
                ("gone.json", file("G")),
                ("swapped.json", Entry::NotAFile(EntryKind::Symlink)),
                (TEMP, file("partial")),
                // An earlier release's temporary name.
                (".seccompd-tmp-0000002a-0000000000000007", file("partial")),
            ]),
            &listed(&["a.json", "gone.json", "swapped.json"]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert!(p.writes.is_empty());
        assert_eq!(
            removed(&p),
            [
                (
                    ".seccompd-tmp-0000002a-0000000000000007",
                    RemovalReason::Stray
                ),
                (TEMP, RemovalReason::Stray),
                ("gone.json", RemovalReason::ProfileGone),
                ("swapped.json", RemovalReason::Stray),
            ]
        );
        assert!(p.unknown.is_empty());
    }

    #[test]
    fn entries_it_did_not_write_are_left_and_reported_never_removed() {
        let p = plan(
            &desired(&[("a", install("A"))]),
            &actual(&[
                ("a.json", file("A")),
                ("other-tool.json", file("theirs")),
                ("notes.txt", file("N")),
                ("link.json", Entry::NotAFile(EntryKind::Symlink)),
                ("fifo", Entry::NotAFile(EntryKind::Special)),
                ("huge.json", Entry::Oversized),
                ("locked.json", Entry::Unreadable("permission denied".into())),
                ("subdir", Entry::NotAFile(EntryKind::Directory)),
                // Named like a temporary file, but no regular file: planted.
                (TEMP, Entry::NotAFile(EntryKind::Symlink)),
                (MANIFEST_NAME, file("the manifest")),
            ]),
            &listed(&["a.json"]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert!(p.writes.is_empty() && p.removals.is_empty(), "{p:?}");
        assert_eq!(
            left(&p),
            [
                TEMP,
                "fifo",
                "huge.json",
                "link.json",
                "locked.json",
                "notes.txt",
                "other-tool.json",
                "subdir",
            ],
            "everything but its own file and its manifest, sorted"
        );
    }

    #[test]
    fn a_directory_is_never_removed_even_at_a_name_it_owns() {
        let p = plan(
            &desired(&[("a", install("A"))]),
            &actual(&[
                ("a.json", Entry::NotAFile(EntryKind::Directory)),
                ("gone.json", Entry::NotAFile(EntryKind::Directory)),
            ]),
            &listed(&["a.json", "gone.json"]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert!(p.writes.is_empty() && p.removals.is_empty(), "{p:?}");
        assert_eq!(left(&p), ["a.json", "gone.json"]);
        assert!(
            p.blocked["a"].contains("never removes a directory"),
            "{:?}",
            p.blocked
        );
        assert!(p.forget.is_empty(), "both names are still taken");
    }

    #[test]
    fn an_entry_it_did_not_write_at_a_profiles_name_blocks_the_profile() {
        for entry in [
            file("another tool's"),
            Entry::NotAFile(EntryKind::Symlink),
            Entry::Oversized,
        ] {
            let p = plan(
                &desired(&[("a", install("A"))]),
                &actual(&[("a.json", entry.clone())]),
                &none(),
                &BTreeMap::new(),
                &BTreeSet::new(),
            );
            assert!(p.writes.is_empty() && p.removals.is_empty(), "{entry:?}");
            assert_eq!(left(&p), ["a.json"]);
            let why = &p.blocked["a"];
            assert!(
                why.contains("a.json holds") && why.contains("did not write"),
                "{why}"
            );
        }
    }

    #[test]
    fn a_file_it_did_not_list_holding_exactly_its_rendering_is_adopted() {
        // An earlier release wrote it before there was a manifest: the bytes say whose it is.
        let p = plan(
            &desired(&[("a", install("A"))]),
            &actual(&[("a.json", file("A"))]),
            &none(),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert_eq!(p.adopt, [OsString::from("a.json")]);
        assert!(p.writes.is_empty() && p.removals.is_empty() && p.unknown.is_empty());
    }

    #[test]
    fn listed_names_with_nothing_on_disk_are_forgotten_unless_written() {
        let p = plan(
            &desired(&[("a", install("A")), ("bad", invalid())]),
            &actual(&[]),
            &listed(&["a.json", "bad.json", "gone.json"]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert_eq!(names(&p.writes), ["a"]);
        assert_eq!(
            p.forget,
            [OsString::from("bad.json"), OsString::from("gone.json")]
        );
    }

    #[test]
    fn invalid_update_keeps_the_last_valid_file() {
        let p = plan(
            &desired(&[("a", invalid())]),
            &actual(&[("a.json", file("A1"))]),
            &listed(&["a.json"]),
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
            &listed(&["a.json"]),
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
            &none(),
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
            &listed(&["a.json"]),
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
            &listed(&["used.json"]),
            &last_good,
            &retained,
        );
        assert_eq!(kept, Plan::default());
        let repaired = plan(
            &desired(&[]),
            &actual(&[("used.json", file("X"))]),
            &listed(&["used.json"]),
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
                &listed(&["a.json"]),
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
            &listed(&["a.json"]),
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
        // wrote or found with its last report's hash, what is there must not stay: a pod must
        // not run under content nobody validated. The agent removes it when the name is its
        // own, and otherwise leaves it and reports it.
        let retained = BTreeSet::from(["used".to_string()]);
        for entry in [
            file("U"),
            Entry::NotAFile(EntryKind::Symlink),
            Entry::NotAFile(EntryKind::Special),
            Entry::Oversized,
            Entry::Unreadable("permission denied".into()),
        ] {
            let own = plan(
                &desired(&[]),
                &actual(&[("used.json", entry.clone())]),
                &listed(&["used.json"]),
                &BTreeMap::new(),
                &retained,
            );
            assert!(own.writes.is_empty());
            assert_eq!(
                removed(&own),
                [("used.json", RemovalReason::Stray)],
                "{entry:?}"
            );
            let theirs = plan(
                &desired(&[]),
                &actual(&[("used.json", entry.clone())]),
                &none(),
                &BTreeMap::new(),
                &retained,
            );
            assert!(theirs.removals.is_empty(), "{entry:?}");
            assert_eq!(left(&theirs), ["used.json"], "{entry:?}");
        }
    }

    #[test]
    fn an_unreadable_entry_at_a_profile_name_is_rewritten() {
        let p = plan(
            &desired(&[("a", install("A"))]),
            &actual(&[("a.json", Entry::Unreadable("permission denied".into()))]),
            &listed(&["a.json"]),
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
            floors: Vec::new(),
            instructions: None,
            target: Target::Unchecked {
                hash: content_hash(b"A2"),
                reason: "timed out".into(),
            },
        };
        let last_good = BTreeMap::from([("a".to_string(), rendered("A1"))]);
        let kept = plan(
            &desired(&[("a", unchecked.clone())]),
            &actual(&[("a.json", file("A1"))]),
            &listed(&["a.json"]),
            &last_good,
            &BTreeSet::new(),
        );
        assert_eq!(kept, Plan::default());
        let fresh = plan(
            &desired(&[("a", unchecked)]),
            &actual(&[]),
            &none(),
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
            &none(),
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
            &listed(&["used.json"]),
            &last_good,
            &BTreeSet::new(),
        );
        assert_eq!(removed(&p), [("used.json", RemovalReason::ProfileGone)]);
    }

    #[test]
    fn symlink_at_its_own_name_of_an_invalid_profile_without_history_is_removed() {
        let p = plan(
            &desired(&[("a", invalid())]),
            &actual(&[("a.json", Entry::NotAFile(EntryKind::Symlink))]),
            &listed(&["a.json"]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert!(p.writes.is_empty());
        assert_eq!(removed(&p), [("a.json", RemovalReason::Stray)]);
    }

    #[test]
    fn empty_desired_removes_every_profile_file_it_wrote_and_nothing_else() {
        // Only safe because the caller never plans before a complete list.
        let p = plan(
            &desired(&[]),
            &actual(&[
                ("a.json", file("A")),
                ("b.json", file("B")),
                ("c.json", file("C")),
            ]),
            &listed(&["a.json", "b.json"]),
            &BTreeMap::new(),
            &BTreeSet::new(),
        );
        assert_eq!(p.removals.len(), 2);
        assert_eq!(left(&p), ["c.json"]);
    }

    #[test]
    fn profile_of_recognises_only_profile_file_names() {
        assert_eq!(profile_of(OsStr::new("a.json")), Some("a"));
        assert_eq!(profile_of(OsStr::new("a.b.json")), Some("a.b"));
        assert_eq!(profile_of(OsStr::new(".json")), None);
        assert_eq!(profile_of(OsStr::new(".seccompd-tmp-1.json")), None);
        assert_eq!(profile_of(OsStr::new(MANIFEST_NAME)), None);
        assert_eq!(profile_of(OsStr::new("a.txt")), None);
    }
}
