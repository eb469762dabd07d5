//! What each SeccompProfile's `status.denials` should say, from every node's
//! SeccompDenialReport, and which statuses to write to get there. No I/O: the writes are data
//! ([`DenialsWrite`]) for the thin applier in [`super`].

use std::collections::BTreeMap;

use seccompd_api::denials::is_would_deny;
use seccompd_api::{DenialEntry, ProfileDenials, SeccompDenialReportSpec, SyscallDenials};
use seccompd_profile::limits::{MAX_DENIAL_EXAMPLES, MAX_STATUS_DENIAL_SYSCALLS};
use seccompd_profile::model::Action;

/// How many system call names the one-line summary names.
const SUMMARY_NAMES: usize = 3;

/// A node's report, by node name.
pub type NodeReports<'a> = [(&'a str, &'a SeccompDenialReportSpec)];

/// One profile's `status.denials` to write: `None` removes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenialsWrite {
    /// The SeccompProfile.
    pub name: String,
    /// What its `status.denials` should say.
    pub denials: Option<ProfileDenials>,
}

/// The writes that bring every profile (by name, with its current `status.denials`) in line
/// with the reports: one per profile whose summary differs, none for profiles that do not
/// exist (a report may name a deleted profile).
pub fn plan(
    profiles: &[(&str, Option<&ProfileDenials>)],
    reports: &NodeReports<'_>,
) -> Vec<DenialsWrite> {
    let mut by_profile: BTreeMap<&str, Vec<(&str, &DenialEntry)>> = BTreeMap::new();
    for (node, report) in reports {
        for entry in &report.entries {
            by_profile
                .entry(entry.profile.as_str())
                .or_default()
                .push((node, entry));
        }
    }
    let lost: u64 = reports.iter().map(|(_, r)| r.lost.total).sum();
    profiles
        .iter()
        .filter_map(|(name, current)| {
            let wanted = by_profile.get(name).map(|entries| summarize(entries, lost));
            (wanted.as_ref() != *current).then(|| DenialsWrite {
                name: name.to_string(),
                denials: wanted,
            })
        })
        .collect()
}

/// One profile's denials from its entries on every node (`node`, entry); `lost` is the
/// nodes' lost records.
fn summarize(entries: &[(&str, &DenialEntry)], lost: u64) -> ProfileDenials {
    let mut by_call: BTreeMap<(&str, Action), SyscallDenials> = BTreeMap::new();
    for (node, entry) in entries {
        let merged = by_call
            .entry((entry.syscall.as_str(), entry.action))
            .or_insert_with(|| SyscallDenials {
                name: entry.syscall.clone(),
                action: entry.action,
                count: 0,
                first_seen: entry.first_seen.clone(),
                last_seen: entry.last_seen.clone(),
                pods: Vec::new(),
                nodes: Vec::new(),
            });
        merged.count += entry.count;
        if entry.first_seen < merged.first_seen {
            merged.first_seen = entry.first_seen.clone();
        }
        if entry.last_seen > merged.last_seen {
            merged.last_seen = entry.last_seen.clone();
        }
        for pod in &entry.pods {
            if merged.pods.len() < MAX_DENIAL_EXAMPLES && !merged.pods.contains(pod) {
                merged.pods.push(pod.clone());
            }
        }
        if merged.nodes.len() < MAX_DENIAL_EXAMPLES && !merged.nodes.iter().any(|n| n == node) {
            merged.nodes.push(node.to_string());
        }
    }
    let mut calls: Vec<SyscallDenials> = by_call.into_values().collect();
    for call in &mut calls {
        // The same examples whatever order the reports came in.
        call.pods.sort();
        call.nodes.sort();
    }
    let (would_deny, denied) = calls.iter().fold((0, 0), |(w, d), c| {
        if is_would_deny(c.action) {
            (w + c.count, d)
        } else {
            (w, d + c.count)
        }
    });
    calls.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    let omitted = calls.len().saturating_sub(MAX_STATUS_DENIAL_SYSCALLS);
    calls.truncate(MAX_STATUS_DENIAL_SYSCALLS);
    ProfileDenials {
        summary: Some(summary(would_deny, denied, &calls)),
        would_deny,
        denied,
        omitted_syscalls: u32::try_from(omitted).unwrap_or(u32::MAX),
        syscalls: calls,
        lost_records: lost,
    }
}

