//! The status writer's memory between passes: from one consistent view of profiles, reports
//! and nodes to the few profiles whose status may have changed since the last pass, so that a
//! pass resolves and summarizes those only. Comparing resourceVersions costs O(nodes +
//! profiles) per pass; resolving, rendering and summarizing (O(nodes) each) is done only for
//! profiles that changed, for profiles a node newly confirmed, and for a node's exceptions and
//! warnings.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::progress::Progress;
use super::summary::{Expected, NodeView, ProfileFacts};
use seccompd_api::{SeccompFloor, SeccompNodeReport, SeccompProfile};
use seccompd_profile::floor::{Floor, FloorStamp, resolve_with_floors};
use seccompd_profile::render::render;

/// One consistent view of the writer's caches.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every profile, by name.
    pub profiles: BTreeMap<String, Arc<SeccompProfile>>,
    /// Every node report, by node name.
    pub reports: BTreeMap<String, Arc<SeccompNodeReport>>,
    /// The nodes that count: those the agents' DaemonSet runs on, sorted.
    pub node_names: Vec<String>,
    /// Every SeccompFloor, by name: merged into what nodes should install.
    pub floors: BTreeMap<String, Arc<SeccompFloor>>,
}

impl Snapshot {
    /// The floors as the merge takes them.
    fn floor_list(&self) -> Vec<Floor<'_>> {
        self.floors
            .iter()
            .map(|(name, f)| Floor {
                name,
                spec: &f.spec.0,
            })
            .collect()
    }
}

/// What the tracker notes of the floors to tell when every expectation must be computed
/// again: each floor's name, rules and exemptions.
type FloorsSeen = Vec<(String, FloorStamp, Vec<String>)>;

fn floors_seen(snap: &Snapshot) -> FloorsSeen {
    snap.floor_list()
        .iter()
        .map(|f| {
            (
                f.name.to_string(),
                f.stamp(),
                f.spec.exempt_profiles.clone(),
            )
        })
        .collect()
}

/// A node's report, as far as which kind of view it gives.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ReportSeen {
    /// No report.
    Missing,
    /// A report of an agent that has not finished its first sync, at this resourceVersion.
    Syncing(Option<String>),
    /// A synced report at this resourceVersion, with the names it lists as exceptions and
    /// whether it leaves out others, and the names it lists warnings of.
    Synced(Option<String>, BTreeSet<String>, bool, BTreeSet<String>),
}

impl ReportSeen {
    fn of(report: Option<&SeccompNodeReport>) -> Self {
        match report {
            None => Self::Missing,
            Some(r) if !r.spec.synced => Self::Syncing(r.metadata.resource_version.clone()),
            Some(r) => Self::Synced(
                r.metadata.resource_version.clone(),
                r.spec.exceptions.iter().map(|e| e.name.clone()).collect(),
                r.spec.exceptions_omitted > 0,
                r.spec.warnings.iter().map(|w| w.name.clone()).collect(),
            ),
        }
    }

    fn same_kind(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// Whether the report leaves out exceptions, which changes what the node's view says of
    /// every profile it has not confirmed.
    fn leaves_out(&self) -> bool {
        matches!(self, Self::Synced(_, _, true, _))
    }

    /// The profiles the report lists: its exceptions and those it warns of.
    fn listed(&self) -> impl Iterator<Item = &String> {
        match self {
            Self::Synced(_, exceptions, _, warned) => Some(exceptions.iter().chain(warned)),
            _ => None,
        }
        .into_iter()
        .flatten()
    }
}

/// What the tracker notes of a profile to tell what changed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ProfileSeen {
    uid: Option<String>,
    generation: Option<i64>,
    resource_version: Option<String>,
}

impl ProfileSeen {
    fn of(profile: &SeccompProfile) -> Self {
        Self {
            uid: profile.metadata.uid.clone(),
            generation: profile.metadata.generation,
            resource_version: profile.metadata.resource_version.clone(),
        }
    }
}

/// Which profiles a pass must summarize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revisit {
    /// Every profile (the first pass, or the nodes that count changed).
    All,
    /// These profiles (each exists in the snapshot).
    Some(BTreeSet<String>),
}

