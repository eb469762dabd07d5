//! What a recording comes to, from every node's part, the selected pods of the whole cluster
//! and the SeccompProfile it would write. No I/O: the elected controller applies the
//! [`Decision`] (`super::apply`).
//!
//! A recording writes only its own profile: it may create one that does not exist, and
//! update the one it created itself (the profile carries its uid in [`RECORDING_UID`]); any
//! other existing profile of that name fails it, and nothing is written.

use std::collections::BTreeSet;

use seccompd_api::{NodeRecording, RecordingPhase, SeccompProfileRecordingStatus};
use seccompd_profile::limits::RECORD_PROFILE;
use seccompd_profile::model::{Arch, ProfileSpec};
use seccompd_profile::recording::{RecordedCalls, TIMING_DEPENDENT_CALLS};
use seccompd_profile::validate::RUNC_NEEDS_ALWAYS;
use seccompd_recording::part::from_abi_calls;

/// Annotation on a recorded SeccompProfile: the uid of the recording that created it, the
/// only one that may update it. The controller's admission policy lets it create only
/// profiles that carry it and update only profiles that already carry the same value.
pub const RECORDING_UID: &str = "seccompd.dev/recording-uid";

/// Annotation on a recorded SeccompProfile naming its recording, `<namespace>/<name>`, for
/// people (the uid is what counts).
pub const RECORDED_BY: &str = "seccompd.dev/recorded-by";

/// The label a namespace needs before its pods may run under `seccompd/record.json` (the
/// pod admission policy refuses them otherwise).
pub const RECORDING_ALLOWED_LABEL: &str = "seccompd.dev/recording";

/// A selected pod anywhere in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedPod {
    /// The node it is bound to, if any.
    pub node: Option<String>,
    /// Whether it has ended.
    pub ended: bool,
}

/// The SeccompProfile a recording names, as the controller sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileTarget {
    /// No SeccompProfile has that name.
    Absent,
    /// One exists.
    Present {
        /// The uid of the recording that created it ([`RECORDING_UID`]); `None` when no
        /// recording did.
        recording_uid: Option<String>,
        /// Its resourceVersion, the precondition of an update.
        resource_version: Option<String>,
    },
}

/// The profile write a decision asks for, before its status.
#[derive(Clone, Debug, PartialEq)]
pub enum ProfileWrite {
    /// Create the profile (it does not exist).
    Create(ProfileSpec),
    /// Update the profile this recording created, over the version decided from.
    Update {
        /// The new spec.
        spec: ProfileSpec,
        /// The precondition.
        resource_version: Option<String>,
    },
}

/// What a recording comes to now.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The status to write (without `nodes`, which each node writes itself).
    pub status: SeccompProfileRecordingStatus,
    /// The profile to write first, when the recording completes now.
    pub profile: Option<ProfileWrite>,
}

/// One recording, as the controller decides it.
#[derive(Clone, Copy, Debug)]
pub struct RecordingFacts<'a> {
    /// `metadata.uid`.
    pub uid: &'a str,
    /// `spec.profileName`.
    pub profile_name: &'a str,
    /// `spec.done`.
    pub done: bool,
    /// Every node's part, as written.
    pub parts: &'a [NodeRecording],
    /// The pods the recording selects, in the whole cluster.
    pub pods: &'a [SelectedPod],
    /// The profile it would write.
    pub target: &'a ProfileTarget,
    /// The ABI to write the profile for when no part names its node's (recorders of an
    /// earlier release): the controller's own.
    pub fallback_arch: Arch,
}

