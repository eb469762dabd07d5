//! What this node says of each SeccompFloor: the digest of the rules it merged, how many of
//! its profile files carry them, and the profiles whose file does not, with why. Decided from
//! the same outcomes as the profiles' reports, so a floor is carried exactly where a file was
//! written with it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use super::plan::DesiredProfile;
use super::report::bounded_exceptions;
use seccompd_api::reason::bounded_floor_reason;
use seccompd_api::{LargestFilter, NodeFloorReport, NodeProfileState, ProfileReport};
use seccompd_profile::floor::FloorStamp;
use seccompd_profile::limits::{MAX_BPF_INSTRUCTIONS, MAX_NAMED_ENTRIES, MAX_REPORT_FLOORS};

/// One report per floor in `floors` (the first [`MAX_REPORT_FLOORS`] by name), from the
/// desired state of every profile this node installs (built-in ones included) and the outcome
/// of each. A profile carries a floor when the floor applies to it and its file is installed
/// as rendered with the floor's current rules.
pub fn floor_reports(
    floors: &[FloorStamp],
    desired: &BTreeMap<String, DesiredProfile>,
    outcomes: &[ProfileReport],
) -> Vec<NodeFloorReport> {
    let outcome: BTreeMap<&str, &ProfileReport> =
        outcomes.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut floors: Vec<&FloorStamp> = floors.iter().collect();
    floors.sort();
    floors.dedup_by(|a, b| a.name == b.name);
    floors
        .into_iter()
        .take(MAX_REPORT_FLOORS)
        .map(|floor| {
            let mut carried = 0u32;
            let mut missing = Vec::new();
            for (name, want) in desired {
                if !want.floors.iter().any(|s| s.name == floor.name) {
                    // Exempted.
                    continue;
                }
                match outcome.get(name.as_str()) {
                    Some(r) if r.state == NodeProfileState::Installed => {
                        carried = carried.saturating_add(1);
                    }
                    Some(r) => missing.push((*r).clone()),
                    None => {}
                }
            }
            let (mut missing, mut omitted) = bounded_exceptions(missing);
            if missing.len() > MAX_NAMED_ENTRIES {
                omitted += missing.len() - MAX_NAMED_ENTRIES;
                missing.truncate(MAX_NAMED_ENTRIES);
            }
            for m in &mut missing {
                m.reason = m.reason.take().map(bounded_floor_reason);
            }
            NodeFloorReport {
                name: floor.name.clone(),
                digest: floor.digest.clone(),
                carried,
                missing,
                missing_omitted: u32::try_from(omitted).unwrap_or(u32::MAX),
                pods_started_before: 0,
            }
        })
        .collect()
}

/// The installed profile (built-in ones included) whose compiled filter is the longest, with
/// its length against the kernel's limit: the node's least headroom.
pub fn largest_filter(
    desired: &BTreeMap<String, DesiredProfile>,
    outcomes: &[ProfileReport],
) -> Option<LargestFilter> {
    let installed: BTreeSet<&str> = outcomes
        .iter()
        .filter(|r| r.state == NodeProfileState::Installed)
        .map(|r| r.name.as_str())
        .collect();
    desired
        .iter()
        .filter(|(name, _)| installed.contains(name.as_str()))
        .filter_map(|(name, want)| Some((want.instructions?, name)))
        .max_by_key(|(instructions, _)| *instructions)
        .map(|(instructions, name)| LargestFilter {
            profile: name.clone(),
            instructions: u32::try_from(instructions).unwrap_or(u32::MAX),
            limit: u32::try_from(MAX_BPF_INSTRUCTIONS).unwrap_or(u32::MAX),
        })
}

/// A running pod on this node that uses seccompd profiles: which, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodStart {
    /// The profiles it references.
    pub profiles: BTreeSet<String>,
    /// Its `status.startTime` (before any of its containers was created); `None`: unknown.
    pub started: Option<SystemTime>,
}

