//! Counting what seccompd profiles refuse (or, in Audit mode, would refuse) on one node: which
//! profile a container runs under, the bounded tally by (profile, system call, action) with
//! example pods and first/last seen, and the node's report. No I/O, no clock: the caller
//! passes the time.
//!
//! A record's container is known at once (its cgroup), its pod's spec and container statuses
//! only when the pod watch delivers them, which for a container's first calls is often later.
//! Records of containers not known yet wait, bounded by key and by time, and are counted lost
//! when they cannot be told.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, SeccompProfile as PodSeccompProfile};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::SignedDuration;

use super::cgroup::{Attribution, PodUid};
use super::part::PodView;
use seccompd_api::{DenialEntry, LostRecords, PROFILE_SUBDIR, PodExample, SeccompDenialReportSpec};
use seccompd_profile::limits::{
    DENIAL_EVENTS_PER_MINUTE, FILE_SUFFIX, MAX_DENIAL_EVENT_KEYS, MAX_DENIAL_EXAMPLES,
    MAX_NODE_DENIAL_ENTRIES, MAX_PENDING_DENIAL_KEYS, RECORD_PROFILE,
};
use seccompd_profile::model::Action;

/// How long records of a container wait for its pod to tell its profile before they are
/// counted lost: the pod watch delivers a new container's status within a second or two.
pub const PENDING_WAIT: SignedDuration = SignedDuration::from_secs(30);

/// The SeccompProfile each container of `pod` runs under, by container name (init containers
/// too), for the containers under a seccompd profile: a `Localhost` profile
/// `seccompd/<name>.json`, set on the container or, when the container sets none, on the pod.
/// The recording profile (`seccompd/record.json`) is no SeccompProfile.
pub fn seccompd_profiles(pod: &Pod) -> BTreeMap<String, String> {
    let Some(spec) = pod.spec.as_ref() else {
        return BTreeMap::new();
    };
    let pod_level = spec
        .security_context
        .as_ref()
        .and_then(|c| c.seccomp_profile.as_ref());
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter_map(|c| {
            let own = c
                .security_context
                .as_ref()
                .and_then(|s| s.seccomp_profile.as_ref());
            let profile = profile_name(own.or(pod_level)?)?;
            Some((c.name.clone(), profile))
        })
        .collect()
}

/// The SeccompProfile a pod's `seccompProfile` names, however its path is spelled
/// (`seccompd//x.json`, `./seccompd/x.json`: the kubelet joins it to its root as a path).
fn profile_name(profile: &PodSeccompProfile) -> Option<String> {
    if profile.type_ != "Localhost" {
        return None;
    }
    let path = profile.localhost_profile.as_deref()?;
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let [dir, file] = segments.as_slice() else {
        return None;
    };
    let name = file.strip_suffix(FILE_SUFFIX)?;
    (*dir == PROFILE_SUBDIR && !name.is_empty() && name != RECORD_PROFILE).then(|| name.to_string())
}

/// What a tally entry is counted under.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DenialKey {
    /// The SeccompProfile.
    pub profile: String,
    /// The system call's name.
    pub syscall: String,
    /// The action the kernel logged.
    pub action: Action,
}

/// What became of records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Counted under `key`, made by `pod`.
    Tallied {
        /// The entry.
        key: DenialKey,
        /// The pod's uid.
        pod_uid: PodUid,
        /// The pod and container.
        pod: PodExample,
        /// How many records.
        count: u64,
    },
    /// Of a container under a seccompd profile, but the tally is full.
    Omitted(u64),
    /// Of a container under no seccompd profile (or an allowed call): not a denial.
    NotCounted,
    /// Waiting for the container's pod.
    Pending,
    /// Lost: the container's pod never told its profile in time, or the queue of waiting
    /// keys was full.
    Unresolved(u64),
}

/// What a pod says of one of its containers.
enum Resolution {
    Counted(String, PodExample),
    NotCounted,
    Unknown,
}

