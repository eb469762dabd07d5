//! What a node contributes to a recording: its part, written into the recording's status by
//! that node's recorder alone (`status.nodes`, one entry per node, each owned by its node's
//! recorder through server-side apply). The controller decides the recording from all the
//! parts (the controller crate's `recordings`). No I/O.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    Container, Pod, PodSecurityContext, PodSpec, PodStatus, SecurityContext,
};
use kube::core::{Selector, SelectorExt};

use super::cgroup::{ContainerId, PodUid};
use super::tally::NodeTally;
use seccompd_api::reason::bounded_reason;
use seccompd_api::{AbiCalls, NodeRecording, SeccompProfileRecordingSpec};
use seccompd_profile::model::Arch;
use seccompd_profile::recording::RecordedCalls;

/// A recorder's pass over its caches, counted from its start: the order in which it saw
/// things happen (a pod go, a recording appear), free of clocks and their skew.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pass(pub u64);

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
    /// The recorder's pass in which it saw the pod deleted; `None` while it exists.
    pub gone_at: Option<Pass>,
    /// The SeccompProfile each container runs under, by container name, for containers under
    /// a seccompd profile (see [`crate::denials::seccompd_profiles`]).
    pub profiles: BTreeMap<String, String>,
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
            gone_at: None,
            profiles: crate::denials::seccompd_profiles(pod),
        })
    }
}

/// Keeps of a pod what [`PodView::of`] and a recording's selector read: names, labels, node,
/// seccomp profiles, phase and container statuses (for the caches of pods the recorders and
/// the controller keep).
pub fn trim_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.metadata.annotations = None;
    pod.metadata.owner_references = None;
    pod.spec = pod.spec.take().map(|s| PodSpec {
        node_name: s.node_name,
        security_context: s.security_context.map(|c| PodSecurityContext {
            seccomp_profile: c.seccomp_profile,
            ..Default::default()
        }),
        containers: trim_containers(s.containers),
        init_containers: s.init_containers.map(trim_containers),
        ..Default::default()
    });
    pod.status = pod.status.take().map(|s| PodStatus {
        phase: s.phase,
        container_statuses: s.container_statuses,
        init_container_statuses: s.init_container_statuses,
        ephemeral_container_statuses: s.ephemeral_container_statuses,
        ..Default::default()
    });
}