/// How many of `pods` may run without `report`'s floor: a pod counts when a profile it uses
/// that the floor applies to (`exempts` says which it does not) has no file carrying the
/// floor, or a file last written (`written`) no earlier than the pod started. A file is only
/// written when its bytes change, so a container created after the write read the floor; one
/// created before kept the filter it started with. Counted generously: a later write for
/// another reason makes earlier pods count too, and an unknown time counts.
pub fn pods_started_before(
    report: &NodeFloorReport,
    exempts: impl Fn(&str) -> bool,
    pods: &[PodStart],
    written: &BTreeMap<String, SystemTime>,
) -> u32 {
    let lacks = |profile: &str, started: Option<SystemTime>| {
        report.missing.iter().any(|m| m.name == profile)
            || match (written.get(profile), started) {
                (Some(at), Some(started)) => started <= *at,
                _ => true,
            }
    };
    let count = pods
        .iter()
        .filter(|pod| {
            pod.profiles
                .iter()
                .any(|p| !exempts(p) && lacks(p, pod.started))
        })
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::plan::Target;
    use seccompd_profile::render::{ContentHash, Rendered};

    fn stamp(name: &str) -> FloorStamp {
        FloorStamp {
            name: name.into(),
            digest: ContentHash::of(name.as_bytes()),
        }
    }

    fn want(floors: &[&str], target: Target) -> DesiredProfile {
        DesiredProfile {
            generation: Some(1),
            floors: floors.iter().map(|f| stamp(f)).collect(),
            instructions: None,
            target,
        }
    }

    fn outcome(name: &str, state: NodeProfileState) -> ProfileReport {
        ProfileReport {
            name: name.into(),
            state,
            generation: Some(1),
            content_hash: None,
            reason: (state != NodeProfileState::Installed).then(|| format!("{name} failed")),
        }
    }

    #[test]
    fn a_floor_counts_the_files_that_carry_it_and_names_those_that_do_not() {
        let install = || {
            Target::Install(Rendered {
                bytes: b"{}"[..].into(),
                hash: ContentHash::of(b"{}"),
            })
        };
        let desired = BTreeMap::from([
            ("a".to_string(), want(&["copy-fail"], install())),
            ("b".to_string(), want(&["copy-fail"], install())),
            ("exempt".to_string(), want(&[], install())),
            (
                "too-big".to_string(),
                want(
                    &["copy-fail"],
                    Target::Invalid("too many instructions".into()),
                ),
            ),
        ]);
        let outcomes = [
            outcome("a", NodeProfileState::Installed),
            outcome("b", NodeProfileState::Error),
            outcome("exempt", NodeProfileState::Installed),
            outcome("too-big", NodeProfileState::Invalid),
        ];
        let reports = floor_reports(&[stamp("copy-fail")], &desired, &outcomes);
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!(
            (r.name.as_str(), &r.digest),
            ("copy-fail", &stamp("copy-fail").digest)
        );
        assert_eq!(r.carried, 1);
        let missing: Vec<&str> = r.missing.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(missing, ["b", "too-big"]);
        assert_eq!(r.missing[1].reason.as_deref(), Some("too-big failed"));
    }

    #[test]
    fn the_largest_filter_is_the_longest_installed_one() {
        let sized = |instructions: usize| DesiredProfile {
            instructions: Some(instructions),
            ..want(&[], Target::Invalid("unused".into()))
        };
        let desired = BTreeMap::from([
            ("a".to_string(), sized(100)),
            ("b".to_string(), sized(500)),
            ("c".to_string(), sized(300)),
        ]);
        let outcomes = [
            outcome("a", NodeProfileState::Installed),
            outcome("b", NodeProfileState::Error),
            outcome("c", NodeProfileState::Installed),
        ];
        assert_eq!(
            largest_filter(&desired, &outcomes),
            Some(LargestFilter {
                profile: "c".into(),
                instructions: 300,
                limit: 4096,
            })
        );
        assert_eq!(largest_filter(&desired, &[]), None);
    }

    #[test]
    fn pods_that_started_before_their_file_carried_the_floor_are_counted() {
        use std::time::Duration;
        let t = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let report = NodeFloorReport {
            name: "copy-fail".into(),
            digest: ContentHash::of(b"rules"),
            carried: 2,
            missing: vec![outcome("too-big", NodeProfileState::Invalid)],
            missing_omitted: 0,
            pods_started_before: 0,
        };
        let pod = |profiles: &[&str], started: Option<u64>| PodStart {
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
            started: started.map(t),
        };
        // web.json was written with the floor at 100.
        let written = BTreeMap::from([("web".to_string(), t(100)), ("exempt".to_string(), t(100))]);
        let pods = [
            pod(&["web"], Some(50)),      // before the floor: counts
            pod(&["web"], Some(150)),     // after: carries it
            pod(&["web"], None),          // unknown: counts
            pod(&["exempt"], Some(50)),   // the floor does not apply
            pod(&["too-big"], Some(500)), // its file does not carry the floor at all
            pod(&["gone"], Some(500)),    // no file known: counts
        ];
        let count = pods_started_before(&report, |p| p == "exempt", &pods, &written);
        assert_eq!(count, 4);
    }

    #[test]
    fn the_report_names_a_bounded_number_of_floors_and_profiles() {
        let floors: Vec<FloorStamp> = (0..MAX_REPORT_FLOORS + 3)
            .map(|i| stamp(&format!("f{i:03}")))
            .collect();
        let names: Vec<String> = floors.iter().map(|f| f.name.clone()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let desired: BTreeMap<String, DesiredProfile> = (0..MAX_NAMED_ENTRIES + 5)
            .map(|i| {
                (
                    format!("p{i:03}"),
                    want(&refs, Target::Invalid("no".into())),
                )
            })
            .collect();
        let outcomes: Vec<ProfileReport> = desired
            .keys()
            .map(|n| outcome(n, NodeProfileState::Invalid))
            .collect();
        let reports = floor_reports(&floors, &desired, &outcomes);
        assert_eq!(reports.len(), MAX_REPORT_FLOORS);
        assert_eq!(reports[0].missing.len(), MAX_NAMED_ENTRIES);
        assert_eq!(reports[0].missing_omitted, 5);
        assert_eq!(reports[0].carried, 0);
    }
}
