//! Which version of each profile each node has, learnt from the digests in the node reports.
//!
//! Every change of what the nodes should have (a profile created, changed, made invalid or
//! deleted) starts a new epoch. A node whose report's digest equals the digest of everything
//! expected now (less the profiles it lists as exceptions) has confirmed this epoch, and so
//! has every profile as it is now. A profile that changed after the last epoch its node
//! confirmed is not known to be there yet: it is an earlier version (the profile existed at
//! that epoch) or none. Nodes never list what they have installed, so a report stays small
//! however many profiles there are, and a change costs work for the changed profile only.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use seccompd_api::SeccompNodeReportSpec;
use seccompd_profile::digest::SetDigest;
use seccompd_profile::render::ContentHash;

/// What the nodes should have of one profile, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Expectation {
    hash: ContentHash,
    /// The epoch at which nodes were first expected to have this content.
    since: u64,
    /// The epoch at which the profile (under this name) became installable.
    first: u64,
}

/// What a node is known to hold of one profile, as far as its digest tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding {
    /// The version expected now.
    Current,
    /// An earlier version: the node confirmed an epoch at which the profile existed, but not
    /// one since it last changed.
    Earlier,
    /// Nothing confirmed yet.
    Unconfirmed,
}

/// How many past epochs' digests are kept, so that a node whose report is a few changes
/// behind (as every node is during a burst of changes) still confirms the epoch it has
/// reached, instead of confirming nothing until the burst is over.
pub const RECENT_EPOCHS: usize = 1024;

/// The controller's memory of expectations and of the epoch each node has confirmed.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    epoch: u64,
    expected: BTreeMap<String, Expectation>,
    digest: SetDigest,
    /// Installable profiles by the epoch at which their expectation was set.
    by_epoch: BTreeMap<u64, BTreeSet<String>>,
    /// Per node, the latest epoch its digest matched.
    confirmed: BTreeMap<String, u64>,
    /// The digests of the last [`RECENT_EPOCHS`] epochs (oldest first), and by digest the
    /// latest epoch that had it.
    recent: VecDeque<(u64, SetDigest)>,
    /// By digest: the latest epoch with that digest and how many profiles it expected.
    recent_by_digest: HashMap<SetDigest, (u64, usize)>,
}

impl Progress {
    /// Sets what nodes should have of profile `name`: the file with `hash`, or nothing
    /// (`None`: the profile was deleted or cannot be installed anywhere). Returns whether the
    /// expectation changed (and so a new epoch began).
    pub fn expect(&mut self, name: &str, hash: Option<&ContentHash>) -> bool {
        if self.expected.get(name).map(|e| &e.hash) == hash {
            return false;
        }
        self.epoch += 1;
        let old = self.expected.remove(name);
        if let Some(old) = &old {
            self.digest.remove(&SetDigest::of_member(name, &old.hash));
            self.unindex(old.since, name);
        }
        if let Some(hash) = hash {
            self.digest.add(&SetDigest::of_member(name, hash));
            self.expected.insert(
                name.to_string(),
                Expectation {
                    hash: hash.clone(),
                    since: self.epoch,
                    first: old.map_or(self.epoch, |o| o.first),
                },
            );
            self.by_epoch
                .entry(self.epoch)
                .or_default()
                .insert(name.to_string());
        }
        self.remember_epoch();
        true
    }

    /// Notes the digest of the epoch that just began, forgetting the oldest beyond
    /// [`RECENT_EPOCHS`].
    fn remember_epoch(&mut self) {
        self.recent.push_back((self.epoch, self.digest));
        self.recent_by_digest
            .insert(self.digest, (self.epoch, self.expected.len()));
        while self.recent.len() > RECENT_EPOCHS {
            if let Some((epoch, digest)) = self.recent.pop_front()
                && self.recent_by_digest.get(&digest).map(|(e, _)| *e) == Some(epoch)
            {
                self.recent_by_digest.remove(&digest);
            }
        }
    }

    /// Compares node `node`'s report with the expected set, now or (for a report without
    /// exceptions) at a recent epoch. Returns the profiles whose state on this node may differ
    /// from what the last call knew (all of them, the first time the node confirms anything).
    pub fn observe(&mut self, node: &str, report: &SeccompNodeReportSpec) -> BTreeSet<String> {
        let Some(reached) = self.epoch_of(report) else {
            return BTreeSet::new();
        };
        let before = self.confirmed.get(node).copied();
        if before.is_some_and(|b| b >= reached) {
            return BTreeSet::new();
        }
        self.confirmed.insert(node.to_string(), reached);
        match before {
            Some(before) => self
                .by_epoch
                .range(before + 1..=reached)
                .flat_map(|(_, names)| names.iter().cloned())
                .collect(),
            None => self
                .by_epoch
                .range(..=reached)
                .flat_map(|(_, names)| names.iter().cloned())
                .collect(),
        }
    }

