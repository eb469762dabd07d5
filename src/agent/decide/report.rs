//! What this node tells the cluster about each profile, decided from the plan's outcome.

use std::collections::BTreeMap;

use super::desired::ProfileInput;
use super::notices::pod_list;
use super::plan::{DesiredProfile, Target};
use super::pods::PodRef;
use crate::api::{NodeProfileState, ProfileReport};
use crate::profile::render::ContentHash;

/// The node's report: one entry per profile, sorted by name.
///
/// `write_errors` holds the profiles whose file could not be written on this pass, with why.
/// A profile only counts as installed when its file is known to hold the rendered bytes.
pub fn node_reports(
    desired: &BTreeMap<String, DesiredProfile>,
    write_errors: &BTreeMap<String, String>,
) -> Vec<ProfileReport> {
    desired
        .iter()
        .map(|(name, want)| {
            let (state, content_hash, reason) = match (&want.target, write_errors.get(name)) {
                (Target::Install(_), Some(err)) => {
                    (NodeProfileState::Error, None, Some(err.clone()))
                }
                (Target::Install(r), None) => {
                    (NodeProfileState::Installed, Some(r.hash.clone()), None)
                }
                (Target::Invalid(why), _) => (NodeProfileState::Invalid, None, Some(why.clone())),
                (Target::Unchecked { reason, .. }, _) => (
                    NodeProfileState::Error,
                    None,
                    Some(format!(
                        "the node check could not finish: {reason}; retrying"
                    )),
                ),
            };
            ProfileReport {
                name: name.clone(),
                state,
                generation: want.generation,
                content_hash,
                reason,
            }
        })
        .collect()
}

/// Report entries for deleted profiles whose file stays: `kept` maps each to the hash of its
/// file, `users` names the pods that use it.
pub fn retained_reports(
    kept: &BTreeMap<String, ContentHash>,
    users: &BTreeMap<String, Vec<PodRef>>,
) -> Vec<ProfileReport> {
    kept.iter()
        .map(|(name, hash)| {
            let pods = users.get(name).map(Vec::as_slice).unwrap_or_default();
            ProfileReport {
                name: name.clone(),
                state: NodeProfileState::Retained,
                generation: None,
                content_hash: Some(hash.clone()),
                reason: Some(format!(
                    "the SeccompProfile was deleted; the file stays while pods on this node use it: {}",
                    pod_list(pods)
                )),
            }
        })
        .collect()
}

/// Report entries when the directory could not even be listed: every profile is an `Error`
/// with `reason`, since what its file holds is unknown.
pub fn unknown_state_reports(profiles: &[ProfileInput<'_>], reason: &str) -> Vec<ProfileReport> {
    let mut out: Vec<ProfileReport> = profiles
        .iter()
        .map(|p| ProfileReport {
            name: p.name.to_string(),
            state: NodeProfileState::Error,
            generation: p.generation,
            content_hash: None,
            reason: Some(reason.to_string()),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::render::{Rendered, content_hash};

    fn install(text: &str) -> DesiredProfile {
        DesiredProfile {
            generation: Some(4),
            target: Target::Install(Rendered {
                bytes: text.into(),
                hash: content_hash(text.as_bytes()),
            }),
        }
    }

    #[test]
    fn each_outcome_maps_to_its_state() {
        let desired = BTreeMap::from([
            ("ok".to_string(), install("A")),
            ("broken-disk".to_string(), install("B")),
            (
                "bad".to_string(),
                DesiredProfile {
                    generation: Some(2),
                    target: Target::Invalid("spec.syscalls[0].names: empty".into()),
                },
            ),
        ]);
        let errors = BTreeMap::from([("broken-disk".to_string(), "No space left".to_string())]);
        let got = node_reports(&desired, &errors);
        let by_name: BTreeMap<_, _> = got.iter().map(|r| (r.name.as_str(), r)).collect();
        assert_eq!(by_name["ok"].state, NodeProfileState::Installed);
        assert_eq!(
            by_name["ok"].content_hash.as_ref(),
            Some(&content_hash(b"A"))
        );
        assert_eq!(by_name["ok"].generation, Some(4));
        assert_eq!(by_name["broken-disk"].state, NodeProfileState::Error);
        assert_eq!(
            by_name["broken-disk"].reason.as_deref(),
            Some("No space left")
        );
        assert_eq!(by_name["broken-disk"].content_hash, None);
        assert_eq!(by_name["bad"].state, NodeProfileState::Invalid);
        assert_eq!(by_name["bad"].generation, Some(2));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn retained_profiles_name_their_pods() {
        let kept = BTreeMap::from([("old".to_string(), ContentHash::from("sha256:o"))]);
        let users = BTreeMap::from([(
            "old".to_string(),
            vec![PodRef {
                namespace: "ns".into(),
                name: "web".into(),
                uid: "u".into(),
            }],
        )]);
        let got = retained_reports(&kept, &users);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].state, NodeProfileState::Retained);
        assert_eq!(got[0].content_hash, Some(ContentHash::from("sha256:o")));
        assert!(
            got[0]
                .reason
                .as_deref()
                .unwrap()
                .ends_with("use it: ns/web")
        );
    }

    #[test]
    fn an_unlisted_directory_reports_every_profile_as_error_without_a_hash() {
        let spec: crate::profile::model::ProfileSpec =
            serde_json::from_value(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"})).unwrap();
        let inputs = [
            ProfileInput {
                name: "b",
                generation: Some(2),
                spec: &spec,
            },
            ProfileInput {
                name: "a",
                generation: Some(1),
                spec: &spec,
            },
        ];
        let got = unknown_state_reports(&inputs, "permission denied");
        let names: Vec<_> = got.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(got.iter().all(|r| r.state == NodeProfileState::Error
            && r.content_hash.is_none()
            && r.reason.as_deref() == Some("permission denied")));
        assert_eq!(got[1].generation, Some(2));
    }
}
