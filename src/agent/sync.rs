//! One pass of the agent: scan the directory, plan against the desired state, carry the plan
//! out, and say what the node now holds. The only place the agent changes files.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::time::Instant;

use tracing::{info, warn};

use super::decide::desired::{CheckCache, ProfileInput, desired_state};
use super::decide::plan::{
    DesiredProfile, FileWrite, Removal, RemovalReason, Target, WriteKind, file_name, plan,
};
use super::decide::report::{node_reports, vouched_files};
use super::decide::retry::RetryBook;
use crate::api::{ProfileReport, SeccompNodeReportSpec};
use crate::node::dir::{DirError, Entry, ProfileDir};
use crate::profile::check::NodeCheckError;
use crate::profile::render::{ContentHash, OciProfile, Rendered, content_hash};
use crate::telemetry::{FileChange, Metrics};

/// Judges a resolved profile for this node; `Err` says why it is not installed.
pub type NodeCheck = Box<dyn Fn(&OciProfile) -> Result<(), NodeCheckError> + Send + Sync>;

/// The agent's memory between passes.
pub struct NodeSync {
    dir: ProfileDir,
    cache: CheckCache,
    /// The last valid rendering written per profile, to repair files of profiles whose spec
    /// has since become invalid, or that were deleted while pods still use them.
    last_good: BTreeMap<String, Rendered>,
    /// The report the agent published before it (re)started: files on disk it vouches for
    /// are ones the agent wrote, so their bytes can serve as the last valid versions.
    reported: Option<SeccompNodeReportSpec>,
    check: NodeCheck,
    /// Profiles whose file could not be written, by name, keyed to the content attempted.
    write_retries: RetryBook<String>,
    /// Entries that could not be removed, by file name.
    removal_retries: RetryBook<OsString>,
}

impl NodeSync {
    /// Starts with an empty memory. `check` judges each resolved profile for this node.
    pub fn new(
        dir: ProfileDir,
        check: impl Fn(&OciProfile) -> Result<(), NodeCheckError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            dir,
            cache: CheckCache::default(),
            last_good: BTreeMap::new(),
            reported: None,
            check: Box::new(check),
            write_retries: RetryBook::default(),
            removal_retries: RetryBook::default(),
        }
    }

    /// Remembers the agent's last report, so that the first pass can take the files it
    /// vouches for as the last valid versions. Without it a restarted agent could keep, but
    /// not repair, the file of a deleted profile pods use.
    pub fn trust_reported(&mut self, last: Option<SeccompNodeReportSpec>) {
        self.reported = last;
    }

    /// Brings the directory in line with `profiles` (a complete list) at time `now`.
    /// `retained` names referenced profiles the API does not have; a file the agent vouches
    /// for stays at such a name while pods use it.
    ///
    /// One profile's failure is that profile's `Error` in the reports: every other profile is
    /// still written, and the failing one is tried again after a backoff (see
    /// [`PassOutcome::retry_at`]). Only a directory that cannot be listed fails the pass.
    pub fn pass(
        &mut self,
        profiles: &[ProfileInput<'_>],
        retained: &BTreeSet<String>,
        metrics: &Metrics,
        now: Instant,
    ) -> Result<PassOutcome, DirError> {
        let desired = desired_state(profiles, &mut self.cache, &self.check, now);
        self.cache.retain_current(&desired);
        let actual = self.dir.scan()?;
        self.learn_reported(&actual);
        let todo = plan(&desired, &actual, &self.last_good, retained);
        let write_errors = self.write_all(todo.writes, &actual, metrics, now);
        let removed = self.remove_all(todo.removals, &actual, metrics, now);
        remember_installed(&mut self.last_good, &desired, &write_errors);
        self.last_good
            .retain(|name, _| desired.contains_key(name) || retained.contains(name));
        // Only what the agent vouches for is kept at a referenced name.
        let kept = retained
            .iter()
            .filter(|name| !desired.contains_key(*name) && !write_errors.contains_key(*name))
            .filter_map(|name| Some((name.clone(), self.last_good.get(name)?.hash.clone())))
            .filter(|(name, _)| !removed.contains(&file_name(name)))
            .collect();
        let retry_at = [
            self.cache.next_retry(),
            self.write_retries.next_due(),
            self.removal_retries.next_due(),
        ]
        .into_iter()
        .flatten()
        .min();
        Ok(PassOutcome {
            reports: node_reports(&desired, &write_errors),
            kept,
            retry_at,
        })
    }
}

