//! One pass of the agent: scan the directory, plan against the desired state, carry the plan
//! out, and say what the node now holds. The only place the agent changes files.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use tracing::{info, warn};

use super::desired::{CheckCache, ProfileInput, desired_state};
use super::plan::{
    DesiredProfile, FileWrite, Removal, RemovalReason, Target, WriteKind, file_name, plan,
};
use super::report::node_reports;
use crate::api::ProfileReport;
use crate::node::dir::{DirError, Entry, ProfileDir};
use crate::profile::render::{OciProfile, Rendered, content_hash};
use crate::telemetry::{FileChange, Metrics};

/// Judges a resolved profile for this node; `Err` holds the reason it cannot be installed.
pub type NodeCheck = Box<dyn Fn(&OciProfile) -> Result<(), String> + Send + Sync>;

/// The agent's memory between passes.
pub struct NodeSync {
    dir: ProfileDir,
    cache: CheckCache,
    /// The last valid rendering written per profile, to repair files of profiles whose spec
    /// has since become invalid, or that were deleted while pods still use them.
    last_good: BTreeMap<String, Rendered>,
    /// Content hashes the agent reported before it (re)started: a file on disk with exactly
    /// that hash is one it wrote, so its bytes can serve as the last valid version.
    reported: BTreeMap<String, String>,
    check: NodeCheck,
}

impl NodeSync {
    /// Starts with an empty memory. `check` judges each resolved profile for this node.
    pub fn new(
        dir: ProfileDir,
        check: impl Fn(&OciProfile) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            dir,
            cache: CheckCache::default(),
            last_good: BTreeMap::new(),
            reported: BTreeMap::new(),
            check: Box::new(check),
        }
    }

    /// Remembers the hashes of the agent's last report (by profile name), so that the first
    /// pass can take the files that still match them as the last valid versions. Without it a
    /// restarted agent could keep, but not repair, the file of a deleted profile pods use.
    pub fn trust_reported(&mut self, hashes: BTreeMap<String, String>) {
        self.reported = hashes;
    }

    /// Brings the directory in line with `profiles` (a complete list). `retained` names deleted
    /// profiles whose files stay because pods use them.
    pub fn pass(
        &mut self,
        profiles: &[ProfileInput<'_>],
        retained: &BTreeSet<String>,
        metrics: &Metrics,
    ) -> Result<PassOutcome, DirError> {
        let desired = desired_state(profiles, &mut self.cache, &self.check);
        self.cache.retain_current(&desired);
        let actual = self.dir.scan()?;
        self.learn_reported(&actual);
        let todo = plan(&desired, &actual, &self.last_good, retained);
        let write_errors = self.write_all(todo.writes, &actual, metrics);
        let removed = self.remove_all(todo.removals, &actual, metrics);
        remember_installed(&mut self.last_good, &desired, &write_errors);
        self.last_good
            .retain(|name, _| desired.contains_key(name) || retained.contains(name));
        let kept = retained
            .iter()
            .filter(|name| !desired.contains_key(*name))
            .filter_map(|name| {
                let file = file_name(name);
                let hash = match (self.last_good.get(name), actual.get(&file)) {
                    (Some(r), _) if !write_errors.contains_key(name) => r.hash.clone(),
                    (_, Some(Entry::File { hash })) if !removed.contains(&file) => hash.clone(),
                    _ => return None,
                };
                Some((name.clone(), hash))
            })
            .collect();
        let complete = write_errors.is_empty();
        Ok(PassOutcome {
            reports: node_reports(&desired, &write_errors),
            kept,
            complete,
        })
    }
}

impl NodeSync {
    /// Carries out the writes; returns the profiles whose file could not be written, with why.
    fn write_all(
        &self,
        writes: Vec<FileWrite>,
        actual: &BTreeMap<OsString, Entry>,
        metrics: &Metrics,
    ) -> BTreeMap<String, String> {
        let mut errors = BTreeMap::new();
        for write in writes {
            match self
                .dir
                .write_atomic(&write.file_name, &write.rendered.bytes)
            {
                Ok(()) => {
                    log_write(&write, actual.get(&write.file_name));
                    metrics.record(match write.kind {
                        WriteKind::Install => FileChange::Installed,
                        WriteKind::Update => FileChange::Updated,
                        WriteKind::Repair => FileChange::Restored,
                    });
                }
                Err(err) => {
                    warn!(profile = %write.profile, %err, "cannot write profile file");
                    metrics.record_error();
                    errors.insert(write.profile, err.to_string());
                }
            }
        }
        errors
    }

