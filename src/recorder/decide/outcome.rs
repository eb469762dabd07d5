//! What a node contributes to a recording, and what the recording comes to once every part
//! is in. No I/O.
//!
//! Each node's recorder writes its own part into the recording's status (`status.nodes`, one
//! entry per node, each owned by that node's recorder through server-side apply). Any
//! recorder may then finish the recording: once every part is final, the union of their
//! calls is the profile. Finishing is idempotent (the same parts give the same profile), so
//! two recorders finishing at once write the same thing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Pod;
use kube::core::{Selector, SelectorExt};

use super::cgroup::{ContainerId, PodUid};
use super::tally::NodeTally;
use crate::api::{
    AbiCalls, NodeRecording, RecordingPhase, SeccompProfileRecordingSpec,
    SeccompProfileRecordingStatus,
};
use crate::profile::limits::RECORD_PROFILE;
use crate::profile::model::{Arch, ProfileSpec};
use crate::profile::recording::{RecordedCalls, TIMING_DEPENDENT_CALLS};
use crate::profile::validate::RUNC_NEEDS_ALWAYS;

/// What the recorder knows of a pod on its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    /// metadata.uid.
    pub uid: PodUid,
    /// metadata.name.
    pub name: String,
    /// metadata.namespace.
    pub namespace: String,
    /// metadata.labels.
    pub labels: BTreeMap<String, String>,
    /// Succeeded, Failed, or deleted: none of its processes runs any more.
    pub ended: bool,
    /// Its containers' names (init containers too) by container ID, from its statuses.
    pub containers: HashMap<ContainerId, String>,
}

impl PodView {
    /// What a pod object says; `None` without a uid or name.
    pub fn of(pod: &Pod) -> Option<Self> {
        let meta = &pod.metadata;
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref());
        let statuses = status.into_iter().flat_map(|s| {
            [
                &s.container_statuses,
                &s.init_container_statuses,
                &s.ephemeral_container_statuses,
            ]
            .into_iter()
            .flatten()
            .flatten()
        });
        let mut containers = HashMap::new();
        for c in statuses {
            // A restarted container's previous instance recorded calls too.
            let previous = c
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.container_id.as_deref());
            for id in [c.container_id.as_deref(), previous].into_iter().flatten() {
                if let Some(id) = ContainerId::from_status(id) {
                    containers.insert(id, c.name.clone());
                }
            }
        }
        Some(Self {
            uid: PodUid(meta.uid.clone()?),
            name: meta.name.clone()?,
            namespace: meta.namespace.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            ended: matches!(phase, Some("Succeeded" | "Failed")),
            containers,
        })
    }
}

/// A recording's selector, checked once.
#[derive(Clone, Debug)]
pub struct Selection {
    namespace: String,
    selector: Selector,
}

impl Selection {
    /// The pods recording `spec` in `namespace` selects; `Err` says why the selector is
    /// unusable.
    pub fn new(namespace: &str, spec: &SeccompProfileRecordingSpec) -> Result<Self, String> {
        let selector = Selector::try_from(spec.pod_selector.clone())
            .map_err(|e| format!("spec.podSelector: {e}"))?;
        Ok(Self {
            namespace: namespace.to_string(),
            selector,
        })
    }

    /// The selector, for listing the selected pods.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// Whether the recording selects `pod`.
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        namespace == self.namespace && self.selector.matches(labels)
    }
}

/// This node's part of a recording: the calls of the selected pods' containers (only those
/// `spec.containers` names, when it names any), and whether the part is final.
pub fn node_part(
    node: &str,
    spec: &SeccompProfileRecordingSpec,
    selection: &Selection,
    pods: &[PodView],
    tally: &NodeTally,
    lost_records: u64,
) -> NodeRecording {
    let selected: Vec<&PodView> = pods
        .iter()
        .filter(|p| selection.selects(&p.namespace, &p.labels))
        .collect();
    let mut calls = RecordedCalls::default();
    for pod in &selected {
        let wanted = |id: &ContainerId| {
            pod.containers
                .get(id)
                .is_some_and(|name| spec.containers.is_empty() || spec.containers.contains(name))
        };
        calls.merge(&tally.calls_of(&pod.uid, wanted));
    }
    let mut names: Vec<String> = selected.iter().map(|p| p.name.clone()).collect();
    names.sort();
    names.dedup();
    NodeRecording {
        node_name: node.to_string(),
        pods: names,
        calls: to_abi_calls(&calls),
        finished: spec.done || selected.iter().all(|p| p.ended),
        lost_records,
    }
}