fn resolve(view: Option<&PodView>, at: &Attribution) -> Resolution {
    let Some(view) = view else {
        return Resolution::Unknown;
    };
    if view.profiles.is_empty() {
        // No container of the pod runs under a seccompd profile: nothing to wait for.
        return Resolution::NotCounted;
    }
    let Some(container) = view.containers.get(&at.container) else {
        return Resolution::Unknown;
    };
    match view.profiles.get(container) {
        Some(profile) => Resolution::Counted(
            profile.clone(),
            PodExample {
                namespace: view.namespace.clone(),
                name: view.name.clone(),
                container: container.clone(),
            },
        ),
        None => Resolution::NotCounted,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Counted {
    count: u64,
    first_seen: Time,
    last_seen: Time,
    pods: Vec<PodExample>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PendingKey {
    at: Attribution,
    syscall: String,
    action: Action,
}

#[derive(Clone, Debug)]
struct Waiting {
    count: u64,
    first_seen: Time,
    last_seen: Time,
}

/// One node's denials since its recorder started, bounded: at most
/// [`MAX_NODE_DENIAL_ENTRIES`] entries and [`MAX_PENDING_DENIAL_KEYS`] waiting keys.
#[derive(Debug, Default)]
pub struct NodeDenials {
    tally: BTreeMap<DenialKey, Counted>,
    omitted: u64,
    pending: HashMap<PendingKey, Waiting>,
    unresolved: u64,
}

impl NodeDenials {
    /// Notes a record of the container `at` with the action `action` on `syscall`, at `now`;
    /// `view` is its pod as the recorder knows it.
    pub fn note(
        &mut self,
        at: &Attribution,
        syscall: &str,
        action: Action,
        now: &Time,
        view: Option<&PodView>,
    ) -> Outcome {
        if action == Action::Allow {
            return Outcome::NotCounted;
        }
        match resolve(view, at) {
            Resolution::Counted(profile, pod) => {
                let key = DenialKey {
                    profile,
                    syscall: syscall.to_string(),
                    action,
                };
                self.tally(key, &at.pod, pod, 1, now, now)
            }
            Resolution::NotCounted => Outcome::NotCounted,
            Resolution::Unknown => {
                let key = PendingKey {
                    at: at.clone(),
                    syscall: syscall.to_string(),
                    action,
                };
                if let Some(waiting) = self.pending.get_mut(&key) {
                    waiting.count += 1;
                    waiting.last_seen = now.clone();
                    return Outcome::Pending;
                }
                if self.pending.len() >= MAX_PENDING_DENIAL_KEYS {
                    self.unresolved += 1;
                    return Outcome::Unresolved(1);
                }
                self.pending.insert(
                    key,
                    Waiting {
                        count: 1,
                        first_seen: now.clone(),
                        last_seen: now.clone(),
                    },
                );
                Outcome::Pending
            }
        }
    }

    /// Tells the waiting records whose pod now says its profile (`lookup` finds a pod by
    /// uid); those that waited [`PENDING_WAIT`] without are counted lost.
    pub fn resolve_pending<'a>(
        &mut self,
        now: &Time,
        lookup: impl Fn(&PodUid) -> Option<&'a PodView>,
    ) -> Vec<Outcome> {
        let mut out = Vec::new();
        let keys: Vec<PendingKey> = self.pending.keys().cloned().collect();
        for key in keys {
            let resolution = resolve(lookup(&key.at.pod), &key.at);
            let Some(waiting) = self.pending.get(&key) else {
                continue;
            };
            match resolution {
                Resolution::Counted(profile, pod) => {
                    let waiting = waiting.clone();
                    self.pending.remove(&key);
                    let entry = DenialKey {
                        profile,
                        syscall: key.syscall,
                        action: key.action,
                    };
                    out.push(self.tally(
                        entry,
                        &key.at.pod,
                        pod,
                        waiting.count,
                        &waiting.first_seen,
                        &waiting.last_seen,
                    ));
                }
                Resolution::NotCounted => {
                    self.pending.remove(&key);
                    out.push(Outcome::NotCounted);
                }
                Resolution::Unknown => {
                    if now.0.duration_since(waiting.first_seen.0) >= PENDING_WAIT {
                        let lost = waiting.count;
                        self.pending.remove(&key);
                        self.unresolved += lost;
                        out.push(Outcome::Unresolved(lost));
                    }
                }
            }
        }
        out
    }

    fn tally(
        &mut self,
        key: DenialKey,
        pod_uid: &PodUid,
        pod: PodExample,
        count: u64,
        first_seen: &Time,
        last_seen: &Time,
    ) -> Outcome {
        if let Some(counted) = self.tally.get_mut(&key) {
            counted.count += count;
            if *first_seen < counted.first_seen {
                counted.first_seen = first_seen.clone();
            }
            if *last_seen > counted.last_seen {
                counted.last_seen = last_seen.clone();
            }
            if counted.pods.len() < MAX_DENIAL_EXAMPLES && !counted.pods.contains(&pod) {
                counted.pods.push(pod.clone());
            }
        } else if self.tally.len() >= MAX_NODE_DENIAL_ENTRIES {
            self.omitted += count;
            return Outcome::Omitted(count);
        } else {
            self.tally.insert(
                key.clone(),
                Counted {
                    count,
                    first_seen: first_seen.clone(),
                    last_seen: last_seen.clone(),
                    pods: vec![pod.clone()],
                },
            );
        }
        Outcome::Tallied {
            key,
            pod_uid: pod_uid.clone(),
            pod,
            count,
        }
    }

    /// Records lost because their container's profile could not be told.
    pub fn unresolved(&self) -> u64 {
        self.unresolved
    }

    /// The node's report: the tally, and `lost` (the kernel's and the reader's losses) with
    /// the records this tally could not resolve added.
    pub fn report(
        &self,
        since: Option<Time>,
        audit_unavailable: Option<String>,
        records_read: u64,
        lost: LostRecords,
    ) -> SeccompDenialReportSpec {
        let entries: Vec<DenialEntry> = self
            .tally
            .iter()
            .map(|(key, counted)| DenialEntry {
                profile: key.profile.clone(),
                syscall: key.syscall.clone(),
                action: key.action,
                count: counted.count,
                first_seen: counted.first_seen.clone(),
                last_seen: counted.last_seen.clone(),
                pods: counted.pods.clone(),
            })
            .collect();
        SeccompDenialReportSpec {
            since,
            audit_unavailable,
            records_read,
            lost: LostRecords {
                unresolved: self.unresolved,
                ..lost
            }
            .totalled(),
            entry_count: u32::try_from(entries.len()).unwrap_or(u32::MAX),
            entries,
            omitted_records: self.omitted,
        }
    }
}

/// Which denials get an Event: the first record of each (pod, system call, action), at most
/// [`DENIAL_EVENTS_PER_MINUTE`] a minute, remembering at most [`MAX_DENIAL_EVENT_KEYS`] keys.
#[derive(Debug, Default)]
pub struct EventGate {
    sent: HashSet<(PodUid, String, Action)>,
    window_start: Option<Instant>,
    in_window: u32,
}

impl EventGate {
    /// Whether a record of `syscall` by pod `pod` with `action`, at `now`, gets an Event. A
    /// record refused for the rate alone leaves its key free for a later one.
    pub fn admit(&mut self, pod: &PodUid, syscall: &str, action: Action, now: Instant) -> bool {
        let key = (pod.clone(), syscall.to_string(), action);
        if self.sent.contains(&key) || self.sent.len() >= MAX_DENIAL_EVENT_KEYS {
            return false;
        }
        if self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= Duration::from_secs(60))
        {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        if self.in_window >= DENIAL_EVENTS_PER_MINUTE {
            return false;
        }
        self.in_window += 1;
        self.sent.insert(key);
        true
    }

    /// Forgets a pod (gone for good).
    pub fn forget(&mut self, pod: &PodUid) {
        self.sent.retain(|(p, _, _)| p != pod);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::ContainerId;
    use serde_json::json;

    const ID: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn at(pod: &str) -> Attribution {
        Attribution {
            pod: PodUid(pod.to_string()),
            container: ContainerId(ID.to_string()),
        }
    }

    fn time(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    /// A pod `uid` whose container `main` (with ID [`ID`] once `started`) has `security`.
    fn pod(uid: &str, pod_level: serde_json::Value, container_level: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("pod-{uid}"), "namespace": "ns", "uid": uid},
            "spec": {"securityContext": pod_level, "containers": [
                {"name": "main", "securityContext": container_level},
                {"name": "side"}]},
            "status": {"containerStatuses": [{"name": "main", "image": "i", "imageID": "",
                "ready": true, "restartCount": 0, "containerID": format!("containerd://{ID}")}]},
        }))
        .unwrap()
    }

    fn localhost(path: &str) -> serde_json::Value {
        json!({"seccompProfile": {"type": "Localhost", "localhostProfile": path}})
    }

    fn view(pod: &Pod) -> PodView {
        PodView::of(pod).unwrap()
    }

    #[test]
    fn a_container_runs_under_its_own_profile_or_else_the_pods() {
        let p = pod(
            "u",
            localhost("seccompd/pod.json"),
            localhost("seccompd/own.json"),
        );
        assert_eq!(
            seccompd_profiles(&p),
            BTreeMap::from([
                ("main".to_string(), "own".to_string()),
                ("side".to_string(), "pod".to_string())
            ])
        );
        let runtime_default = json!({"seccompProfile": {"type": "RuntimeDefault"}});
        let p = pod("u", localhost("./seccompd//pod.json"), runtime_default);
        assert_eq!(
            seccompd_profiles(&p),
            BTreeMap::from([("side".to_string(), "pod".to_string())])
        );
        for not_ours in [
            "seccompd/record.json",
            "other/x.json",
            "seccompd/x.yaml",
            "seccompd/sub/x.json",
        ] {
            let p = pod("u", localhost(not_ours), json!({}));
            assert!(seccompd_profiles(&p).is_empty(), "{not_ours}");
        }
    }

    #[test]
    fn trimmed_pods_keep_their_profiles() {
        let mut p = pod("u", json!({}), localhost("seccompd/own.json"));
        crate::part::trim_pod(&mut p);
        assert_eq!(view(&p).profiles["main"], "own");
    }

    #[test]
    fn records_are_tallied_by_profile_call_and_action_with_examples_and_times() {
        let p = view(&pod("u", localhost("seccompd/ls.json"), json!({})));
        let mut d = NodeDenials::default();
        for (secs, action) in [(10, Action::Log), (12, Action::Log), (11, Action::Errno)] {
            let out = d.note(&at("u"), "mkdir", action, &time(secs), Some(&p));
            assert!(matches!(out, Outcome::Tallied { count: 1, .. }), "{out:?}");
        }
        let report = d.report(None, None, 3, LostRecords::default());
        assert_eq!(report.entry_count, 2);
        let log = &report.entries[1];
        assert_eq!(
            (log.profile.as_str(), log.syscall.as_str(), log.action),
            ("ls", "mkdir", Action::Log)
        );
        assert_eq!(
            (log.count, &log.first_seen, &log.last_seen),
            (2, &time(10), &time(12))
        );
        assert_eq!(
            log.pods,
            [PodExample {
                namespace: "ns".to_string(),
                name: "pod-u".to_string(),
                container: "main".to_string()
            }]
        );
        assert_eq!(report.entries[0].action, Action::Errno);
    }

    #[test]
    fn containers_under_no_seccompd_profile_and_allowed_calls_are_not_counted() {
        let unconfined = view(&pod("u", json!({}), json!({})));
        let mut d = NodeDenials::default();
        let now = time(1);
        assert_eq!(
            d.note(&at("u"), "mkdir", Action::Log, &now, Some(&unconfined)),
            Outcome::NotCounted
        );
        let confined = view(&pod("c", localhost("seccompd/ls.json"), json!({})));
        assert_eq!(
            d.note(&at("c"), "read", Action::Allow, &now, Some(&confined)),
            Outcome::NotCounted
        );
        assert!(
            d.report(None, None, 0, LostRecords::default())
                .entries
                .is_empty()
        );
    }

    #[test]
    fn the_tally_is_bounded_and_counts_what_it_leaves_out() {
        let p = view(&pod("u", localhost("seccompd/ls.json"), json!({})));
        let mut d = NodeDenials::default();
        let now = time(1);
        for n in 0..MAX_NODE_DENIAL_ENTRIES + 5 {
            d.note(&at("u"), &format!("call{n}"), Action::Log, &now, Some(&p));
        }
        // A key already counted still counts when full.
        let out = d.note(&at("u"), "call0", Action::Log, &now, Some(&p));
        assert!(matches!(out, Outcome::Tallied { .. }));
        let report = d.report(None, None, 0, LostRecords::default());
        assert_eq!(report.entries.len(), MAX_NODE_DENIAL_ENTRIES);
        assert_eq!(report.omitted_records, 5);
    }

    #[test]
    fn examples_are_bounded() {
        let mut d = NodeDenials::default();
        for n in 0..MAX_DENIAL_EXAMPLES + 2 {
            let uid = format!("u{n}");
            let p = view(&pod(&uid, localhost("seccompd/ls.json"), json!({})));
            d.note(&at(&uid), "mkdir", Action::Log, &time(1), Some(&p));
        }
        let report = d.report(None, None, 0, LostRecords::default());
        assert_eq!(report.entries[0].count, MAX_DENIAL_EXAMPLES as u64 + 2);
        assert_eq!(report.entries[0].pods.len(), MAX_DENIAL_EXAMPLES);
    }

    #[test]
    fn records_wait_for_their_pod_and_are_lost_when_it_never_tells() {
        let mut d = NodeDenials::default();
        assert_eq!(
            d.note(&at("late"), "mkdir", Action::Log, &time(1), None),
            Outcome::Pending
        );
        d.note(&at("late"), "mkdir", Action::Log, &time(2), None);
        d.note(&at("never"), "mkdir", Action::Log, &time(2), None);
        let late = view(&pod("late", localhost("seccompd/ls.json"), json!({})));
        let out = d.resolve_pending(&time(3), |uid| (uid.0 == "late").then_some(&late));
        assert!(
            out.iter()
                .any(|o| matches!(o, Outcome::Tallied { count: 2, .. })),
            "{out:?}"
        );
        let report = d.report(None, None, 0, LostRecords::default());
        assert_eq!(
            (report.entries[0].count, &report.entries[0].first_seen),
            (2, &time(1))
        );
        // Still waiting before PENDING_WAIT, lost after.
        assert!(d.resolve_pending(&time(4), |_| None).is_empty());
        let gone = time(2 + PENDING_WAIT.as_secs());
        assert_eq!(d.resolve_pending(&gone, |_| None), [Outcome::Unresolved(1)]);
        let lost = LostRecords {
            kernel: 4,
            ..Default::default()
        };
        let report = d.report(None, None, 0, lost);
        assert_eq!((report.lost.unresolved, report.lost.total), (1, 5));
    }

    #[test]
    fn waiting_keys_are_bounded_and_the_excess_counted_lost() {
        let mut d = NodeDenials::default();
        for n in 0..MAX_PENDING_DENIAL_KEYS {
            d.note(&at("p"), &format!("c{n}"), Action::Log, &time(1), None);
        }
        assert_eq!(
            d.note(&at("p"), "one-more", Action::Log, &time(1), None),
            Outcome::Unresolved(1)
        );
        assert_eq!(d.unresolved(), 1);
    }

    #[test]
    fn one_event_per_pod_call_and_action_and_at_most_the_rate() {
        let mut gate = EventGate::default();
        let t0 = Instant::now();
        let pod = PodUid("p".to_string());
        assert!(gate.admit(&pod, "mkdir", Action::Log, t0));
        assert!(!gate.admit(&pod, "mkdir", Action::Log, t0), "once per key");
        assert!(
            gate.admit(&pod, "mkdir", Action::Errno, t0),
            "another action"
        );
        for n in 2..DENIAL_EVENTS_PER_MINUTE {
            assert!(gate.admit(&pod, &format!("c{n}"), Action::Log, t0));
        }
        assert!(!gate.admit(&pod, "late", Action::Log, t0), "over the rate");
        let later = t0 + Duration::from_secs(60);
        assert!(
            gate.admit(&pod, "late", Action::Log, later),
            "its key was left free"
        );
        gate.forget(&pod);
        assert!(gate.admit(&pod, "mkdir", Action::Log, later));
    }
}