    /// Carries out the removals; returns the names removed.
    fn remove_all(
        &self,
        removals: Vec<Removal>,
        actual: &BTreeMap<OsString, Entry>,
        metrics: &Metrics,
    ) -> BTreeSet<OsString> {
        let mut removed = BTreeSet::new();
        for removal in removals {
            if let Err(err) = self.dir.remove(&removal.file_name) {
                warn!(file = ?removal.file_name, %err, "cannot remove");
                metrics.record_error();
                continue;
            }
            match removal.why {
                RemovalReason::ProfileGone => {
                    info!(file = ?removal.file_name, "removed the file of a deleted profile");
                    metrics.record(FileChange::ProfileRemoved);
                }
                RemovalReason::Foreign => {
                    warn!(
                        file = ?removal.file_name,
                        found = ?actual.get(&removal.file_name),
                        "repaired drift: removed an entry seccompd did not write"
                    );
                    metrics.record(FileChange::ForeignRemoved);
                }
            }
            removed.insert(removal.file_name);
        }
        removed
    }

    /// Takes files that hold exactly what the last report said as the last valid versions
    /// (once, on the first pass after a start).
    fn learn_reported(&mut self, actual: &BTreeMap<OsString, Entry>) {
        for (name, hash) in std::mem::take(&mut self.reported) {
            if self.last_good.contains_key(&name) {
                continue;
            }
            let file = file_name(&name);
            if !matches!(actual.get(&file), Some(Entry::File { hash: h }) if *h == hash) {
                continue;
            }
            // Read again and check: the file may have changed since the scan.
            if let Ok(Some(bytes)) = self.dir.read(&file)
                && content_hash(&bytes) == hash
            {
                self.last_good.insert(name, Rendered { bytes, hash });
            }
        }
    }
}

/// What one pass achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassOutcome {
    /// The node's outcome for every SeccompProfile, sorted by name.
    pub reports: Vec<ProfileReport>,
    /// The retained profiles whose file is on disk after the pass, with its content hash.
    pub kept: BTreeMap<String, String>,
    /// True when no write failed: every installable profile's file holds its current bytes.
    pub complete: bool,
}

/// Logs a write; drift repairs are warnings, since something changed the file behind the
/// agent's back.
fn log_write(write: &FileWrite, found: Option<&Entry>) {
    let (profile, hash) = (&write.profile, &write.rendered.hash);
    match write.kind {
        WriteKind::Install => info!(%profile, %hash, "installed profile file"),
        WriteKind::Update => info!(%profile, %hash, "updated profile file"),
        WriteKind::Repair => warn!(
            %profile,
            %hash,
            found = %describe(found),
            "repaired drift: restored profile file"
        ),
    }
}

/// What was at a profile's name before a repair, in words.
fn describe(found: Option<&Entry>) -> String {
    match found {
        None => "nothing (deleted)".into(),
        Some(Entry::File { hash }) => format!("a file with other content ({hash})"),
        Some(Entry::Oversized) => "an oversized file".into(),
        Some(Entry::NotAFile(kind)) => format!("{kind:?}").to_lowercase(),
    }
}

