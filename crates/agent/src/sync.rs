//! One pass of the agent: scan the directory, plan against the desired state, carry the plan
//! out, and say what the node now holds. The only place the agent changes files, and only its
//! own: the names its manifest lists and its temporary files (see [`crate::node::owned`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Instant;

use thiserror::Error;
use tracing::{info, warn};

use super::decide::builtin::record_file_hash;
use super::decide::claim::{claim, recognised_hashes};
use super::decide::desired::{Accepted, DesiredCache, ProfileInput, desired_with_floors};
use super::decide::floors::{floor_reports, largest_filter};
use super::decide::plan::{
    DesiredProfile, FileWrite, Removal, RemovalReason, Target, WriteKind, describe, file_name, plan,
};
use super::decide::report::{
    MAX_NAMED_ENTRIES, entry_list, node_reports, profile_warnings, vouched_files,
};
use super::decide::retry::RetryBook;
use super::metrics::{AgentMetrics, FileChange};
use crate::node::dir::{DirError, Entry, KnownHashes, ProfileDir};
use crate::node::manifest::{MANIFEST_NAME, Manifest};
use crate::node::owned::{OwnedDir, read_manifest};
use seccompd_api::{
    LargestFilter, NodeFloorReport, ProfileReport, ProfileWarning, SeccompNodeReportSpec,
};
use seccompd_profile::check::NodeCheckError;
use seccompd_profile::compile::native_arch;
use seccompd_profile::floor::{Floor, FloorStamp};
use seccompd_profile::limits::RECORD_PROFILE;
use seccompd_profile::render::{ContentHash, OciProfile, Rendered, content_hash};

/// Judges a resolved profile for this node; `Err` says why it is not installed.
pub type NodeCheck = Box<dyn Fn(&OciProfile) -> Result<Accepted, NodeCheckError> + Send + Sync>;

/// A pass that could not be carried out.
#[derive(Debug, Error)]
pub enum SyncError {
    /// The directory could not be listed, or its manifest could not be read or first written.
    #[error(transparent)]
    Dir(#[from] DirError),
    /// The directory has no manifest and holds entries seccompd cannot recognise as its own:
    /// the agent refuses it and changes nothing.
    #[error(
        "{path} holds entries seccompd did not write ({entries}) and no manifest \
         ({MANIFEST_NAME}), so it is not seccompd's own directory; nothing was changed. Point \
         the agent's hostPath at <kubelet root>/seccomp/seccompd, or empty this directory (files \
         an earlier seccompd left can be deleted: the agent writes its profiles again), then \
         restart the agent (see docs/node-directory.md)"
    )]
    Foreign {
        /// The directory.
        path: PathBuf,
        /// The entries it did not recognise, bounded.
        entries: String,
    },
}

impl SyncError {
    /// Whether the agent must stop instead of trying again: the directory is not one it may
    /// work in, and waiting does not change that.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SyncError::Foreign { .. }
                | SyncError::Dir(DirError::BadManifest { .. } | DirError::SymlinkRoot(_))
        )
    }
}

/// The agent's memory between passes.
pub struct NodeSync {
    dir: ProfileDir,
    /// The names the agent owns; `None` until the first pass has read (or first written) the
    /// manifest.
    owned: Option<OwnedDir>,
    cache: DesiredCache,
    /// The hashes of the files the last scans read, so that a pass reads only changed files.
    known_hashes: KnownHashes,
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
    /// The entries left in place that have been logged, so that each is logged once while it
    /// stays.
    logged_unknown: BTreeSet<OsString>,
}