/// A selected pod anywhere in the cluster, as the finishing recorder lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedPod {
    /// The node it is bound to, if any.
    pub node: Option<String>,
    /// Whether it has ended.
    pub ended: bool,
}

/// What a recording comes to now.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The status to write (without `nodes`, which each node writes itself).
    pub status: SeccompProfileRecordingStatus,
    /// The profile to write first, when the recording completes now.
    pub profile: Option<ProfileSpec>,
}

/// Decides a recording from every node's part and the selected pods of the whole cluster.
/// `native` is the architecture the profile is written for (the finishing node's).
pub fn outcome(
    spec: &SeccompProfileRecordingSpec,
    parts: &[NodeRecording],
    pods: &[SelectedPod],
    native: Arch,
) -> Outcome {
    let mut calls = RecordedCalls::default();
    for part in parts {
        calls.merge(&from_abi_calls(&part.calls));
    }
    let pods_seen = parts.iter().map(|p| p.pods.len()).sum::<usize>();
    let lost_records = parts.iter().map(|p| p.lost_records).sum();
    let mut status = SeccompProfileRecordingStatus {
        phase: Some(RecordingPhase::Recording),
        pods_seen: u32::try_from(pods_seen).unwrap_or(u32::MAX),
        calls_recorded: u32::try_from(calls.names().len()).unwrap_or(u32::MAX),
        profile: None,
        lost_records,
        message: None,
        nodes: Vec::new(),
    };
    let finished: BTreeSet<&str> = parts
        .iter()
        .filter(|p| p.finished)
        .map(|p| p.node_name.as_str())
        .collect();
    let waiting_nodes: BTreeSet<&str> = parts
        .iter()
        .map(|p| p.node_name.as_str())
        .chain(pods.iter().filter_map(|p| p.node.as_deref()))
        .filter(|n| !finished.contains(n))
        .collect();
    let running = pods.iter().filter(|p| !p.ended).count();
    if !spec.done && (pods_seen == 0 || running > 0) {
        status.message = Some(if pods_seen == 0 {
            format!(
                "waiting for selected pods: they must run with localhostProfile seccompd/{RECORD_PROFILE}.json on nodes with a recorder"
            )
        } else {
            format!("{running} selected pod(s) still running; set spec.done to finish now")
        });
        return Outcome {
            status,
            profile: None,
        };
    }
    if !waiting_nodes.is_empty() {
        status.message = Some(format!(
            "waiting for the recorder of node(s) {} to finish its part",
            waiting_nodes.into_iter().collect::<Vec<_>>().join(", ")
        ));
        return Outcome {
            status,
            profile: None,
        };
    }
    if calls.is_empty() {
        status.phase = Some(RecordingPhase::Failed);
        status.message = Some(format!(
            "no system calls were recorded: the selected pods must use localhostProfile seccompd/{RECORD_PROFILE}.json and run on nodes with a recorder"
        ));
        return Outcome {
            status,
            profile: None,
        };
    }
    status.phase = Some(RecordingPhase::Completed);
    status.profile = Some(spec.profile_name.clone());
    if lost_records > 0 {
        status.message = Some(format!(
            "{lost_records} audit record(s) may have been missed: the profile may lack calls; record again"
        ));
    }
    // What runc's init calls after loading the filter in every run or in some (the recorded
    // pods ran under runc too, but a single run need not show them all).
    for name in RUNC_NEEDS_ALWAYS.iter().chain(TIMING_DEPENDENT_CALLS) {
        calls.insert(native, name);
    }
    Outcome {
        status,
        profile: Some(calls.to_spec(native)),
    }
}

/// Calls as a node part lists them.
pub fn to_abi_calls(calls: &RecordedCalls) -> Vec<AbiCalls> {
    calls
        .by_arch()
        .map(|(arch, names)| AbiCalls {
            arch,
            names: names.iter().cloned().collect(),
        })
        .collect()
}