/// Keeps of containers their names and seccomp profiles (which denials are counted under).
fn trim_containers(containers: Vec<Container>) -> Vec<Container> {
    containers
        .into_iter()
        .map(|c| Container {
            name: c.name,
            security_context: c.security_context.map(|s| SecurityContext {
                seccomp_profile: s.seccomp_profile,
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
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

/// This node as its recorder sees it.
#[derive(Clone, Copy, Debug)]
pub struct NodeView<'a> {
    /// The node's name.
    pub node: &'a str,
    /// Its native ABI.
    pub arch: Arch,
    /// Every pod of the node the recorder remembers (deleted ones too, for a while).
    pub pods: &'a [PodView],
    /// The calls attributed so far.
    pub tally: &'a NodeTally,
    /// Why the recorder cannot hear the kernel's audit records, if it cannot.
    pub audit_unavailable: Option<&'a str>,
}

/// One recording as a node's recorder sees it.
#[derive(Clone, Copy, Debug)]
pub struct RecordingView<'a> {
    /// Its spec.
    pub spec: &'a SeccompProfileRecordingSpec,
    /// Its selector, checked.
    pub selection: &'a Selection,
    /// The pass in which this recorder first saw it.
    pub first_seen: Option<Pass>,
    /// The part this node wrote for it before (by an earlier run of the recorder, which may
    /// have seen calls this one never will).
    pub carried: Option<&'a NodeRecording>,
}

/// This node's part of a recording: the calls of the selected pods' containers (only those
/// `spec.containers` names, when it names any), and whether the part is final. A pod deleted
/// before this recorder first saw the recording (or in the same pass) is not part of it,
/// whatever its labels: a recording recreated under the same name starts from nothing. `None` when the node has nothing to
/// say: no selected pod, and no part written before.
pub fn node_part(
    node: &NodeView<'_>,
    rec: &RecordingView<'_>,
    lost_records: u64,
) -> Option<NodeRecording> {
    let selected: Vec<&PodView> = node
        .pods
        .iter()
        .filter(|p| rec.selection.selects(&p.namespace, &p.labels))
        .filter(|p| match (p.gone_at, rec.first_seen) {
            (Some(gone), Some(first_seen)) => gone > first_seen,
            _ => true,
        })
        .collect();
    if selected.is_empty() && rec.carried.is_none() {
        return None;
    }
    let mut calls = rec
        .carried
        .map(|c| from_abi_calls(&c.calls))
        .unwrap_or_default();
    let mut names: Vec<String> = rec.carried.map(|c| c.pods.clone()).unwrap_or_default();
    if node.audit_unavailable.is_none() {
        for pod in &selected {
            let wanted = |id: &ContainerId| {
                pod.containers.get(id).is_some_and(|name| {
                    rec.spec.containers.is_empty() || rec.spec.containers.contains(name)
                })
            };
            calls.merge(&node.tally.calls_of(&pod.uid, wanted));
        }
    }
    names.extend(selected.iter().map(|p| p.name.clone()));
    names.sort();
    names.dedup();
    Some(NodeRecording {
        node_name: node.node.to_string(),
        pods: names,
        calls: to_abi_calls(&calls),
        finished: rec.spec.done || selected.iter().all(|p| p.ended),
        lost_records: lost_records.max(rec.carried.map_or(0, |c| c.lost_records)),
        arch: Some(node.arch),
        audit_unavailable: node
            .audit_unavailable
            .map(|r| bounded_reason(r.to_string())),
    })
}

/// Whether `part` is worth an API write after `previous` (the part last written): any change
/// but the loss count is; a loss count alone only once the part is final. Losses grow with
/// every short-lived process the recorder could not attribute, so writing each would make a
/// recording's requests grow with its duration; the final part carries the exact count.
pub fn worth_writing(previous: Option<&NodeRecording>, part: &NodeRecording) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    if previous == part {
        return false;
    }
    let same_but_losses = NodeRecording {
        lost_records: part.lost_records,
        ..previous.clone()
    } == *part;
    !same_but_losses || part.finished
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
    use crate::audit::NamedCall;
    use crate::cgroup::Attribution;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use seccompd_profile::limits::MAX_REASON_LEN;

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
            gone_at: None,
            profiles: BTreeMap::new(),
        }
    }

    /// node1 (x86_64, hearing audit records) with `pods` and `tally`.
    fn node<'a>(pods: &'a [PodView], tally: &'a NodeTally) -> NodeView<'a> {
        NodeView {
            node: "node1",
            arch: Arch::X86_64,
            pods,
            tally,
            audit_unavailable: None,
        }
    }

    /// A recording of `spec` in namespace default, first seen in pass `first_seen`.
    fn part_of(
        node: &NodeView<'_>,
        spec: &SeccompProfileRecordingSpec,
        first_seen: Option<Pass>,
        carried: Option<&NodeRecording>,
        lost: u64,
    ) -> Option<NodeRecording> {
        let selection = Selection::new("default", spec).unwrap();
        let rec = RecordingView {
            spec,
            selection: &selection,
            first_seen,
            carried,
        };
        node_part(node, &rec, lost)
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
        let part = part_of(&node(&pods, &t), &spec(&[], false), None, None, 0).unwrap();
        assert_eq!(part.node_name, "node1");
        assert_eq!(part.pods, ["pod-1"]);
        assert_eq!(names(&part), ["read", "write"]);
        assert_eq!(part.arch, Some(Arch::X86_64));
        assert!(!part.finished);
    }

    #[test]
    fn spec_containers_narrow_a_part_to_those_names() {
        let pods = [pod("1", "ls", true, &[("c1", "main"), ("c2", "side")])];
        let t = tally(&[("1", "c1", "read"), ("1", "c2", "write")]);
        let part = part_of(&node(&pods, &t), &spec(&["main"], false), None, None, 3).unwrap();
        assert_eq!(names(&part), ["read"]);
        assert!(part.finished);
        assert_eq!(part.lost_records, 3);
    }

    #[test]
    fn a_node_without_selected_pods_has_nothing_to_say() {
        let pods = [pod("1", "ls", false, &[("c1", "main")])];
        let t = tally(&[("1", "c1", "read")]);
        let selection = Selection::new("prod", &spec(&[], true)).unwrap();
        let s = spec(&[], true);
        let rec = RecordingView {
            spec: &s,
            selection: &selection,
            first_seen: None,
            carried: None,
        };
        assert_eq!(node_part(&node(&pods, &t), &rec, 0), None);
    }

    #[test]
    fn done_finishes_a_part_with_pods_still_running() {
        let pods = [pod("1", "ls", false, &[("c1", "main")])];
        let t = tally(&[("1", "c1", "read")]);
        let part = part_of(&node(&pods, &t), &spec(&[], true), None, None, 0).unwrap();
        assert!(part.finished);
    }

    /// The same name again: recording R selected a pod of namespace default on this node, the
    /// namespace went (and the pod with it), and R was created anew. The old pod, which this
    /// recorder still remembers, is not part of the new R.
    #[test]
    fn a_pod_gone_before_the_recording_was_first_seen_is_not_part_of_it() {
        let mut old = pod("old", "ls", true, &[("c1", "main")]);
        let t = tally(&[("old", "c1", "mkdir")]);
        let s = spec(&[], false);
        for gone in [3, 5] {
            old.gone_at = Some(Pass(gone));
            let pods = [old.clone()];
            assert_eq!(
                part_of(&node(&pods, &t), &s, Some(Pass(5)), None, 0),
                None,
                "gone in pass {gone}, the recording first seen in pass 5"
            );
        }
        // Gone after the recording was first seen: it ran for it, its calls count.
        old.gone_at = Some(Pass(6));
        let pods = [old];
        let part = part_of(&node(&pods, &t), &s, Some(Pass(5)), None, 0).unwrap();
        assert_eq!(names(&part), ["mkdir"]);
    }

    #[test]
    fn a_restarted_recorder_keeps_what_its_node_wrote_before() {
        let carried = NodeRecording {
            node_name: "node1".to_string(),
            pods: vec!["pod-0".to_string()],
            calls: to_abi_calls(&{
                let mut c = RecordedCalls::default();
                c.insert(Arch::X86_64, "openat");
                c
            }),
            finished: false,
            lost_records: 7,
            arch: Some(Arch::X86_64),
            audit_unavailable: None,
        };
        let pods = [pod("1", "ls", true, &[("c1", "main")])];
        let t = tally(&[("1", "c1", "read")]);
        let part = part_of(&node(&pods, &t), &spec(&[], false), None, Some(&carried), 2).unwrap();
        assert_eq!(names(&part), ["openat", "read"]);
        assert_eq!(part.pods, ["pod-0", "pod-1"]);
        assert_eq!(part.lost_records, 7);
    }

    #[test]
    fn losses_alone_are_written_only_with_the_final_part() {
        let pods = [pod("1", "ls", false, &[("c1", "main")])];
        let t = tally(&[("1", "c1", "read")]);
        let s = spec(&[], false);
        let first = part_of(&node(&pods, &t), &s, None, None, 0).unwrap();
        assert!(worth_writing(None, &first));
        assert!(!worth_writing(Some(&first), &first));
        let lossy = part_of(&node(&pods, &t), &s, None, None, 5).unwrap();
        assert!(!worth_writing(Some(&first), &lossy), "only the count moved");
        let t2 = tally(&[("1", "c1", "read"), ("1", "c1", "write")]);
        let more = part_of(&node(&pods, &t2), &s, None, None, 5).unwrap();
        assert!(worth_writing(Some(&first), &more), "a new call");
        let ended = [pod("1", "ls", true, &[("c1", "main")])];
        let last = part_of(&node(&ended, &t), &s, None, None, 9).unwrap();
        assert!(worth_writing(Some(&first), &last), "the final part");
        let mut final_lossier = last.clone();
        final_lossier.lost_records = 12;
        assert!(worth_writing(Some(&last), &final_lossier), "final: exact");
    }

    #[test]
    fn a_node_that_cannot_hear_audit_records_says_so_and_lists_no_calls() {
        let pods = [pod("1", "ls", true, &[("c1", "main")])];
        let t = tally(&[("1", "c1", "read")]);
        let long = "x".repeat(MAX_REASON_LEN * 2);
        let mut deaf = node(&pods, &t);
        deaf.audit_unavailable = Some(&long);
        let part = part_of(&deaf, &spec(&[], false), None, None, 0).unwrap();
        assert!(part.calls.is_empty());
        assert_eq!(part.pods, ["pod-1"]);
        let reason = part.audit_unavailable.unwrap();
        assert_eq!(reason.chars().count(), MAX_REASON_LEN);
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
