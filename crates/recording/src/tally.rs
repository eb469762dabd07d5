//! The calls seen on one node, per container, and what may have been missed. No I/O.

use std::collections::HashMap;

use super::audit::NamedCall;
use super::cgroup::{Attribution, ContainerId, PodUid};
use seccompd_profile::recording::RecordedCalls;

/// Every call the node's recorder has attributed, by container, and its losses, since it
/// started.
#[derive(Debug, Default)]
pub struct NodeTally {
    by_container: HashMap<Attribution, RecordedCalls>,
    /// Records of processes that had ended before their cgroup could be read.
    unmapped: u64,
    /// Times the socket's buffer overflowed (each drops an unknown number of records).
    overflows: u64,
}

impl NodeTally {
    /// Notes a call of a container's process.
    pub fn note(&mut self, at: &Attribution, call: &NamedCall) {
        self.by_container
            .entry(at.clone())
            .or_default()
            .insert(call.arch, &call.name);
    }

    /// Notes a record whose process could not be attributed.
    pub fn note_unmapped(&mut self) {
        self.unmapped += 1;
    }

    /// Notes that the socket's buffer overflowed.
    pub fn note_overflow(&mut self) {
        self.overflows += 1;
    }

    /// What this node may have missed so far, kernel losses aside: unattributed records and
    /// buffer overflows.
    pub fn losses(&self) -> u64 {
        self.unmapped + self.overflows
    }

    /// Records of processes that had ended before their cgroup could be read.
    pub fn unmapped(&self) -> u64 {
        self.unmapped
    }

    /// Times the socket's buffer overflowed.
    pub fn overflows(&self) -> u64 {
        self.overflows
    }

    /// The calls of pod `pod`'s containers that `keep` accepts.
    pub fn calls_of(&self, pod: &PodUid, keep: impl Fn(&ContainerId) -> bool) -> RecordedCalls {
        let mut out = RecordedCalls::default();
        for (at, calls) in &self.by_container {
            if &at.pod == pod && keep(&at.container) {
                out.merge(calls);
            }
        }
        out
    }

    /// Forgets a pod's calls (once no recording can want them any more).
    pub fn forget(&mut self, pod: &PodUid) {
        self.by_container.retain(|at, _| &at.pod != pod);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccompd_profile::model::Arch;

    fn at(pod: &str, container: &str) -> Attribution {
        Attribution {
            pod: PodUid(pod.to_string()),
            container: ContainerId(container.to_string()),
        }
    }

    fn call(name: &str) -> NamedCall {
        NamedCall {
            arch: Arch::X86_64,
            name: name.to_string(),
        }
    }

    #[test]
    fn calls_are_kept_per_container_and_selected_by_pod_and_container() {
        let mut tally = NodeTally::default();
        tally.note(&at("p1", "a"), &call("read"));
        tally.note(&at("p1", "b"), &call("write"));
        tally.note(&at("p2", "a"), &call("mkdir"));
        let p1 = PodUid("p1".to_string());
        let all = tally.calls_of(&p1, |_| true);
        assert_eq!(
            all.names().into_iter().collect::<Vec<_>>(),
            ["read", "write"]
        );
        let only_a = tally.calls_of(&p1, |c| c.0 == "a");
        assert_eq!(only_a.names().into_iter().collect::<Vec<_>>(), ["read"]);
        tally.forget(&p1);
        assert!(tally.calls_of(&p1, |_| true).is_empty());
        assert!(
            !tally
                .calls_of(&PodUid("p2".to_string()), |_| true)
                .is_empty()
        );
    }

    #[test]
    fn losses_count_unmapped_records_and_overflows() {
        let mut tally = NodeTally::default();
        assert_eq!(tally.losses(), 0);
        tally.note_unmapped();
        tally.note_unmapped();
        tally.note_overflow();
        assert_eq!(tally.losses(), 3);
    }
}