    /// The latest epoch whose expected set `report` shows installed, less its exceptions.
    fn epoch_of(&self, report: &SeccompNodeReportSpec) -> Option<u64> {
        let mut digest = self.digest;
        let mut installable = self.expected.len();
        for exception in &report.exceptions {
            if let Some(e) = self.expected.get(&exception.name) {
                digest.remove(&SetDigest::of_member(&exception.name, &e.hash));
                installable -= 1;
            }
        }
        if digest == report.installed_digest && installable == report.installed as usize {
            return Some(self.epoch);
        }
        // Exceptions are subtracted with today's hashes, which an older epoch may not have
        // had: only a report without any is compared with the past.
        if !report.exceptions.is_empty() {
            return None;
        }
        self.recent_by_digest
            .get(&report.installed_digest)
            .filter(|(_, count)| *count == report.installed as usize)
            .map(|(epoch, _)| *epoch)
    }

    /// The current epoch: it moves whenever an expectation changes.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Forgets every node for which `keep` is false.
    pub fn retain_nodes(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.confirmed.retain(|node, _| keep(node));
    }

    /// Forgets a node (its report is gone or it no longer counts).
    pub fn forget(&mut self, node: &str) {
        self.confirmed.remove(node);
    }

    /// What node `node` is known to hold of profile `name`.
    pub fn holding(&self, node: &str, name: &str) -> Holding {
        let (Some(confirmed), Some(e)) = (self.confirmed.get(node), self.expected.get(name)) else {
            return Holding::Unconfirmed;
        };
        if e.since <= *confirmed {
            Holding::Current
        } else if e.first <= *confirmed {
            Holding::Earlier
        } else {
            Holding::Unconfirmed
        }
    }

    /// The expected profiles that node `node` does not hold as [`Holding::Current`].
    pub fn not_current_on(&self, node: &str) -> BTreeSet<String> {
        self.expected
            .keys()
            .filter(|name| self.holding(node, name) != Holding::Current)
            .cloned()
            .collect()
    }