/// `denied 4, would deny 12: mkdir, statx, ...` (the most counted names first).
fn summary(would_deny: u64, denied: u64, calls: &[SyscallDenials]) -> String {
    let mut counts = Vec::new();
    if denied > 0 {
        counts.push(format!("denied {denied}"));
    }
    if would_deny > 0 {
        counts.push(format!("would deny {would_deny}"));
    }
    let mut names: Vec<&str> = Vec::new();
    for call in calls {
        if !names.contains(&call.name.as_str()) {
            names.push(&call.name);
        }
    }
    let more = names.len() > SUMMARY_NAMES;
    names.truncate(SUMMARY_NAMES);
    let mut text = format!("{}: {}", counts.join(", "), names.join(", "));
    if more {
        text.push_str(", ...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use seccompd_api::{LostRecords, PodExample};

    fn time(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn entry(profile: &str, syscall: &str, action: Action, count: u64, pod: &str) -> DenialEntry {
        DenialEntry {
            profile: profile.to_string(),
            syscall: syscall.to_string(),
            action,
            count,
            first_seen: time(count as i64),
            last_seen: time(100 + count as i64),
            pods: vec![PodExample {
                namespace: "ns".to_string(),
                name: pod.to_string(),
                container: "main".to_string(),
            }],
        }
    }

    fn report(entries: Vec<DenialEntry>, lost: u64) -> SeccompDenialReportSpec {
        SeccompDenialReportSpec {
            entries,
            lost: LostRecords {
                kernel: lost,
                ..Default::default()
            }
            .totalled(),
            ..Default::default()
        }
    }

    #[test]
    fn nodes_are_summed_per_call_and_action_the_most_counted_first() {
        let node1 = report(
            vec![
                entry("ls", "mkdir", Action::Log, 3, "a"),
                entry("ls", "statx", Action::Log, 1, "a"),
                entry("other", "mkdir", Action::Log, 50, "z"),
            ],
            2,
        );
        let node2 = report(vec![entry("ls", "mkdir", Action::Log, 5, "b")], 0);
        let writes = plan(&[("ls", None)], &[("node1", &node1), ("node2", &node2)]);
        assert_eq!(writes.len(), 1);
        let d = writes[0].denials.as_ref().unwrap();
        assert_eq!((d.would_deny, d.denied, d.lost_records), (9, 0, 2));
        assert_eq!(d.summary.as_deref(), Some("would deny 9: mkdir, statx"));
        let mkdir = &d.syscalls[0];
        assert_eq!((mkdir.name.as_str(), mkdir.count), ("mkdir", 8));
        assert_eq!(
            (&mkdir.first_seen, &mkdir.last_seen),
            (&time(3), &time(105))
        );
        assert_eq!(mkdir.nodes, ["node1", "node2"]);
        let pods: Vec<&str> = mkdir.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(pods, ["a", "b"]);
        assert_eq!(d.syscalls[1].name, "statx");
    }

    #[test]
    fn denials_and_would_be_denials_are_told_apart() {
        let r = report(
            vec![
                entry("ls", "mkdir", Action::Errno, 2, "a"),
                entry("ls", "mkdir", Action::Log, 1, "b"),
            ],
            0,
        );
        let d = plan(&[("ls", None)], &[("node1", &r)])[0]
            .denials
            .clone()
            .unwrap();
        assert_eq!((d.would_deny, d.denied), (1, 2));
        assert_eq!(d.summary.as_deref(), Some("denied 2, would deny 1: mkdir"));
        assert_eq!(d.syscalls[0].action, Action::Errno);
    }

    #[test]
    fn the_list_is_bounded_and_counts_the_rest() {
        let entries = (0..MAX_STATUS_DENIAL_SYSCALLS + 4)
            .map(|n| entry("ls", &format!("call{n:02}"), Action::Log, 1, "a"))
            .collect();
        let r = report(entries, 0);
        let d = plan(&[("ls", None)], &[("node1", &r)])[0]
            .denials
            .clone()
            .unwrap();
        assert_eq!(d.syscalls.len(), MAX_STATUS_DENIAL_SYSCALLS);
        assert_eq!(d.omitted_syscalls, 4);
        assert!(d.summary.unwrap().ends_with(", ..."));
    }

    #[test]
    fn only_changed_statuses_are_written_and_stale_ones_removed() {
        let r = report(vec![entry("ls", "mkdir", Action::Log, 1, "a")], 0);
        let reports = [("node1", &r)];
        let wanted = plan(&[("ls", None)], &reports)[0].denials.clone();
        assert!(plan(&[("ls", wanted.as_ref())], &reports).is_empty());
        // A profile no report names any more loses its denials; one never named is left.
        let stale = plan(&[("gone", wanted.as_ref()), ("quiet", None)], &reports);
        assert_eq!(
            stale,
            [DenialsWrite {
                name: "gone".to_string(),
                denials: None
            }]
        );
    }
}