/// What the writer remembers between passes.
#[derive(Debug, Default)]
pub struct Tracker {
    progress: Progress,
    epoch: u64,
    /// Per profile: what it was at the last pass.
    seen_profiles: BTreeMap<String, ProfileSeen>,
    /// What nodes should install, per profile.
    expected: BTreeMap<String, Expected>,
    /// The floors merged into it, per profile.
    floors_of: BTreeMap<String, Vec<String>>,
    /// Per counted node: its report at the last pass.
    seen_reports: BTreeMap<String, ReportSeen>,
    /// The nodes that counted at the last pass; `None` before the first.
    seen_nodes: Option<Vec<String>>,
    /// The floors at the last pass.
    seen_floors: FloorsSeen,
}

impl Tracker {
    /// Takes in `snap` and says which profiles' statuses may have changed since the last call.
    pub fn update(&mut self, snap: &Snapshot) -> Revisit {
        let mut revisit = BTreeSet::new();
        let mut all = self.seen_nodes.as_ref() != Some(&snap.node_names);
        self.update_expectations(snap, &mut revisit);
        let epoch = self.progress.epoch();
        let epoch_moved = epoch != self.epoch;
        self.epoch = epoch;
        if all {
            self.seen_reports
                .retain(|node, _| snap.node_names.binary_search(node).is_ok());
            self.seen_nodes = Some(snap.node_names.clone());
        }
        for node in &snap.node_names {
            let report = snap.reports.get(node).map(AsRef::as_ref);
            let now = ReportSeen::of(report);
            let before = self.seen_reports.get(node);
            if before == Some(&now) && !epoch_moved {
                continue;
            }
            if !before.is_some_and(|b| b.same_kind(&now)) {
                all = true;
            }
            revisit.extend(before.into_iter().flat_map(ReportSeen::listed).cloned());
            revisit.extend(now.listed().cloned());
            match report {
                Some(r) if r.spec.synced => revisit.extend(self.progress.observe(node, &r.spec)),
                _ => self.progress.forget(node),
            }
            if before.is_some_and(|b| b.leaves_out() != now.leaves_out()) {
                revisit.extend(self.progress.not_current_on(node));
            }
            self.seen_reports.insert(node.clone(), now);
        }
        self.progress.retain_nodes(|node| {
            snap.node_names
                .binary_search_by(|n| n.as_str().cmp(node))
                .is_ok()
        });
        if all {
            return Revisit::All;
        }
        revisit.retain(|name| snap.profiles.contains_key(name));
        Revisit::Some(revisit)
    }

    /// The facts to summarize `profile` from (which must be in `snap`, seen by [`update`]).
    ///
    /// [`update`]: Self::update
    pub fn facts<'a>(
        &'a self,
        snap: &'a Snapshot,
        profile: &'a SeccompProfile,
    ) -> ProfileFacts<'a> {
        let name = profile.metadata.name.as_deref().unwrap_or_default();
        ProfileFacts {
            name,
            generation: profile.metadata.generation,
            mode: profile.spec.0.mode,
            expected: self
                .expected
                .get(name)
                .cloned()
                .unwrap_or_else(|| Expected::Invalid("not resolved yet".into())),
            floors: self.floors_of.get(name).map_or(&[], Vec::as_slice),
            nodes: snap
                .node_names
                .iter()
                .map(|node| {
                    let view = match snap.reports.get(node) {
                        None => NodeView::NoAgent,
                        Some(r) if !r.spec.synced => NodeView::Syncing,
                        Some(r) => NodeView::Reported {
                            exception: r.spec.exceptions.iter().find(|e| e.name == name),
                            holding: self.progress.holding(node, name),
                            omitted: r.spec.exceptions_omitted,
                            warning: r.spec.warnings.iter().find(|w| w.name == name),
                        },
                    };
                    (node.as_str(), view)
                })
                .collect(),
        }
    }

    /// Resolves the profiles that changed (and those that extend them) and sets what nodes
    /// should have of each; adds them to `revisit`.
    fn update_expectations(&mut self, snap: &Snapshot, revisit: &mut BTreeSet<String>) {
        let mut changed = BTreeSet::new();
        // A floor change changes what every profile renders to.
        let floors = floors_seen(snap);
        if floors != self.seen_floors {
            changed.extend(snap.profiles.keys().cloned());
            self.seen_floors = floors;
        }
        for (name, profile) in &snap.profiles {
            let now = ProfileSeen::of(profile);
            match self.seen_profiles.get(name) {
                Some(before) if *before == now => {}
                // Only the status or metadata changed (the writer's own write, most often):
                // what nodes should have is the same, but the status may need writing again.
                Some(before) if before.uid == now.uid && before.generation == now.generation => {
                    revisit.insert(name.clone());
                    self.seen_profiles.insert(name.clone(), now);
                }
                Some(before) => {
                    if before.uid != now.uid {
                        // Deleted and created again between passes: a new profile.
                        self.progress.expect(name, None);
                    }
                    changed.insert(name.clone());
                }
                None => {
                    changed.insert(name.clone());
                }
            }
        }
        let gone: Vec<String> = self
            .seen_profiles
            .keys()
            .filter(|name| !snap.profiles.contains_key(*name))
            .cloned()
            .collect();
        for name in &gone {
            self.seen_profiles.remove(name);
            self.expected.remove(name);
            self.floors_of.remove(name);
            self.progress.expect(name, None);
            changed.insert(name.clone());
        }
        if changed.is_empty() {
            return;
        }
        for name in with_dependents(snap, changed) {
            let Some(profile) = snap.profiles.get(&name) else {
                continue;
            };
            let (expected, floors) = expected_of(&name, profile, snap);
            self.floors_of.insert(name.clone(), floors);
            self.progress.expect(
                &name,
                match &expected {
                    Expected::Hash(h) => Some(h),
                    Expected::Invalid(_) => None,
                },
            );
            self.expected.insert(name.clone(), expected);
            self.seen_profiles
                .insert(name.clone(), ProfileSeen::of(profile));
            revisit.insert(name);
        }
    }
}