/// Decides a recording.
pub fn decide(facts: &RecordingFacts<'_>) -> Decision {
    let parts = facts.parts;
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
    let fail = |mut status: SeccompProfileRecordingStatus, message: String| {
        status.phase = Some(RecordingPhase::Failed);
        status.message = Some(message);
        Decision {
            status,
            profile: None,
        }
    };
    let waiting = |mut status: SeccompProfileRecordingStatus, message: String| {
        status.message = Some(message);
        Decision {
            status,
            profile: None,
        }
    };
    if let ProfileTarget::Present { recording_uid, .. } = facts.target
        && recording_uid.as_deref() != Some(facts.uid)
    {
        let by = match recording_uid {
            Some(uid) => format!("it was created by another recording (uid {uid})"),
            None => "it was not created by a recording".to_string(),
        };
        return fail(
            status,
            format!(
                "SeccompProfile {name} already exists and {by}: a recording may only create a profile or update the one it created itself. Choose another spec.profileName, or delete SeccompProfile {name} if the recording is to replace it",
                name = facts.profile_name
            ),
        );
    }
    let deaf: Vec<String> = parts
        .iter()
        .filter(|p| !p.pods.is_empty())
        .filter_map(|p| {
            let why = p.audit_unavailable.as_deref()?;
            Some(format!("{} ({why})", p.node_name))
        })
        .collect();
    if !deaf.is_empty() {
        return fail(
            status,
            format!(
                "selected pods ran on node(s) whose recorder cannot hear the kernel's audit records: {}; their calls cannot be recorded. Run the selected pods on other nodes",
                deaf.join(", ")
            ),
        );
    }
    let finished: BTreeSet<&str> = parts
        .iter()
        .filter(|p| p.finished)
        .map(|p| p.node_name.as_str())
        .collect();
    let waiting_nodes: BTreeSet<&str> = parts
        .iter()
        .map(|p| p.node_name.as_str())
        .chain(facts.pods.iter().filter_map(|p| p.node.as_deref()))
        .filter(|n| !finished.contains(n))
        .collect();
    let running = facts.pods.iter().filter(|p| !p.ended).count();
    if !facts.done && (pods_seen == 0 || running > 0) {
        let message = if pods_seen == 0 {
            format!(
                "waiting for selected pods: they must run with localhostProfile seccompd/{RECORD_PROFILE}.json, in a namespace labelled {RECORDING_ALLOWED_LABEL}=allowed, on nodes with a recorder"
            )
        } else {
            format!("{running} selected pod(s) still running; set spec.done to finish now")
        };
        return waiting(status, message);
    }
    if !waiting_nodes.is_empty() {
        let message = format!(
            "waiting for the recorder of node(s) {} to finish its part",
            waiting_nodes.into_iter().collect::<Vec<_>>().join(", ")
        );
        return waiting(status, message);
    }
    if calls.is_empty() {
        return fail(
            status,
            format!(
                "no system calls were recorded: the selected pods must use localhostProfile seccompd/{RECORD_PROFILE}.json and run on nodes with a recorder"
            ),
        );
    }
    let arches: BTreeSet<Arch> = parts
        .iter()
        .filter(|p| !p.pods.is_empty())
        .filter_map(|p| p.arch)
        .collect();
    let native = match arches.len() {
        0 => facts.fallback_arch,
        1 => arches.into_iter().next().unwrap_or(facts.fallback_arch),
        _ => {
            let names: Vec<String> = arches.iter().map(|a| format!("{a:?}")).collect();
            return fail(
                status,
                format!(
                    "selected pods ran on nodes of different architectures ({}): record each architecture on its own",
                    names.join(", ")
                ),
            );
        }
    };
    status.phase = Some(RecordingPhase::Completed);
    status.profile = Some(facts.profile_name.to_string());
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
    let spec = calls.to_spec(native);
    let profile = match facts.target {
        ProfileTarget::Absent => ProfileWrite::Create(spec),
        ProfileTarget::Present {
            resource_version, ..
        } => ProfileWrite::Update {
            spec,
            resource_version: resource_version.clone(),
        },
    };
    Decision {
        status,
        profile: Some(profile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccompd_api::AbiCalls;
    use seccompd_profile::model::Action;

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
            arch: Some(Arch::X86_64),
            audit_unavailable: None,
        }
    }

    fn selected(node: &str, ended: bool) -> SelectedPod {
        SelectedPod {
            node: Some(node.to_string()),
            ended,
        }
    }

    fn decide_with(
        parts: &[NodeRecording],
        pods: &[SelectedPod],
        done: bool,
        target: &ProfileTarget,
    ) -> Decision {
        decide(&RecordingFacts {
            uid: "rec-uid",
            profile_name: "ls",
            done,
            parts,
            pods,
            target,
            fallback_arch: Arch::Aarch64,
        })
    }

    fn created(d: &Decision) -> &ProfileSpec {
        match &d.profile {
            Some(ProfileWrite::Create(spec)) => spec,
            other => panic!("not a create: {other:?}"),
        }
    }

    #[test]
    fn replicas_on_two_nodes_merge_into_one_profile() {
        let parts = [
            part("node1", &["a"], &["read", "write"], true),
            part("node2", &["b"], &["openat", "read"], true),
        ];
        let pods = [selected("node1", true), selected("node2", true)];
        let out = decide_with(&parts, &pods, false, &ProfileTarget::Absent);
        assert_eq!(out.status.phase, Some(RecordingPhase::Completed));
        assert_eq!(out.status.profile.as_deref(), Some("ls"));
        assert_eq!((out.status.pods_seen, out.status.calls_recorded), (2, 3));
        assert_eq!(out.status.message, None);
        let profile = created(&out);
        assert_eq!(profile.default_action, Action::Errno);
        assert_eq!(profile.architectures, [Arch::X86_64], "the nodes' ABI");
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
        let absent = &ProfileTarget::Absent;
        let running = decide_with(
            &[part("node1", &["a"], &["read"], false)],
            &[selected("node1", false)],
            false,
            absent,
        );
        assert_eq!(running.status.phase, Some(RecordingPhase::Recording));
        assert!(running.profile.is_none());
        assert!(running.status.message.unwrap().contains("still running"));
        // Every pod ended, but node2's recorder has not written its final part yet.
        let waiting = decide_with(
            &[part("node1", &["a"], &["read"], true)],
            &[selected("node1", true), selected("node2", true)],
            false,
            absent,
        );
        assert_eq!(waiting.status.phase, Some(RecordingPhase::Recording));
        assert!(waiting.status.message.unwrap().contains("node2"));
        // No pod seen yet: an empty cluster list is no reason to finish.
        let nothing = decide_with(&[], &[], false, absent);
        assert_eq!(nothing.status.phase, Some(RecordingPhase::Recording));
        let message = nothing.status.message.unwrap();
        assert!(message.contains("record.json"), "{message}");
        assert!(message.contains(RECORDING_ALLOWED_LABEL), "{message}");
    }

    #[test]
    fn done_finishes_with_pods_running_once_every_part_is_final() {
        let parts = [part("node1", &["a"], &["read"], true)];
        let out = decide_with(
            &parts,
            &[selected("node1", false)],
            true,
            &ProfileTarget::Absent,
        );
        assert_eq!(out.status.phase, Some(RecordingPhase::Completed));
    }

    #[test]
    fn nothing_recorded_fails_and_losses_are_reported() {
        let absent = &ProfileTarget::Absent;
        let out = decide_with(
            &[part("node1", &["a"], &[], true)],
            &[selected("node1", true)],
            false,
            absent,
        );
        assert_eq!(out.status.phase, Some(RecordingPhase::Failed));
        assert!(out.profile.is_none());
        let mut lossy = part("node1", &["a"], &["read"], true);
        lossy.lost_records = 4;
        let out = decide_with(&[lossy], &[selected("node1", true)], false, absent);
        assert_eq!(out.status.phase, Some(RecordingPhase::Completed));
        assert_eq!(out.status.lost_records, 4);
        assert!(out.status.message.unwrap().contains("4 audit record"));
    }

    #[test]
    fn a_profile_the_recording_did_not_create_fails_it_and_is_not_written() {
        let parts = [part("node1", &["a"], &["read"], true)];
        let pods = [selected("node1", true)];
        for (recording_uid, says) in [
            (None, "not created by a recording"),
            (
                Some("other-uid".to_string()),
                "another recording (uid other-uid)",
            ),
        ] {
            let target = ProfileTarget::Present {
                recording_uid,
                resource_version: Some("5".to_string()),
            };
            let out = decide_with(&parts, &pods, false, &target);
            assert_eq!(out.status.phase, Some(RecordingPhase::Failed));
            assert_eq!(out.profile, None);
            let message = out.status.message.unwrap();
            assert!(
                message.contains("SeccompProfile ls already exists"),
                "{message}"
            );
            assert!(message.contains(says), "{message}");
            assert!(message.contains("spec.profileName"), "{message}");
            // Also while the pods still run: nothing it records could be written.
            let early = decide_with(&parts, &[selected("node1", false)], false, &target);
            assert_eq!(early.status.phase, Some(RecordingPhase::Failed));
        }
    }

    #[test]
    fn the_profile_it_created_is_updated_over_the_version_seen() {
        let target = ProfileTarget::Present {
            recording_uid: Some("rec-uid".to_string()),
            resource_version: Some("9".to_string()),
        };
        let out = decide_with(
            &[part("node1", &["a"], &["read"], true)],
            &[selected("node1", true)],
            false,
            &target,
        );
        assert_eq!(out.status.phase, Some(RecordingPhase::Completed));
        match out.profile {
            Some(ProfileWrite::Update {
                resource_version, ..
            }) => assert_eq!(resource_version.as_deref(), Some("9")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pods_on_a_node_that_cannot_hear_audit_records_fail_the_recording() {
        let mut deaf = part("node2", &["b"], &[], true);
        deaf.audit_unavailable = Some("no audit record of the recorder's own probe".to_string());
        let out = decide_with(
            &[part("node1", &["a"], &["read"], true), deaf],
            &[selected("node1", true), selected("node2", false)],
            false,
            &ProfileTarget::Absent,
        );
        assert_eq!(out.status.phase, Some(RecordingPhase::Failed));
        let message = out.status.message.unwrap();
        assert!(message.contains("node2 (no audit record"), "{message}");
        // A deaf node without selected pods is no reason to fail.
        let mut idle = part("node2", &[], &[], true);
        idle.audit_unavailable = Some("deaf".to_string());
        let out = decide_with(
            &[part("node1", &["a"], &["read"], true), idle],
            &[selected("node1", true)],
            false,
            &ProfileTarget::Absent,
        );
        assert_eq!(out.status.phase, Some(RecordingPhase::Completed));
    }

    #[test]
    fn the_profile_is_written_for_the_recording_nodes_abi() {
        let mut arm = part("node1", &["a"], &["read"], true);
        arm.arch = None;
        let out = decide_with(
            &[arm.clone()],
            &[selected("node1", true)],
            false,
            &ProfileTarget::Absent,
        );
        assert_eq!(
            created(&out).architectures[0],
            Arch::Aarch64,
            "an old recorder's part: the controller's own ABI"
        );
        let mut x86 = part("node2", &["b"], &["read"], true);
        x86.arch = Some(Arch::X86_64);
        arm.arch = Some(Arch::Aarch64);
        let out = decide_with(
            &[arm, x86],
            &[selected("node1", true), selected("node2", true)],
            false,
            &ProfileTarget::Absent,
        );
        assert_eq!(out.status.phase, Some(RecordingPhase::Failed));
    }
}