/// The calls a node part lists.
pub fn from_abi_calls(parts: &[AbiCalls]) -> RecordedCalls {
    let mut out = RecordedCalls::default();
    for abi in parts {
        for name in &abi.names {
            out.insert(abi.arch, name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SeccompProfileRecordingSpec;
    use crate::profile::model::Action;
    use crate::recorder::decide::audit::NamedCall;
    use crate::recorder::decide::cgroup::Attribution;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn spec(containers: &[&str], done: bool) -> SeccompProfileRecordingSpec {
        SeccompProfileRecordingSpec {
            pod_selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("app".to_string(), "ls".to_string())])),
                ..Default::default()
            },
            profile_name: "ls".to_string(),
            containers: containers.iter().map(|c| c.to_string()).collect(),
            done,
        }
    }

    fn pod(uid: &str, app: &str, ended: bool, containers: &[(&str, &str)]) -> PodView {
        PodView {
            uid: PodUid(uid.to_string()),
            name: format!("pod-{uid}"),
            namespace: "default".to_string(),
            labels: BTreeMap::from([("app".to_string(), app.to_string())]),
            ended,
            containers: containers
                .iter()
                .map(|(id, name)| (ContainerId(id.to_string()), name.to_string()))
                .collect(),
        }
    }

    fn tally(entries: &[(&str, &str, &str)]) -> NodeTally {
        let mut t = NodeTally::default();
        for (pod, container, name) in entries {
            let at = Attribution {
                pod: PodUid(pod.to_string()),
                container: ContainerId(container.to_string()),
            };
            let call = NamedCall {
                arch: Arch::X86_64,
                name: name.to_string(),
            };
            t.note(&at, &call);
        }
        t
    }

    fn names(part: &NodeRecording) -> Vec<String> {
        from_abi_calls(&part.calls)
            .names()
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_node_part_holds_the_selected_pods_known_containers() {
        let s = spec(&[], false);
        let sel = Selection::new("default", &s).unwrap();
        let pods = [
            pod("1", "ls", false, &[("c1", "main"), ("c2", "side")]),
            pod("2", "other", false, &[("c3", "main")]),
        ];
        // "sandbox" is the pod's pause container: no status names it.
        let t = tally(&[
            ("1", "c1", "read"),
            ("1", "c2", "write"),
            ("1", "sandbox", "pause"),
            ("2", "c3", "mkdir"),
        ]);
        let part = node_part("node1", &s, &sel, &pods, &t, 0);
        assert_eq!(part.node_name, "node1");
        assert_eq!(part.pods, ["pod-1"]);
        assert_eq!(names(&part), ["read", "write"]);
        assert!(!part.finished);
    }

    #[test]
    fn spec_containers_narrow_a_part_to_those_names() {
        let s = spec(&["main"], false);
        let sel = Selection::new("default", &s).unwrap();
        let pods = [pod("1", "ls", true, &[("c1", "main"), ("c2", "side")])];
        let t = tally(&[("1", "c1", "read"), ("1", "c2", "write")]);
        let part = node_part("n", &s, &sel, &pods, &t, 3);
        assert_eq!(names(&part), ["read"]);
        assert!(part.finished);
        assert_eq!(part.lost_records, 3);
    }

    #[test]
    fn other_namespaces_are_not_selected_and_done_finishes_a_part() {
        let s = spec(&[], true);
        let sel = Selection::new("prod", &s).unwrap();
        let pods = [pod("1", "ls", false, &[("c1", "main")])];
        let part = node_part("n", &s, &sel, &pods, &tally(&[("1", "c1", "read")]), 0);
        assert!(part.pods.is_empty() && part.calls.is_empty());
        assert!(
            part.finished,
            "done finishes a part with pods still running"
        );
    }

    fn part(node: &str, pods: &[&str], calls: &[&str], finished: bool) -> NodeRecording {
        NodeRecording {
            node_name: node.to_string(),
            pods: pods.iter().map(|p| p.to_string()).collect(),
            calls: vec![AbiCalls {
                arch: Arch::X86_64,
                names: calls.iter().map(|c| c.to_string()).collect(),
            }],
            finished,
            lost_records: 0,
        }
    }

    fn selected(node: &str, ended: bool) -> SelectedPod {
        SelectedPod {
            node: Some(node.to_string()),
            ended,
        }
    }

    #[test]
    fn replicas_on_two_nodes_merge_into_one_profile() {
        let parts = [
            part("node1", &["a"], &["read", "write"], true),
            part("node2", &["b"], &["openat", "read"], true),
        ];
        let pods = [selected("node1", true), selected("node2", true)];
        let out = outcome(&spec(&[], false), &parts, &pods, Arch::X86_64);
        assert_eq!(out.status.phase, Some(RecordingPhase::Completed));
        assert_eq!(out.status.profile.as_deref(), Some("ls"));
        assert_eq!((out.status.pods_seen, out.status.calls_recorded), (2, 3));
        assert_eq!(out.status.message, None);
        let profile = out.profile.unwrap();
        assert_eq!(profile.default_action, Action::Errno);
        // The recorded calls, and what runc's init may call in any run.
        assert_eq!(
            profile.syscalls[0].names,
            [
                "close",
                "fstatfs",
                "futex",
                "getdents64",
                "openat",
                "read",
                "restart_syscall",
                "rt_sigreturn",
                "write"
            ]
        );
    }

    #[test]
    fn running_pods_and_unfinished_nodes_keep_it_recording() {
        let s = spec(&[], false);
        let running = outcome(
            &s,
            &[part("node1", &["a"], &["read"], false)],
            &[selected("node1", false)],
            Arch::X86_64,
        );
        assert_eq!(running.status.phase, Some(RecordingPhase::Recording));
        assert!(running.profile.is_none());
        assert!(running.status.message.unwrap().contains("still running"));
        // Every pod ended, but node2's recorder has not written its final part yet.
        let waiting = outcome(
            &s,
            &[part("node1", &["a"], &["read"], true)],
            &[selected("node1", true), selected("node2", true)],
            Arch::X86_64,
        );
        assert_eq!(waiting.status.phase, Some(RecordingPhase::Recording));
        assert!(waiting.status.message.unwrap().contains("node2"));
        // No pod seen yet: an empty cluster list is no reason to finish.
        let nothing = outcome(&s, &[part("node1", &[], &[], true)], &[], Arch::X86_64);
        assert_eq!(nothing.status.phase, Some(RecordingPhase::Recording));
        assert!(nothing.status.message.unwrap().contains("record.json"));
    }

    #[test]
    fn done_finishes_with_pods_running_once_every_part_is_final() {
        let s = spec(&[], true);
        let parts = [part("node1", &["a"], &["read"], true)];
        let out = outcome(&s, &parts, &[selected("node1", false)], Arch::X86_64);
        assert_eq!(out.status.phase, Some(RecordingPhase::Completed));
    }

    #[test]
    fn nothing_recorded_fails_and_losses_are_reported() {
        let out = outcome(
            &spec(&[], false),
            &[part("node1", &["a"], &[], true)],
            &[selected("node1", true)],
            Arch::X86_64,
        );
        assert_eq!(out.status.phase, Some(RecordingPhase::Failed));
        assert!(out.profile.is_none());
        let mut lossy = part("node1", &["a"], &["read"], true);
        lossy.lost_records = 4;
        let out = outcome(
            &spec(&[], false),
            &[lossy],
            &[selected("node1", true)],
            Arch::X86_64,
        );
        assert_eq!(out.status.phase, Some(RecordingPhase::Completed));
        assert_eq!(out.status.lost_records, 4);
        assert!(out.status.message.unwrap().contains("4 audit record"));
    }

    #[test]
    fn a_pod_object_gives_its_containers_by_id_and_whether_it_ended() {
        let id = |c: char| c.to_string().repeat(64);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "ls"}},
            "status": {
                "phase": "Succeeded",
                "containerStatuses": [{
                    "name": "main", "image": "i", "imageID": "", "ready": false,
                    "restartCount": 1, "containerID": format!("containerd://{}", id('a')),
                    "lastState": {"terminated": {"exitCode": 1,
                        "containerID": format!("containerd://{}", id('b'))}}
                }],
                "initContainerStatuses": [{
                    "name": "init", "image": "i", "imageID": "", "ready": false,
                    "restartCount": 0, "containerID": format!("containerd://{}", id('c'))
                }]
            }
        }))
        .unwrap();
        let view = PodView::of(&pod).unwrap();
        assert!(view.ended);
        assert_eq!((view.name.as_str(), view.namespace.as_str()), ("p", "ns"));
        assert_eq!(view.labels["app"], "ls");
        let mut names: Vec<(String, String)> = view
            .containers
            .iter()
            .map(|(k, v)| (k.0[..1].to_string(), v.clone()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ("a".to_string(), "main".to_string()),
                ("b".to_string(), "main".to_string()),
                ("c".to_string(), "init".to_string())
            ]
        );
        let mut running = pod.clone();
        running.status.as_mut().unwrap().phase = Some("Running".to_string());
        assert!(!PodView::of(&running).unwrap().ended);
    }

    #[test]
    fn abi_calls_round_trip() {
        let mut calls = RecordedCalls::default();
        calls.insert(Arch::X86_64, "read");
        calls.insert(Arch::X86, "socketcall");
        assert_eq!(from_abi_calls(&to_abi_calls(&calls)), calls);
    }
}