/// What the cluster-side resolution of `profile` says nodes should install, and the floors
/// merged into it by name.
fn expected_of(name: &str, profile: &SeccompProfile, snap: &Snapshot) -> (Expected, Vec<String>) {
    match resolve_with_floors(
        name,
        &profile.spec.0,
        |n| snap.profiles.get(n).map(|p| &p.spec.0),
        &snap.floor_list(),
    ) {
        Ok(merged) => {
            let rendered = render(&merged.profile);
            let floors = merged.floors.into_iter().map(|s| s.name).collect();
            match rendered.check_size() {
                Ok(()) => (Expected::Hash(rendered.hash), floors),
                Err(too_large) => (Expected::Invalid(format!("spec: {too_large}")), floors),
            }
        }
        Err(err) => (Expected::Invalid(err.to_string()), Vec::new()),
    }
}

/// `changed` and every profile that extends one of them, directly or through other bases.
fn with_dependents(snap: &Snapshot, changed: BTreeSet<String>) -> BTreeSet<String> {
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, profile) in &snap.profiles {
        if let Some(base) = profile.spec.0.base_profile_name.as_deref() {
            children.entry(base).or_default().push(name);
        }
    }
    let mut out = changed;
    let mut todo: Vec<String> = out.iter().cloned().collect();
    while let Some(name) = todo.pop() {
        for child in children.get(name.as_str()).into_iter().flatten() {
            if out.insert(child.to_string()) {
                todo.push(child.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    use super::*;
    use crate::status::summary::summarize;
    use seccompd_profile::digest::SetDigest;
    use seccompd_profile::render::ContentHash;

    fn profile(
        name: &str,
        rv: &str,
        generation: i64,
        errno: &[&str],
        base: Option<&str>,
    ) -> SeccompProfile {
        let mut spec = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": errno, "action": "SCMP_ACT_ERRNO"}]});
        if let Some(base) = base {
            spec["baseProfileName"] = base.into();
        }
        serde_json::from_value(json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": rv, "generation": generation},
            "spec": spec,
        }))
        .unwrap()
    }

    /// A synced report of `node` with everything `tracker` expects of `names` installed.
    fn report(node: &str, rv: &str, tracker: &Tracker, names: &[&str]) -> SeccompNodeReport {
        let hashes: Vec<(&str, ContentHash)> = names
            .iter()
            .map(|n| match &tracker.expected[*n] {
                Expected::Hash(h) => (*n, h.clone()),
                Expected::Invalid(why) => panic!("{n} is invalid: {why}"),
            })
            .collect();
        let digest = SetDigest::of_set(hashes.iter().map(|(n, h)| (*n, h)));
        serde_json::from_value(json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompNodeReport",
            "metadata": {"name": node, "resourceVersion": rv},
            "spec": {"synced": true, "installed": names.len(), "installedDigest": digest.to_hex()},
        }))
        .unwrap()
    }

    fn snapshot(
        profiles: &[SeccompProfile],
        reports: &[SeccompNodeReport],
        nodes: &[&str],
    ) -> Snapshot {
        Snapshot {
            profiles: profiles
                .iter()
                .map(|p| (p.metadata.name.clone().unwrap(), Arc::new(p.clone())))
                .collect(),
            reports: reports
                .iter()
                .map(|r| (r.metadata.name.clone().unwrap(), Arc::new(r.clone())))
                .collect(),
            node_names: nodes.iter().map(|n| n.to_string()).collect(),
            floors: BTreeMap::new(),
        }
    }

    fn some(names: &[&str]) -> Revisit {
        Revisit::Some(names.iter().map(|n| n.to_string()).collect())
    }

    fn installed(tracker: &Tracker, snap: &Snapshot, name: &str) -> String {
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap());
        summarize(&tracker.facts(snap, &snap.profiles[name]), None, &now)
            .installed
            .unwrap()
    }

    fn copy_fail(exempt: &[&str]) -> Arc<SeccompFloor> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompFloor",
                "metadata": {"name": "copy-fail"},
                "spec": {
                    "rules": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}]}],
                    "exemptProfiles": exempt,
                },
            }))
            .unwrap(),
        )
    }

    #[test]
    fn a_floor_change_re_expects_every_profile_it_applies_to_and_only_those_change() {
        let mut t = Tracker::default();
        let (a, b) = (
            profile("a", "1", 1, &["mkdir"], None),
            profile("b", "2", 1, &["rmdir"], None),
        );
        let nodes = ["n1"];
        let mut snap = snapshot(&[a.clone(), b.clone()], &[], &nodes);
        t.update(&snap);
        let r1 = report("n1", "10", &t, &["a", "b"]);
        snap.reports.insert("n1".into(), Arc::new(r1));
        t.update(&snap);
        let before = t.expected.clone();
        assert_eq!(installed(&t, &snap, "a"), "1/1");

        snap.floors.insert("copy-fail".into(), copy_fail(&["b"]));
        assert_eq!(
            t.update(&snap),
            some(&["a", "b"]),
            "every profile revisited"
        );
        assert_ne!(t.expected["a"], before["a"], "a now renders with the floor");
        assert_eq!(t.expected["b"], before["b"], "b is exempted");
        assert_eq!(
            installed(&t, &snap, "a"),
            "0/1",
            "n1 has not carried it yet"
        );
        assert_eq!(installed(&t, &snap, "b"), "1/1");
        assert_eq!(t.facts(&snap, &snap.profiles["a"]).floors, ["copy-fail"]);
        assert!(t.facts(&snap, &snap.profiles["b"]).floors.is_empty());
        assert_eq!(t.update(&snap), some(&[]), "the same floors change nothing");

        snap.floors.clear();
        t.update(&snap);
        assert_eq!(t.expected, before, "deleting the floor takes its rules out");
    }

    #[test]
    fn a_change_revisits_the_changed_profile_and_nothing_else() {
        let mut t = Tracker::default();
        let (a, b) = (
            profile("a", "1", 1, &["mkdir"], None),
            profile("b", "2", 1, &["rmdir"], None),
        );
        let nodes = ["n1", "n2"];
        assert_eq!(
            t.update(&snapshot(&[a.clone(), b.clone()], &[], &nodes)),
            Revisit::All
        );
        let r1 = report("n1", "10", &t, &["a", "b"]);
        let r2 = report("n2", "11", &t, &["a", "b"]);
        let snap = snapshot(&[a.clone(), b.clone()], &[r1.clone(), r2.clone()], &nodes);
        assert_eq!(
            t.update(&snap),
            Revisit::All,
            "reports appear: every view changes"
        );
        assert_eq!(installed(&t, &snap, "a"), "2/2");
        assert_eq!(t.update(&snap), some(&[]), "nothing changed, nothing to do");

        let a2 = profile("a", "3", 2, &["mkdir", "chmod"], None);
        let snap = snapshot(&[a2.clone(), b.clone()], &[r1.clone(), r2.clone()], &nodes);
        assert_eq!(t.update(&snap), some(&["a"]));
        assert_eq!(installed(&t, &snap, "a"), "0/2");
        assert_eq!(
            installed(&t, &snap, "b"),
            "2/2",
            "unchanged, still installed"
        );

        let r1 = report("n1", "12", &t, &["a", "b"]);
        let snap = snapshot(&[a2.clone(), b.clone()], &[r1.clone(), r2.clone()], &nodes);
        assert_eq!(
            t.update(&snap),
            some(&["a"]),
            "n1 confirmed the change of a only"
        );
        assert_eq!(installed(&t, &snap, "a"), "1/2");

        let status_only = profile("b", "4", 1, &["rmdir"], None);
        let snap = snapshot(&[a2, status_only], &[r1, r2], &nodes);
        assert_eq!(
            t.update(&snap),
            some(&["b"]),
            "its status is looked at again"
        );
        assert_eq!(installed(&t, &snap, "b"), "2/2");
    }

    #[test]
    fn a_report_that_lists_an_exception_revisits_that_profile() {
        let mut t = Tracker::default();
        let (a, b) = (
            profile("a", "1", 1, &["mkdir"], None),
            profile("b", "2", 1, &["rmdir"], None),
        );
        t.update(&snapshot(&[a.clone(), b.clone()], &[], &["n1"]));
        let ok = report("n1", "10", &t, &["a", "b"]);
        t.update(&snapshot(&[a.clone(), b.clone()], &[ok], &["n1"]));
        let mut failing = report("n1", "11", &t, &["a"]);
        failing.spec.exceptions = vec![seccompd_api::ProfileReport {
            name: "b".into(),
            state: seccompd_api::NodeProfileState::Error,
            generation: Some(1),
            content_hash: None,
            reason: Some("No space left on device".into()),
        }];
        let snap = snapshot(&[a, b], &[failing], &["n1"]);
        assert_eq!(t.update(&snap), some(&["b"]));
        assert_eq!(installed(&t, &snap, "b"), "0/1");
        assert_eq!(installed(&t, &snap, "a"), "1/1");
    }

    #[test]
    fn a_report_that_starts_or_stops_warning_of_a_profile_revisits_that_profile() {
        let mut t = Tracker::default();
        let (a, b) = (
            profile("a", "1", 1, &["mkdir"], None),
            profile("b", "2", 1, &["rmdir"], None),
        );
        t.update(&snapshot(&[a.clone(), b.clone()], &[], &["n1"]));
        let quiet = report("n1", "10", &t, &["a", "b"]);
        t.update(&snapshot(&[a.clone(), b.clone()], &[quiet], &["n1"]));
        let Expected::Hash(hash) = t.expected["b"].clone() else {
            panic!("b is installable");
        };
        let mut warning = report("n1", "11", &t, &["a", "b"]);
        warning.spec.warnings = vec![seccompd_api::ProfileWarning {
            name: "b".into(),
            content_hash: hash,
            message: "spec.syscalls: this node's runtime (runc/1.5.3) calls statx".into(),
        }];
        let snap = snapshot(&[a.clone(), b.clone()], &[warning], &["n1"]);
        assert_eq!(t.update(&snap), some(&["b"]));
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap());
        let status = summarize(&t.facts(&snap, &snap.profiles["b"]), None, &now);
        assert_eq!(status.warnings.len(), 1);
        assert_eq!(status.warnings[0].node_name, "n1");
        assert_eq!(status.installed.as_deref(), Some("1/1"));

        let fixed = report("n1", "12", &t, &["a", "b"]);
        let snap = snapshot(&[a, b], &[fixed], &["n1"]);
        assert_eq!(t.update(&snap), some(&["b"]), "its warning is gone");
        let status = summarize(&t.facts(&snap, &snap.profiles["b"]), None, &now);
        assert!(status.warnings.is_empty());
    }

    #[test]
    fn the_facts_carry_the_specs_mode() {
        let mut t = Tracker::default();
        let mut a = profile("a", "1", 1, &["mkdir"], None);
        a.spec.0.mode = seccompd_profile::model::Mode::Audit;
        let snap = snapshot(&[a], &[], &["n1"]);
        t.update(&snap);
        assert_eq!(
            t.facts(&snap, &snap.profiles["a"]).mode,
            seccompd_profile::model::Mode::Audit
        );
    }

    #[test]
    fn a_report_that_starts_or_stops_leaving_out_exceptions_revisits_what_it_has_not_confirmed() {
        let mut t = Tracker::default();
        let (a, b) = (
            profile("a", "1", 1, &["mkdir"], None),
            profile("b", "2", 1, &["rmdir"], None),
        );
        t.update(&snapshot(&[a.clone(), b.clone()], &[], &["n1"]));
        let old = report("n1", "10", &t, &["a", "b"]);
        t.update(&snapshot(
            &[a.clone(), b.clone()],
            std::slice::from_ref(&old),
            &["n1"],
        ));
        let a2 = profile("a", "3", 2, &["mkdir", "chmod"], None);
        let snap = snapshot(
            &[a2.clone(), b.clone()],
            std::slice::from_ref(&old),
            &["n1"],
        );
        assert_eq!(t.update(&snap), some(&["a"]));

        // The node now fails more profiles than its report lists: it cannot confirm `a`.
        let mut overflowing = report("n1", "11", &t, &["b"]);
        overflowing.spec.exceptions_omitted = 200;
        let snap = snapshot(&[a2.clone(), b.clone()], &[overflowing], &["n1"]);
        assert_eq!(t.update(&snap), some(&["a"]), "b stays confirmed");
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap());
        let status = summarize(&t.facts(&snap, &snap.profiles["a"]), None, &now);
        assert!(status.nodes[0].reason.contains("leaves out"));

        let recovered = report("n1", "12", &t, &["b"]);
        let snap = snapshot(&[a2, b], &[recovered], &["n1"]);
        assert_eq!(t.update(&snap), some(&["a"]));
        let status = summarize(&t.facts(&snap, &snap.profiles["a"]), None, &now);
        assert!(!status.nodes[0].reason.contains("leaves out"));
    }

    #[test]
    fn a_changed_base_revisits_the_profiles_that_extend_it() {
        let mut t = Tracker::default();
        let base = profile("base", "1", 1, &["mkdir"], None);
        let child = profile("child", "2", 1, &["rmdir"], Some("base"));
        let other = profile("other", "3", 1, &["chmod"], None);
        t.update(&snapshot(
            &[base, child.clone(), other.clone()],
            &[],
            &["n1"],
        ));
        let base2 = profile("base", "4", 2, &["mkdir", "unlink"], None);
        let snap = snapshot(&[base2, child, other], &[], &["n1"]);
        assert_eq!(t.update(&snap), some(&["base", "child"]));
    }

    #[test]
    fn a_node_that_joins_or_leaves_revisits_everything() {
        let mut t = Tracker::default();
        let a = profile("a", "1", 1, &["mkdir"], None);
        t.update(&snapshot(std::slice::from_ref(&a), &[], &["n1"]));
        assert_eq!(
            t.update(&snapshot(std::slice::from_ref(&a), &[], &["n1"])),
            some(&[])
        );
        let snap = snapshot(std::slice::from_ref(&a), &[], &["n1", "n2"]);
        assert_eq!(t.update(&snap), Revisit::All);
        assert_eq!(installed(&t, &snap, "a"), "0/2");
    }

    #[test]
    fn a_report_ahead_of_the_controller_confirms_the_change_once_the_controller_sees_it() {
        let mut t = Tracker::default();
        let a = profile("a", "1", 1, &["mkdir"], None);
        t.update(&snapshot(std::slice::from_ref(&a), &[], &["n1"]));
        let r = report("n1", "10", &t, &["a"]);
        t.update(&snapshot(
            std::slice::from_ref(&a),
            std::slice::from_ref(&r),
            &["n1"],
        ));
        // The node saw the new version first: its report arrives before the profile change.
        let a2 = profile("a", "2", 2, &["mkdir", "chmod"], None);
        let mut ahead = Tracker::default();
        ahead.update(&snapshot(std::slice::from_ref(&a2), &[], &["n1"]));
        let r2 = report("n1", "11", &ahead, &["a"]);
        let snap = snapshot(std::slice::from_ref(&a), std::slice::from_ref(&r2), &["n1"]);
        assert_eq!(
            t.update(&snap),
            some(&[]),
            "a digest it does not know confirms nothing"
        );
        // Then the profile change reaches the controller: the same report now confirms it.
        let snap = snapshot(&[a2], &[r2], &["n1"]);
        assert_eq!(t.update(&snap), some(&["a"]));
        assert_eq!(installed(&t, &snap, "a"), "1/1");
    }
}