/// Files found already correct count as the last valid version too (after a restart the agent
/// learns them from disk).
fn remember_installed(
    last_good: &mut BTreeMap<String, Rendered>,
    desired: &BTreeMap<String, DesiredProfile>,
    write_errors: &BTreeMap<String, String>,
) {
    for (name, want) in desired {
        if let Target::Install(r) = &want.target
            && !write_errors.contains_key(name)
        {
            last_good.insert(name.clone(), r.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::fs;

    use super::*;
    use crate::profile::model::ProfileSpec;

    fn spec(names: &[&str]) -> ProfileSpec {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
        }))
        .unwrap()
    }

    fn agent() -> (tempfile::TempDir, NodeSync, Metrics) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        (tmp, NodeSync::new(dir, |_| Ok(())), Metrics::default())
    }

    fn input<'a>(name: &'a str, spec: &'a ProfileSpec) -> ProfileInput<'a> {
        ProfileInput {
            name,
            generation: Some(1),
            spec,
        }
    }

    fn counter(metrics: &Metrics, line: &str) -> u64 {
        metrics
            .render()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{line} missing"))
    }

    #[test]
    fn deleted_profile_stays_while_retained_and_is_repaired_then_removed() {
        let (tmp, mut sync, metrics) = agent();
        let s = spec(&["read"]);
        let path = tmp.path().join("seccompd/used.json");
        let used = BTreeSet::from(["used".to_string()]);
        let first = sync.pass(&[input("used", &s)], &used, &metrics).unwrap();
        assert!(first.complete);
        assert!(first.kept.is_empty(), "not retained while it exists");
        let bytes = fs::read(&path).unwrap();

        // Deleted in the API, still used: kept, and restored when tampered with.
        let kept = sync.pass(&[], &used, &metrics).unwrap();
        assert_eq!(kept.kept.keys().collect::<Vec<_>>(), ["used"]);
        assert!(kept.reports.is_empty());
        fs::write(&path, b"garbage").unwrap();
        let again = sync.pass(&[], &used, &metrics).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(
            again.kept["used"],
            crate::profile::render::content_hash(&bytes)
        );
        assert_eq!(
            counter(&metrics, "seccompd_drift_repairs_total{kind=\"restored\"}"),
            1
        );

        // The last user is gone: the file goes.
        let gone = sync.pass(&[], &BTreeSet::new(), &metrics).unwrap();
        assert!(gone.kept.is_empty());
        assert!(!path.exists());
        assert_eq!(counter(&metrics, "seccompd_profile_removals_total"), 1);
    }

    #[test]
    fn restarted_agent_learns_reported_files_and_can_repair_them() {
        let (tmp, mut first, metrics) = agent();
        let s = spec(&["read"]);
        let path = tmp.path().join("seccompd/used.json");
        let used = BTreeSet::from(["used".to_string()]);
        let out = first.pass(&[input("used", &s)], &used, &metrics).unwrap();
        let hash = out.reports[0].content_hash.clone().unwrap();
        let bytes = fs::read(&path).unwrap();

        // A new agent process, after the profile was deleted: pods still use it.
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        let mut second = NodeSync::new(dir, |_| Ok(()));
        second.trust_reported(BTreeMap::from([("used".to_string(), hash.clone())]));
        let kept = second.pass(&[], &used, &metrics).unwrap();
        assert_eq!(kept.kept["used"], hash);
        fs::write(&path, b"tampered").unwrap();
        second.pass(&[], &used, &metrics).unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes,
            "repaired from the learnt bytes"
        );
    }

    #[test]
    fn reported_hash_that_no_longer_matches_teaches_nothing() {
        let (tmp, mut sync, metrics) = agent();
        let path = tmp.path().join("seccompd/used.json");
        fs::write(&path, b"tampered while the agent was down").unwrap();
        sync.trust_reported(BTreeMap::from([(
            "used".to_string(),
            "sha256:what-it-wrote".to_string(),
        )]));
        let used = BTreeSet::from(["used".to_string()]);
        let out = sync.pass(&[], &used, &metrics).unwrap();
        // Kept as found (a regular file), but never taken for a valid version.
        assert_eq!(
            fs::read(&path).unwrap(),
            b"tampered while the agent was down"
        );
        assert_ne!(out.kept["used"], "sha256:what-it-wrote");
        fs::remove_file(&path).unwrap();
        sync.pass(&[], &used, &metrics).unwrap();
        assert!(!path.exists(), "nothing to restore it from");
    }

    #[test]
    fn referenced_profile_without_file_or_history_is_not_kept() {
        let (_tmp, mut sync, metrics) = agent();
        let missing = BTreeSet::from(["never".to_string()]);
        let out = sync.pass(&[], &missing, &metrics).unwrap();
        assert!(out.kept.is_empty());
    }

    #[test]
    fn foreign_entries_are_removed_and_counted_as_drift() {
        let (tmp, mut sync, metrics) = agent();
        let dir = tmp.path().join("seccompd");
        fs::write(dir.join("foreign.json"), b"{}").unwrap();
        fs::write(dir.join("notes.txt"), b"x").unwrap();
        let s = spec(&["read"]);
        let out = sync
            .pass(&[input("a", &s)], &BTreeSet::new(), &metrics)
            .unwrap();
        assert!(out.complete);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsStr::new("a.json")]);
        assert_eq!(
            counter(
                &metrics,
                "seccompd_drift_repairs_total{kind=\"foreign_removed\"}"
            ),
            1,
            "notes.txt is foreign; foreign.json names a profile that does not exist"
        );
        assert_eq!(counter(&metrics, "seccompd_profile_removals_total"), 1);
        assert_eq!(counter(&metrics, "seccompd_profile_installs_total"), 1);
    }
}
