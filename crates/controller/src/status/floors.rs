//! A SeccompFloor's status, decided from the node reports: on which nodes every profile file
//! carries the floor's current rules (`Installed n/m`), and for the others which profiles do
//! not and why; and when a floor status write that failed is tried again. Pure; the writer
//! applies a status when it differs from the one the floor has.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use seccompd_api::reason::bounded_reason;
use seccompd_api::{FloorNode, FloorPhase, SeccompFloor, SeccompFloorStatus, SeccompNodeReport};
use seccompd_profile::floor::rules_digest;
use seccompd_profile::limits::MAX_LISTED_NODES;

use super::plan::{RetryDelays, RetryPauses};

/// The status of `floor` from the reports of the nodes that count (`node_names`).
pub fn floor_status(
    floor: &SeccompFloor,
    node_names: &[String],
    reports: &BTreeMap<String, Arc<SeccompNodeReport>>,
) -> SeccompFloorStatus {
    let name = floor.metadata.name.as_deref().unwrap_or_default();
    let digest = rules_digest(&floor.spec.0.rules);
    let mut carried_on = 0usize;
    let mut nodes = Vec::new();
    for node in node_names {
        let (carried, reason, pods) = match reports.get(node) {
            None => (
                false,
                Some("no report from this node's agent yet".to_string()),
                0,
            ),
            Some(r) if !r.spec.synced => (false, Some("the agent has not synced yet".into()), 0),
            Some(r) => match r.spec.floors.iter().find(|f| f.name == name) {
                None => (
                    false,
                    Some("the agent has not merged this floor yet".into()),
                    0,
                ),
                Some(f) if f.digest != digest => (
                    false,
                    Some("the node's files carry an earlier version of the rules".into()),
                    f.pods_started_before,
                ),
                Some(f) if !f.missing.is_empty() || f.missing_omitted > 0 => {
                    let listed: Vec<String> = f
                        .missing
                        .iter()
                        .map(|m| match &m.reason {
                            Some(why) => format!("{} ({why})", m.name),
                            None => m.name.clone(),
                        })
                        .collect();
                    let more = if f.missing_omitted > 0 {
                        format!(" and {} more", f.missing_omitted)
                    } else {
                        String::new()
                    };
                    (
                        false,
                        Some(format!(
                            "profiles whose file does not carry it: {}{more}",
                            listed.join("; ")
                        )),
                        f.pods_started_before,
                    )
                }
                Some(f) => (true, None, f.pods_started_before),
            },
        };
        if carried {
            carried_on += 1;
        }
        if !carried || pods > 0 {
            nodes.push(FloorNode {
                node_name: node.clone(),
                carried,
                reason: reason.map(bounded_reason),
                pods_started_before: pods,
            });
        }
    }
    let omitted = nodes.len().saturating_sub(MAX_LISTED_NODES);
    nodes.truncate(MAX_LISTED_NODES);
    let phase = if carried_on == node_names.len() {
        FloorPhase::Installed
    } else if carried_on > 0 {
        FloorPhase::Partial
    } else {
        FloorPhase::Pending
    };
    SeccompFloorStatus {
        phase: Some(phase),
        installed: Some(format!("{carried_on}/{}", node_names.len())),
        digest: Some(digest),
        observed_generation: floor.metadata.generation,
        nodes,
        omitted_nodes: u32::try_from(omitted).unwrap_or(u32::MAX),
    }
}

/// The floors whose last status write failed, and when each is tried again: after the
/// pauses of the API's backoff, as a profile's status write is (`super::plan`), so that a
/// floor's status does not wait for the next change or the resync to be written. Every pass
/// writes each floor whose status differs anyway; this only makes sure a pass comes.
pub struct FloorRetries {
    /// Per floor whose last write failed: when it is due again.
    due: BTreeMap<String, Instant>,
    /// Per such floor: the pauses before its next attempts.
    pauses: RetryPauses,
}

impl FloorRetries {
    /// Retries that pause as `new_retry` says.
    pub fn new(new_retry: fn() -> RetryDelays) -> Self {
        Self {
            due: BTreeMap::new(),
            pauses: RetryPauses::new(new_retry),
        }
    }

    /// Forgets the floors that no longer exist.
    pub fn retain(&mut self, exists: impl Fn(&str) -> bool) {
        self.due.retain(|name, _| exists(name));
        self.pauses.retain(exists);
    }

    /// Floor `name`'s status is as it should be (written, or found so): no retry.
    pub fn written(&mut self, name: &str) {
        self.due.remove(name);
        self.pauses.forget(name);
    }

    /// Floor `name`'s status write failed at `at`: it is due again after the next pause.
    pub fn failed(&mut self, name: &str, at: Instant) {
        let due = self.pauses.after_failure(name, at);
        self.due.insert(name.to_string(), due);
    }