impl NodeSync {
    /// Carries out the writes; returns the profiles whose file could not be written, with why.
    /// A profile whose write of the same content failed before waits out its backoff.
    fn write_all(
        &mut self,
        writes: Vec<FileWrite>,
        actual: &BTreeMap<OsString, Entry>,
        metrics: &Metrics,
        now: Instant,
    ) -> BTreeMap<String, String> {
        let planned: BTreeSet<String> = writes.iter().map(|w| w.profile.clone()).collect();
        self.write_retries
            .retain(|profile| planned.contains(profile));
        let mut errors = BTreeMap::new();
        for write in writes {
            let hash = &write.rendered.hash;
            if let Some(reason) = self
                .write_retries
                .deferred(&write.profile, hash.as_str(), now)
            {
                errors.insert(write.profile, reason.to_string());
                continue;
            }
            match self
                .dir
                .write_atomic(&write.file_name, &write.rendered.bytes)
            {
                Ok(()) => {
                    self.write_retries.succeeded(&write.profile);
                    log_write(&write, actual.get(&write.file_name));
                    metrics.record(match write.kind {
                        WriteKind::Install => FileChange::Installed,
                        WriteKind::Update => FileChange::Updated,
                        WriteKind::Repair => FileChange::Restored,
                    });
                }
                Err(err) => {
                    warn!(profile = %write.profile, %err, "cannot write profile file; retrying later");
                    metrics.record_error();
                    let reason = format!("cannot write the profile file: {err}");
                    self.write_retries
                        .failed(&write.profile, hash.as_str(), reason.clone(), now);
                    errors.insert(write.profile, reason);
                }
            }
        }
        errors
    }

