//! What each SeccompProfileBinding's status says, from the profile it names, and which
//! statuses need writing. No I/O: the elected controller sends the writes (`super`).
//!
//! The admission policies apply a binding whatever its status (they cannot look profiles up):
//! a binding to a profile that is missing, or missing on some nodes, makes the pods it binds
//! fail to start there. The status says so, naming the profile.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use seccompd_api::reason::bounded_reason;
use seccompd_api::{
    BindingReason, CONDITION_READY, Phase, SeccompProfileBinding, SeccompProfileBindingStatus,
    SeccompProfileStatus, localhost_profile,
};

/// What the controller knows of the profile a binding names.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NamedProfile<'a> {
    /// No SeccompProfile has that name.
    Missing,
    /// It exists, with this status (none yet: a new profile).
    Present(Option<&'a SeccompProfileStatus>),
}

/// One status write: `status` applied to the binding `namespace/name`, whose uid is `uid`
/// (a precondition: a binding deleted and created again under the same name is another one).
#[derive(Clone, Debug, PartialEq)]
pub struct BindingStatusWrite {
    /// The binding's namespace.
    pub namespace: String,
    /// The binding's name.
    pub name: String,
    /// The binding's uid.
    pub uid: String,
    /// Its whole status.
    pub status: SeccompProfileBindingStatus,
}

/// Why the binding is (not) Ready, and in words, from the profile it names.
fn readiness(profile_name: &str, profile: NamedProfile<'_>) -> (BindingReason, String) {
    let file = localhost_profile(profile_name);
    let NamedProfile::Present(status) = profile else {
        return (
            BindingReason::ProfileNotFound,
            format!(
                "SeccompProfile {profile_name} does not exist: the pods this binding selects get {file}, which no node has, and fail to start. Create the SeccompProfile, or correct spec.profileName"
            ),
        );
    };
    let phase = status.and_then(|s| s.phase);
    // Nodes with the current version over all nodes, when the status has counted them.
    let count = status
        .and_then(|s| s.installed.as_deref())
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let see = format!("see `kubectl get seccompprofile {profile_name}`");
    match phase {
        Some(Phase::Installed) => (
            BindingReason::ProfileInstalled,
            format!(
                "SeccompProfile {profile_name} is installed on every node{count}: the pods this binding selects run under {file}"
            ),
        ),
        Some(Phase::Partial) => (
            BindingReason::ProfilePartial,
            format!(
                "SeccompProfile {profile_name} is installed on some nodes only{count}: pods this binding selects fail to start on the others; {see}"
            ),
        ),
        Some(Phase::Invalid) => (
            BindingReason::ProfileInvalid,
            format!(
                "SeccompProfile {profile_name} is Invalid: pods this binding selects fail to start on nodes without it; {see}"
            ),
        ),
        Some(Phase::Error) => (
            BindingReason::ProfileError,
            format!(
                "SeccompProfile {profile_name} failed to install on some nodes{count}: pods this binding selects fail to start there; {see}"
            ),
        ),
        Some(Phase::Pending) | None => (
            BindingReason::ProfilePending,
            format!(
                "SeccompProfile {profile_name} is not installed yet{count}: pods this binding selects fail to start until their node has it; {see}"
            ),
        ),
    }
}

