//! The pure parts of the scale bench's floor phase (`cargo bench --bench scale -- --floor`,
//! issue 21): the floor it applies, the file it must produce, when the floor's status says it
//! is everywhere, and the figures of one floor change.

use std::time::Duration;

use anyhow::Context as _;
use kube::api::ObjectMeta;
use seccompd_api::{FloorPhase, SeccompFloor, SeccompFloorSpec};
use seccompd_profile::floor::{Floor, FloorSpec, resolve_with_floors};
use seccompd_profile::model::ProfileSpec;
use seccompd_profile::render::{ContentHash, render};
use serde_json::json;

use crate::apimetrics::Scrape;

/// The bench's floor (labelled with the run, so that clean-up finds it).
pub const FLOOR_NAME: &str = "scale-bench-copy-fail";

/// AF_ALG, the socket family of the Copy Fail bug (CVE-2026-31431).
const AF_ALG: u64 = 38;

/// The Copy Fail floor: `socket(AF_ALG, ...)` fails with EPERM.
pub fn copy_fail() -> anyhow::Result<FloorSpec> {
    serde_json::from_value(json!({
        "rules": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
            "args": [{"index": 0, "value": AF_ALG, "op": "SCMP_CMP_EQ"}]}],
    }))
    .context("the bench's floor spec is invalid")
}

/// The bytes every node's file of profile `spec` (with no bases) must hold while `floor` is
/// merged into it.
pub fn floored_bytes(spec: &ProfileSpec, floor: &FloorSpec) -> anyhow::Result<Vec<u8>> {
    let floors = [Floor {
        name: FLOOR_NAME,
        spec: floor,
    }];
    let merged = resolve_with_floors("scale-bench", spec, |_| None, &floors)
        .context("merging the floor into the bench's profile")?;
    Ok(render(&merged.profile).bytes.to_vec())
}