    /// When the earliest retry is due, if any.
    pub fn wake_at(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::plan::RESYNC;

    use super::*;

    fn floor() -> SeccompFloor {
        serde_json::from_value(json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompFloor",
            "metadata": {"name": "copy-fail", "generation": 2},
            "spec": {"rules": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}]}]},
        }))
        .unwrap()
    }

    fn report(node: &str, floors: serde_json::Value) -> (String, Arc<SeccompNodeReport>) {
        let r: SeccompNodeReport = serde_json::from_value(json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompNodeReport",
            "metadata": {"name": node},
            "spec": {"synced": true, "installed": 2, "floors": floors},
        }))
        .unwrap();
        (node.to_string(), Arc::new(r))
    }

    #[test]
    fn installed_where_every_file_carries_the_current_rules_partial_naming_the_others() {
        let f = floor();
        let digest = rules_digest(&f.spec.0.rules);
        let nodes = vec!["n1".to_string(), "n2".to_string(), "n3".to_string()];
        let reports = BTreeMap::from([
            report(
                "n1",
                json!([{"name": "copy-fail", "digest": digest, "carried": 3, "podsStartedBefore": 2}]),
            ),
            report(
                "n2",
                json!([{"name": "copy-fail", "digest": digest, "carried": 2,
                    "missing": [{"name": "big", "state": "Invalid", "reason": "4200 instructions"}]}]),
            ),
        ]);
        let status = floor_status(&f, &nodes, &reports);
        assert_eq!(status.phase, Some(FloorPhase::Partial));
        assert_eq!(status.installed.as_deref(), Some("1/3"));
        assert_eq!(status.observed_generation, Some(2));
        let by_node: Vec<(&str, bool, u32)> = status
            .nodes
            .iter()
            .map(|n| (n.node_name.as_str(), n.carried, n.pods_started_before))
            .collect();
        // n1 carries it but still runs two pods started before it arrived.
        assert_eq!(
            by_node,
            [("n1", true, 2), ("n2", false, 0), ("n3", false, 0)]
        );
        assert!(
            status.nodes[1]
                .reason
                .as_deref()
                .unwrap()
                .contains("big (4200 instructions)")
        );

        let all = BTreeMap::from([
            report(
                "n1",
                json!([{"name": "copy-fail", "digest": digest, "carried": 3}]),
            ),
            report(
                "n2",
                json!([{"name": "copy-fail", "digest": digest, "carried": 3}]),
            ),
        ]);
        let status = floor_status(&f, &nodes[..2], &all);
        assert_eq!(
            (
                status.phase,
                status.installed.as_deref(),
                status.nodes.len()
            ),
            (Some(FloorPhase::Installed), Some("2/2"), 0)
        );
    }

    #[test]
    fn an_earlier_version_of_the_rules_is_not_the_floor() {
        let f = floor();
        let old = seccompd_profile::render::ContentHash::of(b"older rules");
        let reports = BTreeMap::from([report(
            "n1",
            json!([{"name": "copy-fail", "digest": old, "carried": 3}]),
        )]);
        let status = floor_status(&f, &["n1".to_string()], &reports);
        assert_eq!(status.phase, Some(FloorPhase::Pending));
        assert!(
            status.nodes[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("earlier version")
        );
    }

    /// Pauses of 1, 2 and 4 s, then none.
    fn pauses() -> RetryDelays {
        Box::new([1, 2, 4].into_iter().map(std::time::Duration::from_secs))
    }

    #[test]
    fn a_failed_floor_status_write_is_retried_after_each_pause_until_written() {
        use std::time::Duration;
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut retries = FloorRetries::new(pauses);
        assert_eq!(retries.wake_at(), None, "nothing failed");
        retries.failed("copy-fail", t0);
        assert_eq!(retries.wake_at(), Some(t0 + s(1)));
        // Each further failure pauses longer; another floor has its own pauses.
        retries.failed("copy-fail", t0 + s(1));
        retries.failed("vsock", t0 + s(2));
        assert_eq!(retries.wake_at(), Some(t0 + s(3)));
        retries.written("vsock");
        retries.failed("copy-fail", t0 + s(3));
        assert_eq!(retries.wake_at(), Some(t0 + s(7)));
        // The pauses ran out: the resync keeps trying.
        retries.failed("copy-fail", t0 + s(7));
        assert_eq!(retries.wake_at(), Some(t0 + s(7) + RESYNC));
        // Written: the next failure starts from the first pause again.
        retries.written("copy-fail");
        assert_eq!(retries.wake_at(), None);
        retries.failed("copy-fail", t0 + s(10));
        assert_eq!(retries.wake_at(), Some(t0 + s(11)));
        // A deleted floor is not retried.
        retries.retain(|name| name != "copy-fail");
        assert_eq!(retries.wake_at(), None);
    }
}
