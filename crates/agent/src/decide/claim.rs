//! Taking over a directory that has no manifest. Two situations look alike there: an agent of
//! an earlier release (which kept no manifest) left its profile files, or the agent was given
//! someone else's directory (a hostPath at the kubelet's `seccomp/` itself, say, or at a link
//! to another tool's directory). They are told apart before anything is touched.
//!
//! The choice: an entry is recognised as seccompd's only by what proves it, never by its name
//! alone: a regular file at `<profile>.json` that holds exactly the bytes seccompd renders for
//! that profile now, or exactly the bytes the agent's last report vouches for (see
//! [`super::report::vouched_files`]); and a regular file with one of seccompd's temporary names
//! (`.seccompd-tmp-…`, a write cut short). If every entry is recognised, the recognised files
//! are listed in a new manifest and the agent goes on; if a single one is not, the agent
//! refuses the directory and touches nothing, naming what it found. An empty directory is
//! simply taken. Safety before convenience: a stale file an earlier release left for a profile
//! since deleted or made invalid is not recognised, and has to be removed by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use super::plan::{DesiredProfile, Target, profile_of};
use crate::node::dir::{Entry, is_temp_name};
use seccompd_profile::render::ContentHash;

/// The content hashes that mark a file at each profile's name as seccompd's: the current
/// rendering of every profile (also one waiting for its node check), and what the last report
/// vouches for.
pub fn recognised_hashes(
    desired: &BTreeMap<String, DesiredProfile>,
    vouched: &BTreeMap<String, ContentHash>,
) -> BTreeMap<String, BTreeSet<ContentHash>> {
    let mut out: BTreeMap<String, BTreeSet<ContentHash>> = BTreeMap::new();
    for (name, want) in desired {
        let hash = match &want.target {
            Target::Install(rendered) => &rendered.hash,
            Target::Unchecked { hash, .. } => hash,
            Target::Invalid(_) => continue,
        };
        out.entry(name.clone()).or_default().insert(hash.clone());
    }
    for (name, hash) in vouched {
        out.entry(name.clone()).or_default().insert(hash.clone());
    }
    out
}

/// What to make of a directory without a manifest: `Ok` with the names to list in a new one
/// (leftover temporary files are not listed: they are removed as seccompd's by their name), or
/// `Err` with every entry that is not recognisably seccompd's, sorted.
pub fn claim(
    actual: &BTreeMap<OsString, Entry>,
    recognised: &BTreeMap<String, BTreeSet<ContentHash>>,
) -> Result<BTreeSet<OsString>, Vec<OsString>> {
    let mut ours = BTreeSet::new();
    let mut foreign = Vec::new();
    for (name, entry) in actual {
        let Entry::File { hash } = entry else {
            foreign.push(name.clone());
            continue;
        };
        if is_temp_name(name) {
            continue;
        }
        let known = profile_of(name)
            .and_then(|p| recognised.get(p))
            .is_some_and(|hashes| hashes.contains(hash));
        if known {
            ours.insert(name.clone());
        } else {
            foreign.push(name.clone());
        }
    }
    if foreign.is_empty() {
        Ok(ours)
    } else {
        Err(foreign)
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::tests::{actual, file};
    use super::*;
    use crate::node::dir::EntryKind;
    use seccompd_profile::render::{Rendered, content_hash};

    fn current(items: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<ContentHash>> {
        let desired = items
            .iter()
            .map(|(name, text)| {
                let target = Target::Install(Rendered {
                    bytes: text.as_bytes().into(),
                    hash: content_hash(text.as_bytes()),
                });
                (
                    name.to_string(),
                    DesiredProfile {
                        generation: Some(1),
                        floors: Vec::new(),
                        instructions: None,
                        target,
                    },
                )
            })
            .collect();
        recognised_hashes(&desired, &BTreeMap::new())
    }

    fn os(names: &[&str]) -> Vec<OsString> {
        names.iter().map(OsString::from).collect()
    }

    #[test]
    fn an_empty_directory_is_taken() {
        assert_eq!(claim(&actual(&[]), &current(&[])), Ok(BTreeSet::new()));
    }

    #[test]
    fn an_earlier_releases_files_are_recognised_by_their_exact_bytes() {
        let found = actual(&[
            ("a.json", file("A")),
            ("record.json", file("R")),
            // A write of the earlier release cut short: its name says whose it is.
            (".seccompd-tmp-0000002a-0000000000000007", file("{\"def")),
        ]);
        let got = claim(&found, &current(&[("a", "A"), ("record", "R")]));
        assert_eq!(
            got,
            Ok(os(&["a.json", "record.json"]).into_iter().collect())
        );
    }

    #[test]
    fn a_file_the_last_report_vouches_for_is_recognised() {
        // The profile was deleted while pods use it: no current rendering, but the report's.
        let vouched = BTreeMap::from([("kept".to_string(), content_hash(b"K"))]);
        let recognised = recognised_hashes(&BTreeMap::new(), &vouched);
        let got = claim(&actual(&[("kept.json", file("K"))]), &recognised);
        assert_eq!(got, Ok(os(&["kept.json"]).into_iter().collect()));
    }

    #[test]
    fn anything_else_refuses_the_whole_directory() {
        let found = actual(&[
            ("a.json", file("A")),
            // Another tool's profile that happens to share a name with one of seccompd's.
            ("b.json", file("another tool's profile")),
            ("other-tool.json", file("{}")),
            ("notes.txt", file("N")),
            ("subdir", Entry::NotAFile(EntryKind::Directory)),
            ("link.json", Entry::NotAFile(EntryKind::Symlink)),
            ("huge.json", Entry::Oversized),
            ("locked.json", Entry::Unreadable("permission denied".into())),
            (
                ".seccompd-tmp-0000002a-0000000000000007",
                Entry::NotAFile(EntryKind::Symlink),
            ),
        ]);
        let got = claim(&found, &current(&[("a", "A"), ("b", "B")]));
        assert_eq!(
            got,
            Err(os(&[
                ".seccompd-tmp-0000002a-0000000000000007",
                "b.json",
                "huge.json",
                "link.json",
                "locked.json",
                "notes.txt",
                "other-tool.json",
                "subdir",
            ]))
        );
    }

    #[test]
    fn the_last_valid_file_of_a_now_invalid_profile_is_not_recognised() {
        let desired = BTreeMap::from([(
            "bad".to_string(),
            DesiredProfile {
                generation: Some(2),
                floors: Vec::new(),
                instructions: None,
                target: Target::Invalid("empty names".into()),
            },
        )]);
        let recognised = recognised_hashes(&desired, &BTreeMap::new());
        assert_eq!(
            claim(&actual(&[("bad.json", file("B1"))]), &recognised),
            Err(os(&["bad.json"]))
        );
    }
}