/// The bench's SeccompFloor object, labelled `label`.
pub fn floor_object(spec: &FloorSpec, label: (&str, &str)) -> SeccompFloor {
    SeccompFloor {
        metadata: ObjectMeta {
            name: Some(FLOOR_NAME.into()),
            labels: Some([(label.0.to_string(), label.1.to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: SeccompFloorSpec(spec.clone()),
        status: None,
    }
}

/// Whether `floor` (as a watch last saw it) says its current rules (`digest`) are on every
/// one of `total` nodes, for its current generation.
pub fn floor_installed(floor: Option<&SeccompFloor>, total: usize, digest: &ContentHash) -> bool {
    let Some(floor) = floor else { return false };
    let Some(status) = &floor.status else {
        return false;
    };
    let all = format!("{total}/{total}");
    status.phase == Some(FloorPhase::Installed)
        && status.installed.as_deref() == Some(all.as_str())
        && status.digest.as_ref() == Some(digest)
        && status.observed_generation.is_some()
        && status.observed_generation == floor.metadata.generation
}

/// What one floor change (its creation or its deletion) measured.
#[derive(Default)]
pub struct FloorChange {
    /// From the call's return until every profile file on every simulated node was right.
    pub files: Duration,
    /// From the create call's return until the floor's status said `Installed n/n` (the
    /// deletion has no status to wait for).
    pub installed: Option<Duration>,
    /// The API server's counters from the quiet point before the change to the one after.
    pub traffic: Scrape,
    /// The sync passes each simulated agent made in that window.
    pub passes: Vec<f64>,
}

impl FloorChange {
    /// `verb` requests to seccompd.dev's `resource` (with `subresource`, "" for none).
    pub fn requests(&self, verb: &str, resource: &str, subresource: &str) -> f64 {
        self.traffic
            .requests
            .iter()
            .filter(|((v, r), _)| {
                v == verb
                    && r.is_seccompd()
                    && r.resource == resource
                    && r.subresource == subresource
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Report applies per node (every agent, simulated or real, applies its own report).
    pub fn report_applies_per_node(&self, total_nodes: usize) -> f64 {
        self.requests("APPLY", "seccompnodereports", "") / total_nodes.max(1) as f64 + 0.0
    }

    /// The largest number of passes one simulated agent made (0 without agents).
    pub fn passes_max(&self) -> f64 {
        self.passes.iter().copied().fold(0.0, f64::max)
    }

    /// The mean number of passes a simulated agent made.
    pub fn passes_mean(&self) -> f64 {
        if self.passes.is_empty() {
            0.0
        } else {
            self.passes.iter().sum::<f64>() / self.passes.len() as f64
        }
    }
}

/// Each agent's passes between two reads of every agent's counter; an agent whose counter
/// could not be read either time is left out.
pub fn passes_since(before: &[Option<f64>], after: &[Option<f64>]) -> Vec<f64> {
    before
        .iter()
        .zip(after)
        .filter_map(|(b, a)| Some(a.as_ref()? - b.as_ref()?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apimetrics::Resource;
    use seccompd_api::SeccompFloorStatus;
    use seccompd_profile::floor::rules_digest;

    #[test]
    fn the_floored_file_denies_af_alg_and_keeps_the_profiles_allows() {
        let profile: ProfileSpec = serde_json::from_value(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["openat", "socket"]}],
        }))
        .unwrap();
        let floored = floored_bytes(&profile, &copy_fail().unwrap()).unwrap();
        let text = String::from_utf8(floored).unwrap();
        // The floor's rule is there, on the low 32 bits of the family.
        assert!(text.contains("\"valueTwo\": 38"), "{text}");
        assert!(text.contains("\"errnoRet\": 1"), "{text}");
        // The profile's own allows are still there.
        assert!(text.contains("\"openat\""), "{text}");
    }

    fn floor(generation: i64, status: Option<SeccompFloorStatus>) -> SeccompFloor {
        let mut f = floor_object(&copy_fail().unwrap(), ("run", "1"));
        f.metadata.generation = Some(generation);
        f.status = status;
        f
    }

    #[test]
    fn the_floor_is_installed_only_on_every_node_with_its_current_rules_and_generation() {
        let digest = rules_digest(&copy_fail().unwrap().rules);
        let status = |phase, installed: &str, digest: &ContentHash, generation| {
            Some(SeccompFloorStatus {
                phase: Some(phase),
                installed: Some(installed.into()),
                digest: Some(digest.clone()),
                observed_generation: Some(generation),
                ..SeccompFloorStatus::default()
            })
        };
        let done = floor(1, status(FloorPhase::Installed, "7/7", &digest, 1));
        assert!(floor_installed(Some(&done), 7, &digest));
        let other = ContentHash::of(b"earlier rules");
        for not_yet in [
            floor(1, status(FloorPhase::Partial, "6/7", &digest, 1)),
            floor(1, status(FloorPhase::Installed, "5/5", &digest, 1)),
            floor(1, status(FloorPhase::Installed, "7/7", &other, 1)),
            floor(2, status(FloorPhase::Installed, "7/7", &digest, 1)),
            floor(1, None),
        ] {
            assert!(
                !floor_installed(Some(&not_yet), 7, &digest),
                "{:?}",
                not_yet.status
            );
        }
        assert!(!floor_installed(None, 7, &digest));
    }

    #[test]
    fn report_applies_are_counted_per_node_from_the_api_servers_counters() {
        let resource = |resource: &str, subresource: &str| Resource {
            group: "seccompd.dev".into(),
            resource: resource.into(),
            subresource: subresource.into(),
        };
        let mut change = FloorChange::default();
        change
            .traffic
            .requests
            .insert(("APPLY".into(), resource("seccompnodereports", "")), 204.0);
        change.traffic.requests.insert(
            ("APPLY".into(), resource("seccompprofiles", "status")),
            1000.0,
        );
        change
            .traffic
            .requests
            .insert(("GET".into(), resource("seccompnodereports", "")), 5.0);
        assert_eq!(change.report_applies_per_node(102), 2.0);
        assert_eq!(
            change.requests("APPLY", "seccompprofiles", "status"),
            1000.0
        );
        assert_eq!(change.report_applies_per_node(0), 204.0);
    }

    #[test]
    fn passes_are_per_agent_and_an_unread_counter_leaves_that_agent_out() {
        let passes = passes_since(
            &[Some(10.0), Some(4.0), None, Some(1.0)],
            &[Some(11.0), Some(6.0), Some(3.0), None],
        );
        assert_eq!(passes, [1.0, 2.0]);
        let change = FloorChange {
            passes,
            ..FloorChange::default()
        };
        assert_eq!((change.passes_mean(), change.passes_max()), (1.5, 2.0));
        assert_eq!(FloorChange::default().passes_max(), 0.0);
    }
}