impl NodeSync {
    /// Starts with an empty memory. `check` judges each resolved profile for this node.
    pub fn new(
        dir: ProfileDir,
        check: impl Fn(&OciProfile) -> Result<Accepted, NodeCheckError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            dir,
            owned: None,
            cache: DesiredCache::default(),
            known_hashes: KnownHashes::default(),
            last_good: BTreeMap::new(),
            reported: None,
            check: Box::new(check),
            write_retries: RetryBook::default(),
            removal_retries: RetryBook::default(),
            logged_unknown: BTreeSet::new(),
        }
    }

    /// Judges profiles with `check` from now on, forgetting every verdict of the old one (the
    /// node's runtime was described anew).
    pub fn replace_check(
        &mut self,
        check: impl Fn(&OciProfile) -> Result<Accepted, NodeCheckError> + Send + Sync + 'static,
    ) {
        self.check = Box::new(check);
        self.cache.forget_verdicts();
    }

    /// When the files of `profiles` were last written (their modification time), for those
    /// that have one now; a file that is gone or unreadable is left out.
    pub fn written_at<'a>(
        &self,
        profiles: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<String, std::time::SystemTime> {
        profiles
            .into_iter()
            .filter_map(|name| {
                let path = self.dir.path().join(file_name(name));
                let at = std::fs::symlink_metadata(path)
                    .and_then(|m| m.modified())
                    .ok()?;
                Some((name.to_string(), at))
            })
            .collect()
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
    /// [`PassOutcome::retry_at`]). Only a directory that cannot be listed, or (on the first
    /// pass) one the agent cannot take as its own, fails the pass.
    pub fn pass(
        &mut self,
        profiles: &[ProfileInput<'_>],
        retained: &BTreeSet<String>,
        metrics: &AgentMetrics,
        now: Instant,
    ) -> Result<PassOutcome, SyncError> {
        self.pass_with_floors(profiles, &[], retained, metrics, now)
    }

    /// [`NodeSync::pass`] with `floors` merged into every profile they do not exempt. A floor
    /// change is one pass like any other: every profile is rendered again, only the files whose
    /// bytes changed are written, and the outcome (one report) says which floors they carry.
    pub fn pass_with_floors(
        &mut self,
        profiles: &[ProfileInput<'_>],
        floors: &[Floor<'_>],
        retained: &BTreeSet<String>,
        metrics: &AgentMetrics,
        now: Instant,
    ) -> Result<PassOutcome, SyncError> {
        let desired = desired_with_floors(profiles, floors, &mut self.cache, &self.check, now);
        self.cache.retain_current(&desired);
        let actual = self.dir.scan_with(&mut self.known_hashes)?;
        let mut owned = match self.owned.take() {
            Some(owned) => {
                // Deleted or changed behind the agent's back since it last wrote it.
                if let Err(err) = owned.save_if_differs(actual.get(OsStr::new(MANIFEST_NAME))) {
                    warn!(%err, "cannot write the manifest again; trying on the next pass");
                    metrics.record_error();
                }
                owned
            }
            None => self.claim(&actual, &desired)?,
        };
        let mut outcome = self.carry_out(&mut owned, &desired, &actual, retained, metrics, now);
        self.owned = Some(owned);
        let stamps: Vec<FloorStamp> = floors.iter().map(Floor::stamp).collect();
        outcome.floors = floor_reports(&stamps, &desired, &outcome.reports);
        outcome.largest_filter = largest_filter(&desired, &outcome.reports);
        outcome.warnings = profile_warnings(&desired, |hash| self.cache.warnings(hash));
        Ok(outcome)
    }
}

impl NodeSync {
    /// The names the agent owns, from the manifest; without one, from what an earlier release
    /// left (see [`super::decide::claim`]), or a refusal that changes nothing.
    fn claim(
        &self,
        actual: &BTreeMap<OsString, Entry>,
        desired: &BTreeMap<String, DesiredProfile>,
    ) -> Result<OwnedDir, SyncError> {
        if let Some(manifest) = read_manifest(&self.dir, actual)? {
            return Ok(OwnedDir::listed(self.dir.clone(), manifest));
        }
        let vouched = self
            .reported
            .as_ref()
            .map(|last| vouched_files(last, actual))
            .unwrap_or_default();
        let mut recognised = recognised_hashes(desired, &vouched);
        // Agents of earlier releases installed the recording profile on every node.
        if let Some(hash) = native_arch().and_then(record_file_hash) {
            recognised
                .entry(RECORD_PROFILE.to_string())
                .or_default()
                .insert(hash);
        }
        match claim(actual, &recognised) {
            Ok(ours) => {
                if !ours.is_empty() {
                    info!(
                        files = ours.len(),
                        "no manifest: took over the profile files an earlier seccompd wrote, \
                         recognised by their content"
                    );
                }
                Ok(OwnedDir::adopt(self.dir.clone(), ours)?)
            }
            Err(foreign) => Err(SyncError::Foreign {
                path: self.dir.path().to_path_buf(),
                entries: entry_list(&foreign),
            }),
        }
    }

    /// Plans and carries out one pass in a directory the agent owns.
    fn carry_out(
        &mut self,
        owned: &mut OwnedDir,
        desired: &BTreeMap<String, DesiredProfile>,
        actual: &BTreeMap<OsString, Entry>,
        retained: &BTreeSet<String>,
        metrics: &AgentMetrics,
        now: Instant,
    ) -> PassOutcome {
        self.learn_reported(actual, owned.manifest());
        let todo = plan(desired, actual, owned.manifest(), &self.last_good, retained);
        self.log_unknown(&todo.unknown, actual);
        // Write-ahead: every name that is to hold a file of the agent's is listed first.
        let listing = owned.reserve(
            todo.adopt
                .iter()
                .map(OsString::as_os_str)
                .chain(todo.writes.iter().map(|w| w.file_name.as_os_str())),
        );
        let mut write_errors =
            self.write_all(owned, listing.err(), todo.writes, actual, metrics, now);
        let removed = self.remove_all(owned, todo.removals, actual, metrics, now);
        // Only now that their files are gone are the names dropped from the manifest.
        let gone = removed.iter().chain(&todo.forget).map(OsString::as_os_str);
        if let Err(err) = owned.release(gone) {
            warn!(%err, "cannot drop removed names from the manifest; they stay listed");
            metrics.record_error();
        }
        write_errors.extend(todo.blocked);
        remember_installed(&mut self.last_good, desired, &write_errors);
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
        PassOutcome {
            reports: node_reports(desired, &write_errors),
            kept,
            unknown: todo.unknown,
            retry_at,
            floors: Vec::new(),
            largest_filter: None,
            warnings: Vec::new(),
        }
    }

    /// Carries out the writes; returns the profiles whose file could not be written, with why.
    /// A profile whose write of the same content failed before waits out its backoff. A name
    /// the manifest could not list (`listing` says why) is not written.
    fn write_all(
        &mut self,
        owned: &OwnedDir,
        listing: Option<DirError>,
        writes: Vec<FileWrite>,
        actual: &BTreeMap<OsString, Entry>,
        metrics: &AgentMetrics,
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
            let result = match &listing {
                Some(err) if !owned.manifest().contains(&write.file_name) => Err(format!(
                    "cannot list the file in seccompd's manifest, so it is not written: {err}"
                )),
                _ => owned
                    .write(&write.file_name, &write.rendered.bytes)
                    .map_err(|err| format!("cannot write the profile file: {err}")),
            };
            match result {
                Ok(()) => {
                    self.write_retries.succeeded(&write.profile);
                    log_write(&write, actual.get(&write.file_name));
                    metrics.record(match write.kind {
                        WriteKind::Install => FileChange::Installed,
                        WriteKind::Update => FileChange::Updated,
                        WriteKind::Repair => FileChange::Restored,
                    });
                }
                Err(reason) => {
                    warn!(profile = %write.profile, %reason, "cannot write profile file; retrying later");
                    metrics.record_error();
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
        owned: &OwnedDir,
        removals: Vec<Removal>,
        actual: &BTreeMap<OsString, Entry>,
        metrics: &AgentMetrics,
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
            if let Err(err) = owned.remove(&removal.file_name) {
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
                RemovalReason::Stray => {
                    warn!(
                        file = ?removal.file_name,
                        found = ?actual.get(&removal.file_name),
                        "repaired drift: removed a leftover temporary file or an entry swapped in \
                         at a name seccompd owns"
                    );
                    metrics.record(FileChange::StrayRemoved);
                }
            }
            removed.insert(removal.file_name);
        }
        removed
    }

    /// Logs each entry left in place once while it stays, at most [`MAX_NAMED_ENTRIES`] a
    /// pass (the rest on later passes), so that a directory full of planted entries cannot
    /// flood the log.
    fn log_unknown(&mut self, unknown: &[OsString], actual: &BTreeMap<OsString, Entry>) {
        let present: BTreeSet<&OsString> = unknown.iter().collect();
        self.logged_unknown.retain(|name| present.contains(name));
        let fresh: Vec<&OsString> = unknown
            .iter()
            .filter(|name| !self.logged_unknown.contains(*name))
            .collect();
        for name in fresh.iter().take(MAX_NAMED_ENTRIES) {
            warn!(
                file = ?name,
                found = ?actual.get(*name),
                "left in place an entry seccompd did not write (it removes only its own files); \
                 remove it if nothing needs it"
            );
            self.logged_unknown.insert((*name).clone());
        }
        if fresh.len() > MAX_NAMED_ENTRIES {
            warn!(
                more = fresh.len() - MAX_NAMED_ENTRIES,
                "more entries seccompd did not write are in its directory; they are logged on \
                 later passes"
            );
        }
    }

    /// Takes the files the last report vouches for as the last valid versions (once, on the
    /// first pass after a start); only files at names the agent owns.
    fn learn_reported(&mut self, actual: &BTreeMap<OsString, Entry>, owned: &Manifest) {
        let Some(last) = self.reported.take() else {
            return;
        };
        for (name, hash) in vouched_files(&last, actual) {
            if self.last_good.contains_key(&name) {
                continue;
            }
            let file = file_name(&name);
            if !owned.contains(&file)
                || !matches!(actual.get(&file), Some(Entry::File { hash: h }) if *h == hash)
            {
                continue;
            }
            // Read again and check: the file may have changed since the scan.
            if let Ok(Some(bytes)) = self.dir.read(&file)
                && content_hash(&bytes) == hash
            {
                self.last_good.insert(
                    name,
                    Rendered {
                        bytes: bytes.into(),
                        hash,
                    },
                );
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
    /// The entries left in place because seccompd did not write them, sorted.
    pub unknown: Vec<OsString>,
    /// When something that failed (a write, a removal, a check that could not finish) is due
    /// to be tried again; `None` when nothing waits.
    pub retry_at: Option<Instant>,
    /// What the node says of each SeccompFloor.
    pub floors: Vec<NodeFloorReport>,
    /// The installed profile with the longest compiled filter.
    pub largest_filter: Option<LargestFilter>,
    /// What the node warns of the profiles it installs, by name (not yet bounded).
    pub warnings: Vec<ProfileWarning>,
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
    use crate::decide::desired::Origin;
    use crate::node::manifest::MANIFEST_NAME;
    use crate::testing;
    use seccompd_profile::model::ProfileSpec;

    fn spec(names: &[&str]) -> ProfileSpec {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
        }))
        .unwrap()
    }

    fn copy_fail(exempt: &[&str]) -> seccompd_profile::floor::FloorSpec {
        serde_json::from_value(serde_json::json!({
            "rules": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}]}],
            "exemptProfiles": exempt,
        }))
        .unwrap()
    }

    #[test]
    fn a_floor_change_rewrites_every_file_it_applies_to_in_one_pass_and_is_reported() {
        let (tmp, mut sync, metrics) = agent();
        let s = spec(&["read", "socket"]);
        let names = ["a", "b", "exempt"];
        let profiles: Vec<ProfileInput<'_>> = names.iter().map(|n| input(n, &s)).collect();
        let none = BTreeSet::new();
        sync.pass(&profiles, &none, &metrics, Instant::now())
            .unwrap();
        let file =
            |n: &str| fs::read_to_string(tmp.path().join(format!("seccompd/{n}.json"))).unwrap();
        let before: Vec<String> = names.iter().map(|n| file(n)).collect();
        let updates = || counter(&metrics, "seccompd_profile_updates_total");
        let updates_before = updates();

        let spec = copy_fail(&["exempt"]);
        let floors = [Floor {
            name: "copy-fail",
            spec: &spec,
        }];
        let out = sync
            .pass_with_floors(&profiles, &floors, &none, &metrics, Instant::now())
            .unwrap();
        // One pass: both files the floor applies to now deny AF_ALG; the exempt one is as it was.
        for n in ["a", "b"] {
            assert!(file(n).contains("\"SCMP_ACT_ERRNO\""), "{n}: {}", file(n));
            assert!(file(n).contains("\"socketcall\""), "{n}: {}", file(n));
        }
        assert_eq!(file("exempt"), before[2]);
        assert_eq!(updates() - updates_before, 2, "one write per changed file");
        assert_eq!(out.floors.len(), 1);
        let report = &out.floors[0];
        assert_eq!(
            (report.name.as_str(), report.carried, report.missing.len()),
            ("copy-fail", 2, 0)
        );
        assert_eq!(report.digest, floors[0].stamp().digest);

        // The same floors again: nothing to write.
        sync.pass_with_floors(&profiles, &floors, &none, &metrics, Instant::now())
            .unwrap();
        assert_eq!(updates() - updates_before, 2);

        // Deleted: every file is as it was before the floor, and no floor is reported.
        let out = sync
            .pass(&profiles, &none, &metrics, Instant::now())
            .unwrap();
        let after: Vec<String> = names.iter().map(|n| file(n)).collect();
        assert_eq!(after, before);
        assert!(out.floors.is_empty());
    }

    #[test]
    fn a_pass_tells_what_the_nodes_runtime_warns_of_each_installed_profile() {
        use seccompd_profile::check::{NodeRuntime, check_for_node_with};
        let judge = |runtime: &'static str| {
            move |p: &OciProfile| {
                check_for_node_with(p, &NodeRuntime::of(runtime.parse().unwrap()))
                    .map(Accepted::from)
            }
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        let mut sync = NodeSync::new(dir, judge("runc/1.5.3"));
        let metrics = testing::metrics();
        let lacking = spec(&["read", "write", "execve", "exit_group"]);
        let complete = spec(&[
            "read",
            "write",
            "execve",
            "exit_group",
            "statx",
            "readlinkat",
        ]);
        let profiles = [input("lacking", &lacking), input("complete", &complete)];
        let none = BTreeSet::new();
        let out = sync
            .pass(&profiles, &none, &metrics, Instant::now())
            .unwrap();
        let names: Vec<&str> = out.warnings.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["lacking"]);
        let w = &out.warnings[0];
        assert!(
            w.message
                .contains("(runc/1.5.3) calls readlinkat, statx after loading the filter"),
            "{}",
            w.message
        );
        assert!(
            !w.message.contains("allowPrivilegeEscalation"),
            "the structural warnings, the same on every node, are not the node's: {}",
            w.message
        );
        let installed = out.reports.iter().find(|r| r.name == "lacking").unwrap();
        assert_eq!(installed.state, seccompd_api::NodeProfileState::Installed);
        assert_eq!(installed.content_hash.as_ref(), Some(&w.content_hash));

        // The same profile on a node whose runtime does not make those calls: no warning.
        sync.replace_check(judge("runc/1.1.5"));
        let out = sync
            .pass(&profiles, &none, &metrics, Instant::now())
            .unwrap();
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    }

    #[test]
    fn write_times_are_those_of_the_files_there_and_a_vanished_file_has_none() {
        let (tmp, mut sync, metrics) = agent();
        let s = spec(&["read"]);
        let none = BTreeSet::new();
        sync.pass(
            &[input("a", &s), input("b", &s)],
            &none,
            &metrics,
            Instant::now(),
        )
        .unwrap();
        let before = std::time::SystemTime::now();
        // Gone between the pass and the look (a pod's profile deleted meanwhile).
        fs::remove_file(tmp.path().join("seccompd/b.json")).unwrap();
        let written = sync.written_at(["a", "b", "never"]);
        assert_eq!(written.keys().collect::<Vec<_>>(), ["a"]);
        assert!(written["a"] <= before);
    }

    fn agent() -> (tempfile::TempDir, NodeSync, AgentMetrics) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        (
            tmp,
            NodeSync::new(dir, |_| Ok(Accepted::default())),
            testing::metrics(),
        )
    }

    fn input<'a>(name: &'a str, spec: &'a ProfileSpec) -> ProfileInput<'a> {
        ProfileInput {
            name,
            generation: Some(1),
            origin: Origin::Api { uid: None },
            spec,
        }
    }

    fn counter(metrics: &AgentMetrics, series: &str) -> u64 {
        testing::sample(metrics, series) as u64
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
            seccompd_profile::render::content_hash(&bytes)
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
        let last_report = crate::decide::report::report_spec(true, out.reports);

        // A new agent process, after the profile was deleted: pods still use it.
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        let mut second = NodeSync::new(dir, |_| Ok(Accepted::default()));
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
        let (tmp, mut first, metrics) = agent();
        let s = spec(&["read"]);
        let used = BTreeSet::from(["used".to_string()]);
        let out = first
            .pass(&[input("used", &s)], &used, &metrics, Instant::now())
            .unwrap();
        let last_report = crate::decide::report::report_spec(true, out.reports);
        let path = tmp.path().join("seccompd/used.json");
        fs::write(&path, b"tampered while the agent was down").unwrap();

        // A new agent process, after the profile was deleted.
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        let mut second = NodeSync::new(dir, |_| Ok(Accepted::default()));
        second.trust_reported(Some(last_report));
        let out = second.pass(&[], &used, &metrics, Instant::now()).unwrap();
        // Never taken for a valid version, so not kept: nobody vouches for its content. The
        // name is the agent's own, so what is there goes.
        assert!(out.kept.is_empty());
        assert!(!path.exists(), "removed as a stray at its own name");
        assert_eq!(
            counter(
                &metrics,
                "seccompd_drift_repairs_total{kind=\"foreign_removed\"}"
            ),
            1
        );
    }

    #[test]
    fn a_foreign_file_at_a_referenced_name_that_never_existed_is_left_and_not_retained() {
        let (tmp, mut sync, metrics) = agent();
        sync.pass(&[], &BTreeSet::new(), &metrics, Instant::now())
            .unwrap();
        let path = tmp.path().join("seccompd/never.json");
        fs::write(&path, br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        let referenced = BTreeSet::from(["never".to_string()]);
        let out = sync
            .pass(&[], &referenced, &metrics, Instant::now())
            .unwrap();
        assert!(out.kept.is_empty(), "not reported as a retained profile");
        assert_eq!(out.unknown, [OsString::from("never.json")]);
        assert_eq!(
            fs::read(&path).unwrap(),
            br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#
        );
    }

    #[test]
    fn a_stale_file_of_its_own_from_before_a_restart_is_removed() {
        let (tmp, mut first, metrics) = agent();
        let s = spec(&["read"]);
        let none = BTreeSet::new();
        first
            .pass(&[input("old", &s)], &none, &metrics, Instant::now())
            .unwrap();
        let path = tmp.path().join("seccompd/old.json");
        assert!(path.exists());
        drop(first);

        // Deleted in the API while no agent ran; the next one knows the name from its manifest.
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        let mut second = NodeSync::new(dir, |_| Ok(Accepted::default()));
        let out = second.pass(&[], &none, &metrics, Instant::now()).unwrap();
        assert!(!path.exists());
        assert!(out.unknown.is_empty());
        assert_eq!(counter(&metrics, "seccompd_profile_removals_total"), 1);
        let manifest = fs::read_to_string(tmp.path().join("seccompd").join(MANIFEST_NAME)).unwrap();
        assert!(!manifest.contains("old.json"), "{manifest}");
    }

    /// Every entry below `dir` with its content (symlinks not followed).
    fn listing(dir: &std::path::Path) -> BTreeMap<std::path::PathBuf, Option<Vec<u8>>> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(path) = todo.pop() {
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                todo.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
            out.insert(
                path.clone(),
                meta.is_file().then(|| fs::read(&path).unwrap()),
            );
        }
        out
    }

    #[test]
    fn a_directory_holding_another_tools_files_is_refused_and_left_exactly_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("seccomp");
        fs::create_dir_all(root.join("other-tool/nested")).unwrap();
        fs::write(root.join("other-tool/nested/p.json"), b"{}").unwrap();
        fs::write(
            root.join("audit.json"),
            br#"{"defaultAction":"SCMP_ACT_LOG"}"#,
        )
        .unwrap();
        fs::write(root.join("a.json"), b"another tool's a").unwrap();
        let before = listing(&root);

        let dir = ProfileDir::open(&root).unwrap();
        let mut sync = NodeSync::new(dir, |_| Ok(Accepted::default()));
        let s = spec(&["read"]);
        let metrics = testing::metrics();
        let err = sync
            .pass(
                &[input("a", &s)],
                &BTreeSet::new(),
                &metrics,
                Instant::now(),
            )
            .unwrap_err();
        assert!(err.is_refusal(), "{err}");
        let text = err.to_string();
        for part in [
            root.display().to_string(),
            "\"a.json\", \"audit.json\", \"other-tool\"".to_string(),
            "did not write".to_string(),
            "empty this directory".to_string(),
        ] {
            assert!(text.contains(&part), "{part:?} missing from: {text}");
        }
        assert_eq!(listing(&root), before, "nothing was touched");
    }

    #[test]
    fn an_earlier_releases_files_are_taken_over_and_its_stale_ones_refused() {
        let (tmp, mut sync, metrics) = agent();
        let dir = tmp.path().join("seccompd");
        let s = spec(&["read"]);
        let want = seccompd_profile::render::render(
            &seccompd_profile::resolve::resolve("a", &s, |_| None).unwrap(),
        );
        // What an agent of the previous release left: its file, and a write cut short.
        fs::write(dir.join("a.json"), &want.bytes).unwrap();
        let temp = dir.join(".seccompd-tmp-0000002a-0000000000000007");
        fs::write(&temp, b"{\"defaultAct").unwrap();
        let none = BTreeSet::new();
        let out = sync
            .pass(&[input("a", &s)], &none, &metrics, Instant::now())
            .unwrap();
        assert_eq!(
            out.reports[0].state,
            seccompd_api::NodeProfileState::Installed
        );
        assert!(!temp.exists(), "its own leftover temporary file goes");
        assert_eq!(fs::read(dir.join("a.json")).unwrap(), &want.bytes[..]);
        let manifest = fs::read_to_string(dir.join(MANIFEST_NAME)).unwrap();
        assert_eq!(manifest, "seccompd-manifest v1\na.json\n");

        // The same release's file of a profile deleted meanwhile: no longer recognisable.
        let (tmp, mut sync, metrics) = agent();
        let dir = tmp.path().join("seccompd");
        fs::write(dir.join("a.json"), &want.bytes).unwrap();
        let err = sync.pass(&[], &none, &metrics, Instant::now()).unwrap_err();
        assert!(err.is_refusal(), "{err}");
        assert!(err.to_string().contains("\"a.json\""), "{err}");
        assert!(!dir.join(MANIFEST_NAME).exists());
        assert_eq!(fs::read(dir.join("a.json")).unwrap(), &want.bytes[..]);
    }

    /// Every agent of the previous release installed record.json, recorder or not: upgrading a
    /// node without the recorder takes it over (by its content) and removes it.
    #[test]
    fn an_earlier_releases_recording_profile_is_taken_over_and_removed_without_the_recorder() {
        let (tmp, mut sync, metrics) = agent();
        let dir = tmp.path().join("seccompd");
        let arch = native_arch().unwrap();
        let record = crate::decide::builtin::record_spec(arch);
        let bytes = seccompd_profile::render::render(
            &seccompd_profile::resolve::resolve(RECORD_PROFILE, &record, |_| None).unwrap(),
        )
        .bytes;
        let file = dir.join(format!("{RECORD_PROFILE}.json"));
        fs::write(&file, &bytes).unwrap();
        let none = BTreeSet::new();
        sync.pass(&[], &none, &metrics, Instant::now()).unwrap();
        assert!(
            !file.exists(),
            "not wanted without the recorder: removed as its own"
        );
        // Anything else at that name is not taken for it.
        let (tmp, mut sync, metrics) = agent();
        let dir = tmp.path().join("seccompd");
        let file = dir.join(format!("{RECORD_PROFILE}.json"));
        fs::write(&file, b"{}").unwrap();
        let err = sync.pass(&[], &none, &metrics, Instant::now()).unwrap_err();
        assert!(err.is_refusal(), "{err}");
        assert!(file.exists());
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
        assert_eq!(bad, seccompd_api::NodeProfileState::Error);
        assert_eq!(hash, None, "never Installed with a hash it does not hold");
        assert!(reason.unwrap().contains("cannot write"));
        assert_eq!(
            state(&first, "good").0,
            seccompd_api::NodeProfileState::Installed
        );
        assert_eq!(first.retry_at, Some(t0 + crate::decide::retry::FIRST_RETRY));
        let errors = || counter(&metrics, "seccompd_file_errors_total");
        assert_eq!(errors(), 1);

        // Woken again before the backoff has passed (as the failed write's own directory
        // events would): the write is not attempted, and the report still says why.
        let again = sync.pass(&profiles, &none, &metrics, t0).unwrap();
        assert_eq!(errors(), 1, "no attempt within the backoff");
        assert_eq!(
            state(&again, "bad/name").0,
            seccompd_api::NodeProfileState::Error
        );
        assert_eq!(again.retry_at, first.retry_at);

        // Due: tried again, and the next pause is twice as long.
        let due = first.retry_at.unwrap();
        let later = sync.pass(&profiles, &none, &metrics, due).unwrap();
        assert_eq!(errors(), 2);
        assert_eq!(
            later.retry_at,
            Some(due + 2 * crate::decide::retry::FIRST_RETRY)
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
    fn foreign_entries_are_left_reported_and_never_removed() {
        let (tmp, mut sync, metrics) = agent();
        let dir = tmp.path().join("seccompd");
        let s = spec(&["read"]);
        let none = BTreeSet::new();
        sync.pass(&[input("a", &s)], &none, &metrics, Instant::now())
            .unwrap();
        fs::write(dir.join("foreign.json"), b"{}").unwrap();
        fs::write(dir.join("notes.txt"), b"x").unwrap();
        fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        fs::write(dir.join("sub/deeper/keep"), b"k").unwrap();
        let out = sync
            .pass(&[input("a", &s)], &none, &metrics, Instant::now())
            .unwrap();
        assert_eq!(out.retry_at, None);
        assert_eq!(
            out.unknown,
            [
                OsString::from("foreign.json"),
                OsString::from("notes.txt"),
                OsString::from("sub"),
            ]
        );
        assert_eq!(fs::read(dir.join("foreign.json")).unwrap(), b"{}");
        assert_eq!(fs::read(dir.join("notes.txt")).unwrap(), b"x");
        assert_eq!(fs::read(dir.join("sub/deeper/keep")).unwrap(), b"k");
        assert_eq!(
            counter(
                &metrics,
                "seccompd_drift_repairs_total{kind=\"foreign_removed\"}"
            ),
            0
        );
        assert_eq!(counter(&metrics, "seccompd_profile_removals_total"), 0);
        assert_eq!(counter(&metrics, "seccompd_profile_installs_total"), 1);
    }

    #[test]
    fn an_entry_it_did_not_write_at_a_profiles_name_is_that_profiles_error() {
        let (tmp, mut sync, metrics) = agent();
        let none = BTreeSet::new();
        sync.pass(&[], &none, &metrics, Instant::now()).unwrap();
        let path = tmp.path().join("seccompd/a.json");
        fs::write(&path, b"another tool's").unwrap();
        let s = spec(&["read"]);
        let out = sync
            .pass(
                &[input("a", &s), input("b", &s)],
                &none,
                &metrics,
                Instant::now(),
            )
            .unwrap();
        let a = &out.reports[0];
        assert_eq!(a.state, seccompd_api::NodeProfileState::Error);
        assert!(
            a.reason.as_deref().unwrap().contains("did not write"),
            "{a:?}"
        );
        assert_eq!(
            out.reports[1].state,
            seccompd_api::NodeProfileState::Installed
        );
        assert_eq!(fs::read(&path).unwrap(), b"another tool's");

        // Moved away: the profile installs.
        fs::remove_file(&path).unwrap();
        let out = sync
            .pass(&[input("a", &s)], &none, &metrics, Instant::now())
            .unwrap();
        assert_eq!(
            out.reports[0].state,
            seccompd_api::NodeProfileState::Installed
        );
    }

    #[test]
    fn a_profile_named_at_the_length_bound_installs() {
        let (tmp, mut sync, metrics) = agent();
        let s = spec(&["read"]);
        let name = "a".repeat(seccompd_profile::limits::MAX_PROFILE_NAME_LEN);
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
            seccompd_api::NodeProfileState::Installed
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
                .all(|r| r.state == seccompd_api::NodeProfileState::Installed),
            "{:?}",
            out.reports
        );
        assert_eq!(out.retry_at, None);
    }
}