/// The status `binding` should have. `current` is its status now: the Ready condition keeps
/// its lastTransitionTime while its status (True or False) stays; `now` stamps a change.
pub fn binding_status(
    binding: &SeccompProfileBinding,
    profile: NamedProfile<'_>,
    current: Option<&SeccompProfileBindingStatus>,
    now: &Time,
) -> SeccompProfileBindingStatus {
    let profile_name = &binding.spec.profile_name;
    let (reason, message) = readiness(profile_name, profile);
    let status = if reason.ready() { "True" } else { "False" };
    let previous = current.and_then(|s| s.conditions.iter().find(|c| c.type_ == CONDITION_READY));
    let last_transition_time = previous
        .filter(|c| c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    let generation = binding.metadata.generation;
    SeccompProfileBindingStatus {
        localhost_profile: Some(localhost_profile(profile_name)),
        observed_generation: generation,
        conditions: vec![Condition {
            type_: CONDITION_READY.to_string(),
            status: status.to_string(),
            reason: reason.as_str().to_string(),
            message: bounded_reason(message),
            observed_generation: generation,
            last_transition_time,
        }],
    }
}

/// The writes that bring every binding's status up to date with the profiles, in the order
/// of `bindings`: one for each binding whose status differs from what it should be, except
/// those in `settled`, where the binding's resourceVersion is still the one a write was
/// decided from (the watch has not brought that write back yet: deciding again would only
/// repeat it).
pub fn plan(
    bindings: &[&SeccompProfileBinding],
    profiles: &BTreeMap<String, Option<SeccompProfileStatus>>,
    settled: &BTreeMap<String, String>,
    now: &Time,
) -> Vec<BindingStatusWrite> {
    bindings
        .iter()
        .filter_map(|binding| {
            let uid = binding.uid()?;
            let namespace = binding.namespace()?;
            let version = binding.resource_version();
            if version.is_some() && settled.get(&uid) == version.as_ref() {
                return None;
            }
            let profile = match profiles.get(&binding.spec.profile_name) {
                None => NamedProfile::Missing,
                Some(status) => NamedProfile::Present(status.as_ref()),
            };
            let current = binding.status.as_ref();
            let status = binding_status(binding, profile, current, now);
            (current != Some(&status)).then(|| BindingStatusWrite {
                namespace,
                name: binding.name_any(),
                uid,
                status,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn binding(profile: &str, status: Option<serde_json::Value>) -> SeccompProfileBinding {
        let mut b = json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileBinding",
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-1",
                         "resourceVersion": "7", "generation": 2},
            "spec": {"profileName": profile, "podSelector": {"matchLabels": {"app": "web"}}},
        });
        if let Some(status) = status {
            b["status"] = status;
        }
        serde_json::from_value(b).unwrap()
    }

    fn installed(phase: Phase, installed: &str) -> SeccompProfileStatus {
        SeccompProfileStatus {
            phase: Some(phase),
            installed: Some(installed.to_string()),
            ..Default::default()
        }
    }

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn ready(status: &SeccompProfileBindingStatus) -> &Condition {
        &status.conditions[0]
    }

    #[test]
    fn a_missing_profile_is_named_with_the_fix() {
        let b = binding("deny-mkdir", None);
        let status = binding_status(&b, NamedProfile::Missing, None, &at(10));
        let condition = ready(&status);
        assert_eq!(condition.type_, "Ready");
        assert_eq!(condition.status, "False");
        assert_eq!(condition.reason, "ProfileNotFound");
        assert!(
            condition
                .message
                .starts_with("SeccompProfile deny-mkdir does not exist"),
            "{}",
            condition.message
        );
        assert!(condition.message.contains("seccompd/deny-mkdir.json"));
        assert!(condition.message.contains("correct spec.profileName"));
        assert_eq!(condition.observed_generation, Some(2));
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            status.localhost_profile.as_deref(),
            Some("seccompd/deny-mkdir.json")
        );
    }

    #[test]
    fn an_installed_profile_makes_the_binding_ready_and_other_phases_say_which() {
        let b = binding("p", None);
        let cases = [
            (
                Some(installed(Phase::Installed, "2/2")),
                "True",
                "ProfileInstalled",
            ),
            (
                Some(installed(Phase::Partial, "1/2")),
                "False",
                "ProfilePartial",
            ),
            (
                Some(installed(Phase::Invalid, "0/2")),
                "False",
                "ProfileInvalid",
            ),
            (
                Some(installed(Phase::Error, "1/2")),
                "False",
                "ProfileError",
            ),
            (
                Some(installed(Phase::Pending, "0/2")),
                "False",
                "ProfilePending",
            ),
            (None, "False", "ProfilePending"),
        ];
        for (profile, want_status, want_reason) in cases {
            let status = binding_status(&b, NamedProfile::Present(profile.as_ref()), None, &at(1));
            let condition = ready(&status);
            assert_eq!(
                (condition.status.as_str(), condition.reason.as_str()),
                (want_status, want_reason),
                "{profile:?}"
            );
            assert!(
                condition.message.contains("SeccompProfile p "),
                "{}",
                condition.message
            );
        }
        let partial = installed(Phase::Partial, "1/2");
        let status = binding_status(&b, NamedProfile::Present(Some(&partial)), None, &at(1));
        assert!(
            ready(&status)
                .message
                .contains("installed on some nodes only (1/2)")
        );
    }

    #[test]
    fn the_transition_time_moves_only_when_ready_changes() {
        let b = binding("p", None);
        let missing = binding_status(&b, NamedProfile::Missing, None, &at(10));
        let pending = installed(Phase::Pending, "0/2");
        let still_false = binding_status(
            &b,
            NamedProfile::Present(Some(&pending)),
            Some(&missing),
            &at(20),
        );
        assert_eq!(ready(&still_false).last_transition_time, at(10));
        assert_eq!(ready(&still_false).reason, "ProfilePending");
        let done = installed(Phase::Installed, "2/2");
        let now_true = binding_status(
            &b,
            NamedProfile::Present(Some(&done)),
            Some(&still_false),
            &at(30),
        );
        assert_eq!(ready(&now_true).last_transition_time, at(30));
    }

    #[test]
    fn only_bindings_whose_status_differs_are_written() {
        let now = at(5);
        let stale = binding("p", None);
        let written = binding_status(&stale, NamedProfile::Missing, None, &now);
        let current = binding("p", Some(serde_json::to_value(&written).unwrap()));
        let profiles = BTreeMap::new();
        assert_eq!(
            plan(&[&current], &profiles, &BTreeMap::new(), &at(99)),
            [],
            "up to date: the time of the last change is kept, nothing to write"
        );
        let writes = plan(&[&stale], &profiles, &BTreeMap::new(), &now);
        assert_eq!(
            writes,
            [BindingStatusWrite {
                namespace: "shop".into(),
                name: "web".into(),
                uid: "uid-1".into(),
                status: written,
            }]
        );
        let profiles =
            BTreeMap::from([("p".to_string(), Some(installed(Phase::Installed, "2/2")))]);
        let writes = plan(&[&current], &profiles, &BTreeMap::new(), &now);
        assert_eq!(writes.len(), 1, "the profile appeared and is installed");
        assert_eq!(ready(&writes[0].status).reason, "ProfileInstalled");
    }

    #[test]
    fn a_binding_whose_write_the_watch_has_not_brought_back_is_left_alone() {
        let b = binding("p", None);
        let settled = BTreeMap::from([("uid-1".to_string(), "7".to_string())]);
        assert_eq!(plan(&[&b], &BTreeMap::new(), &settled, &at(1)), []);
        let moved_on = BTreeMap::from([("uid-1".to_string(), "6".to_string())]);
        assert_eq!(plan(&[&b], &BTreeMap::new(), &moved_on, &at(1)).len(), 1);
    }
}