    fn unindex(&mut self, epoch: u64, name: &str) {
        if let Some(names) = self.by_epoch.get_mut(&epoch) {
            names.remove(name);
            if names.is_empty() {
                self.by_epoch.remove(&epoch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccompd_api::{NodeProfileState, ProfileReport};

    fn h(text: &str) -> ContentHash {
        ContentHash::of(text.as_bytes())
    }

    /// A node's report with `installed` (name, content) and `exceptions` (names, Invalid).
    fn report(installed: &[(&str, &str)], exceptions: &[&str]) -> SeccompNodeReportSpec {
        let hashes: Vec<(&str, ContentHash)> = installed.iter().map(|(n, c)| (*n, h(c))).collect();
        SeccompNodeReportSpec {
            synced: true,
            installed: installed.len() as u32,
            installed_digest: SetDigest::of_set(hashes.iter().map(|(n, h)| (*n, h))),
            exceptions: exceptions
                .iter()
                .map(|name| ProfileReport {
                    name: name.to_string(),
                    state: NodeProfileState::Invalid,
                    generation: Some(1),
                    content_hash: None,
                    reason: Some("rejected".into()),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_node_that_matches_the_digest_holds_every_profile() {
        let mut p = Progress::default();
        assert!(p.expect("a", Some(&h("A"))));
        assert!(!p.expect("a", Some(&h("A"))), "the same expectation again");
        p.expect("b", Some(&h("B")));
        assert_eq!(p.holding("n1", "a"), Holding::Unconfirmed);
        let changed = p.observe("n1", &report(&[("a", "A"), ("b", "B")], &[]));
        assert_eq!(changed, names(&["a", "b"]), "everything, the first time");
        assert_eq!(p.holding("n1", "a"), Holding::Current);
        assert_eq!(p.holding("n1", "b"), Holding::Current);
        assert_eq!(p.holding("n2", "a"), Holding::Unconfirmed, "another node");
    }

    #[test]
    fn a_change_is_earlier_on_a_node_until_it_confirms_and_only_it_is_revisited() {
        let mut p = Progress::default();
        p.expect("a", Some(&h("A")));
        p.expect("b", Some(&h("B")));
        p.observe("n1", &report(&[("a", "A"), ("b", "B")], &[]));
        p.expect("a", Some(&h("A2")));
        assert_eq!(p.holding("n1", "a"), Holding::Earlier);
        assert_eq!(p.holding("n1", "b"), Holding::Current);
        let stale = p.observe("n1", &report(&[("a", "A"), ("b", "B")], &[]));
        assert!(stale.is_empty(), "the old digest confirms nothing");
        assert_eq!(p.holding("n1", "a"), Holding::Earlier);
        let changed = p.observe("n1", &report(&[("a", "A2"), ("b", "B")], &[]));
        assert_eq!(changed, names(&["a"]));
        assert_eq!(p.holding("n1", "a"), Holding::Current);
    }

    #[test]
    fn listed_exceptions_are_left_out_of_the_digest() {
        let mut p = Progress::default();
        p.expect("a", Some(&h("A")));
        p.expect("arm-only", Some(&h("X")));
        p.observe("n1", &report(&[("a", "A")], &["arm-only"]));
        assert_eq!(p.holding("n1", "a"), Holding::Current);
        let mut forged = report(&[("a", "A")], &[]);
        forged.installed = 2;
        assert!(
            p.observe("n2", &forged).is_empty(),
            "count and digest must agree"
        );
        assert_eq!(p.holding("n2", "a"), Holding::Unconfirmed);
    }

    #[test]
    fn a_new_or_recreated_profile_is_unconfirmed_not_earlier() {
        let mut p = Progress::default();
        p.expect("a", Some(&h("A")));
        p.observe("n1", &report(&[("a", "A")], &[]));
        p.expect("new", Some(&h("N")));
        assert_eq!(p.holding("n1", "new"), Holding::Unconfirmed);
        p.expect("a", None);
        p.expect("a", Some(&h("A")));
        assert_eq!(
            p.holding("n1", "a"),
            Holding::Unconfirmed,
            "deleted and created again: the node may not have it"
        );
        let changed = p.observe("n1", &report(&[("a", "A"), ("new", "N")], &[]));
        assert_eq!(changed, names(&["a", "new"]));
        p.forget("n1");
        assert_eq!(p.holding("n1", "a"), Holding::Unconfirmed);
    }

    #[test]
    fn a_node_a_few_changes_behind_confirms_the_epoch_it_reached() {
        let mut p = Progress::default();
        p.expect("a", Some(&h("A")));
        p.observe("n1", &report(&[("a", "A")], &[]));
        p.expect("b", Some(&h("B")));
        p.expect("c", Some(&h("C")));
        p.expect("d", Some(&h("D")));
        // The node has b, not yet c and d.
        let changed = p.observe("n1", &report(&[("a", "A"), ("b", "B")], &[]));
        assert_eq!(changed, names(&["b"]));
        assert_eq!(p.holding("n1", "b"), Holding::Current);
        assert_eq!(p.holding("n1", "c"), Holding::Unconfirmed);
        // An older report again (a lagging watch) takes nothing back.
        assert!(p.observe("n1", &report(&[("a", "A")], &[])).is_empty());
        assert_eq!(p.holding("n1", "b"), Holding::Current);
        let changed = p.observe(
            "n1",
            &report(&[("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")], &[]),
        );
        assert_eq!(changed, names(&["c", "d"]));
        // A node that first reports an older set confirms only what that set holds.
        let changed = p.observe("n2", &report(&[("a", "A"), ("b", "B")], &[]));
        assert_eq!(changed, names(&["a", "b"]));
        assert_eq!(p.holding("n2", "c"), Holding::Unconfirmed);
    }

    #[test]
    fn epochs_older_than_the_window_are_forgotten() {
        let mut p = Progress::default();
        p.expect("first", Some(&h("1")));
        for i in 0..RECENT_EPOCHS {
            p.expect(&format!("p{i}"), Some(&h(&i.to_string())));
        }
        assert!(p.observe("n1", &report(&[("first", "1")], &[])).is_empty());
        assert_eq!(p.recent.len(), RECENT_EPOCHS);
        assert_eq!(p.recent_by_digest.len(), RECENT_EPOCHS);
    }

    #[test]
    fn the_digest_follows_expectations_one_profile_at_a_time() {
        let mut p = Progress::default();
        for i in 0..20 {
            p.expect(&format!("p{i}"), Some(&h(&i.to_string())));
        }
        for i in 0..10 {
            p.expect(&format!("p{i}"), None);
        }
        p.expect("p15", Some(&h("changed")));
        let owned: Vec<(String, String)> = (10..20)
            .map(|i| {
                let content = if i == 15 {
                    "changed".to_string()
                } else {
                    i.to_string()
                };
                (format!("p{i}"), content)
            })
            .collect();
        let installed: Vec<(&str, &str)> = owned
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_str()))
            .collect();
        assert_eq!(p.observe("n1", &report(&installed, &[])).len(), 10);
        assert_eq!(p.holding("n1", "p15"), Holding::Current);
    }
}