    /// Carries out the removals; returns the names removed. An entry whose removal failed
    /// before waits out its backoff.
    fn remove_all(
        &mut self,
        removals: Vec<Removal>,
        actual: &BTreeMap<OsString, Entry>,
        metrics: &Metrics,
        now: Instant,
    ) -> BTreeSet<OsString> {
        let planned: BTreeSet<OsString> = removals.iter().map(|r| r.file_name.clone()).collect();
        self.removal_retries.retain(|file| planned.contains(file));
        let mut removed = BTreeSet::new();
        for removal in removals {
            if self
                .removal_retries
                .deferred(&removal.file_name, "", now)
                .is_some()
            {
                continue;
            }
            if let Err(err) = self.dir.remove(&removal.file_name) {
                warn!(file = ?removal.file_name, %err, "cannot remove; retrying later");
                metrics.record_error();
                self.removal_retries
                    .failed(&removal.file_name, "", err.to_string(), now);
                continue;
            }
            self.removal_retries.succeeded(&removal.file_name);
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

    /// Takes the files the last report vouches for as the last valid versions (once, on the
    /// first pass after a start).
    fn learn_reported(&mut self, actual: &BTreeMap<OsString, Entry>) {
        let Some(last) = self.reported.take() else {
            return;
        };
        for (name, hash) in vouched_files(&last, actual) {
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
    pub kept: BTreeMap<String, ContentHash>,
    /// When something that failed (a write, a removal, a check that could not finish) is due
    /// to be tried again; `None` when nothing waits.
    pub retry_at: Option<Instant>,
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
        Some(Entry::Unreadable(why)) => format!("an entry the agent cannot read ({why})"),
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
    use std::os::unix::fs::PermissionsExt;

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
        let first = sync
            .pass(&[input("used", &s)], &used, &metrics, Instant::now())
            .unwrap();
        assert_eq!(first.retry_at, None);
        assert!(first.kept.is_empty(), "not retained while it exists");
        let bytes = fs::read(&path).unwrap();

        // Deleted in the API, still used: kept, and restored when tampered with.
        let kept = sync.pass(&[], &used, &metrics, Instant::now()).unwrap();
        assert_eq!(kept.kept.keys().collect::<Vec<_>>(), ["used"]);
        assert!(kept.reports.is_empty());
        fs::write(&path, b"garbage").unwrap();
        let again = sync.pass(&[], &used, &metrics, Instant::now()).unwrap();
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
        let gone = sync
            .pass(&[], &BTreeSet::new(), &metrics, Instant::now())
            .unwrap();
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
        let out = first
            .pass(&[input("used", &s)], &used, &metrics, Instant::now())
            .unwrap();
        let hash = out.reports[0].content_hash.clone().unwrap();
        let bytes = fs::read(&path).unwrap();
        let last_report = crate::agent::decide::report::report_spec(true, out.reports);

        // A new agent process, after the profile was deleted: pods still use it.
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        let mut second = NodeSync::new(dir, |_| Ok(()));
        second.trust_reported(Some(last_report));
        let kept = second.pass(&[], &used, &metrics, Instant::now()).unwrap();
        assert_eq!(kept.kept["used"], hash);
        fs::write(&path, b"tampered").unwrap();
        second.pass(&[], &used, &metrics, Instant::now()).unwrap();
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
        let wrote = ContentHash::from("sha256:what-it-wrote");
        sync.trust_reported(Some(SeccompNodeReportSpec {
            synced: true,
            installed: 1,
            installed_digest: crate::profile::digest::SetDigest::of_set([("used", &wrote)]),
            exceptions: vec![],
            exceptions_omitted: 0,
        }));
        let used = BTreeSet::from(["used".to_string()]);
        let out = sync.pass(&[], &used, &metrics, Instant::now()).unwrap();
        // Never taken for a valid version, so not kept: nobody vouches for its content.
        assert!(out.kept.is_empty());
        assert!(!path.exists(), "removed as foreign");
    }

    #[test]
    fn a_foreign_file_at_a_referenced_name_that_never_existed_is_removed_not_retained() {
        let (tmp, mut sync, metrics) = agent();
        let path = tmp.path().join("seccompd/never.json");
        fs::write(&path, br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        let referenced = BTreeSet::from(["never".to_string()]);
        let out = sync
            .pass(&[], &referenced, &metrics, Instant::now())
            .unwrap();
        assert!(out.kept.is_empty(), "not reported as a retained profile");
        assert!(!path.exists());
        assert_eq!(
            counter(
                &metrics,
                "seccompd_drift_repairs_total{kind=\"foreign_removed\"}"
            ),
            1
        );
    }

    #[test]
    fn a_profile_that_cannot_be_written_is_its_error_others_install_and_retries_back_off() {
        let (tmp, mut sync, metrics) = agent();
        let s = spec(&["read"]);
        // A name the directory refuses: every write of it fails.
        let profiles = [input("bad/name", &s), input("good", &s)];
        let none = BTreeSet::new();
        let t0 = Instant::now();
        let first = sync.pass(&profiles, &none, &metrics, t0).unwrap();
        assert!(tmp.path().join("seccompd/good.json").exists());
        let state = |out: &PassOutcome, name: &str| {
            let r = out.reports.iter().find(|r| r.name == name).unwrap();
            (r.state, r.content_hash.clone(), r.reason.clone())
        };
        let (bad, hash, reason) = state(&first, "bad/name");
        assert_eq!(bad, crate::api::NodeProfileState::Error);
        assert_eq!(hash, None, "never Installed with a hash it does not hold");
        assert!(reason.unwrap().contains("cannot write"));
        assert_eq!(
            state(&first, "good").0,
            crate::api::NodeProfileState::Installed
        );
        assert_eq!(
            first.retry_at,
            Some(t0 + crate::agent::decide::retry::FIRST_RETRY)
        );
        let errors = || counter(&metrics, "seccompd_file_errors_total");
        assert_eq!(errors(), 1);

        // Woken again before the backoff has passed (as the failed write's own directory
        // events would): the write is not attempted, and the report still says why.
        let again = sync.pass(&profiles, &none, &metrics, t0).unwrap();
        assert_eq!(errors(), 1, "no attempt within the backoff");
        assert_eq!(
            state(&again, "bad/name").0,
            crate::api::NodeProfileState::Error
        );
        assert_eq!(again.retry_at, first.retry_at);

        // Due: tried again, and the next pause is twice as long.
        let due = first.retry_at.unwrap();
        let later = sync.pass(&profiles, &none, &metrics, due).unwrap();
        assert_eq!(errors(), 2);
        assert_eq!(
            later.retry_at,
            Some(due + 2 * crate::agent::decide::retry::FIRST_RETRY)
        );
    }

    #[test]
    fn referenced_profile_without_file_or_history_is_not_kept() {
        let (_tmp, mut sync, metrics) = agent();
        let missing = BTreeSet::from(["never".to_string()]);
        let out = sync.pass(&[], &missing, &metrics, Instant::now()).unwrap();
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
            .pass(
                &[input("a", &s)],
                &BTreeSet::new(),
                &metrics,
                Instant::now(),
            )
            .unwrap();
        assert_eq!(out.retry_at, None);
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

    #[test]
    fn a_profile_named_at_the_length_bound_installs() {
        let (tmp, mut sync, metrics) = agent();
        let s = spec(&["read"]);
        let name = "a".repeat(crate::profile::limits::MAX_PROFILE_NAME_LEN);
        let out = sync
            .pass(
                &[input(&name, &s)],
                &BTreeSet::new(),
                &metrics,
                Instant::now(),
            )
            .unwrap();
        assert_eq!(out.retry_at, None);
        assert_eq!(
            out.reports[0].state,
            crate::api::NodeProfileState::Installed
        );
        assert!(tmp.path().join(format!("seccompd/{name}.json")).exists());
    }

    /// Set in the child that runs [`an_unreadable_file_at_a_profiles_name_is_replaced`]
    /// without capabilities.
    const WITHOUT_CAPS: &str = "SECCOMPD_TEST_WITHOUT_CAPABILITIES";

    #[test]
    fn an_unreadable_file_at_a_profiles_name_is_replaced() {
        if std::env::var_os(WITHOUT_CAPS).is_none() {
            // Root with CAP_DAC_OVERRIDE reads any file: run this test again in a child with
            // every capability dropped, as the agent runs in its DaemonSet.
            let status = std::process::Command::new("setpriv")
                .args([
                    "--bounding-set=-all",
                    "--inh-caps=-all",
                    "--ambient-caps=-all",
                    "--",
                ])
                .arg(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "agent::sync::tests::an_unreadable_file_at_a_profiles_name_is_replaced",
                    "--test-threads=1",
                ])
                .env(WITHOUT_CAPS, "1")
                .status()
                .expect("setpriv (util-linux) runs the test without capabilities");
            assert!(status.success(), "the test without capabilities failed");
            return;
        }
        let (tmp, mut sync, metrics) = agent();
        let s = spec(&["read"]);
        let t0 = Instant::now();
        sync.pass(&[input("a", &s)], &BTreeSet::new(), &metrics, t0)
            .unwrap();
        let path = tmp.path().join("seccompd/a.json");
        let bytes = fs::read(&path).unwrap();
        // Behind the agent's back: a mode-000 file at the name, which it cannot read.
        fs::remove_file(&path).unwrap();
        fs::write(&path, b"{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
        assert!(fs::read(&path).is_err(), "capabilities are dropped");
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        assert!(matches!(
            dir.scan().unwrap().get(OsStr::new("a.json")),
            Some(Entry::Unreadable(_))
        ));

        let out = sync
            .pass(
                &[input("a", &s), input("b", &s)],
                &BTreeSet::new(),
                &metrics,
                t0,
            )
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes, "repaired");
        assert!(
            tmp.path().join("seccompd/b.json").exists(),
            "the other one installed"
        );
        assert!(
            out.reports
                .iter()
                .all(|r| r.state == crate::api::NodeProfileState::Installed),
            "{:?}",
            out.reports
        );
        assert_eq!(out.retry_at, None);
    }
}
