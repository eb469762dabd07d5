//! The `SeccompProfileBinding` custom resource: which pods of a namespace get which
//! SeccompProfile when they set no seccomp profile of their own. The binding is applied at pod
//! creation by a MutatingAdmissionPolicy of the install (no webhook), and a
//! ValidatingAdmissionPolicy refuses a pod that bindings of different profiles select
//! (charts/seccompd/templates/binding-policies.yaml, docs/binding.md). The controller writes
//! each binding's status: whether its profile exists and is installed.

// Several print columns share `type_ = "string"`, which this lint mistakes for a repeat.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use seccompd_profile::limits::{
    MAX_BINDING_CONTAINERS, MAX_CONTAINER_NAME_LEN, MAX_LABEL_KEY_LEN, MAX_LABEL_VALUE_LEN,
    MAX_PROFILE_NAME_LEN, MAX_SELECTOR_TERMS, MAX_SELECTOR_VALUES,
};

use crate::recording::profile_name_rule;

/// The pod annotation that names the binding which selected the pod at its creation (set by
/// the admission policy; with several bindings of the same profile, the first of their names
/// in alphabetical order).
pub const BINDING_ANNOTATION: &str = "seccompd.dev/binding";

/// The pod annotation that names the profile of [`BINDING_ANNOTATION`]'s binding. The
/// validating policy compares it with every other binding that selects the pod.
pub const BINDING_PROFILE_ANNOTATION: &str = "seccompd.dev/binding-profile";

/// A container name (a DNS label).
const CONTAINER_NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Gives the pods that `podSelector` selects in this namespace the SeccompProfile
/// `profileName` (`Localhost`, `seccompd/<profileName>.json`) when they are created, in every
/// container that sets no seccomp profile of its own. A pod or container that sets one (any
/// type, `RuntimeDefault` and `Unconfined` included) keeps it: a binding is a default, not a
/// restriction (Pod Security's `restricted` level is the restriction).
///
/// Applied by a MutatingAdmissionPolicy of the install (Kubernetes 1.36 or later), at pod
/// creation only: pods that already exist keep what they were created with. A pod that
/// bindings naming different profiles select is refused, with both bindings named. The
/// status says whether the profile exists and is installed on every node.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccompd.dev",
    version = "v1alpha1",
    kind = "SeccompProfileBinding",
    namespaced,
    shortname = "scpb",
    category = "seccompd",
    status = "SeccompProfileBindingStatus",
    validation = profile_name_rule(),
    printcolumn(
        name = "Profile",
        type_ = "string",
        json_path = ".spec.profileName",
        description = "The SeccompProfile the binding gives its pods"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "True when the profile exists and every node has it"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "ProfileInstalled, ProfileNotFound, or the profile's phase (ProfilePending, ProfilePartial, ProfileInvalid, ProfileError)"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfileBindingSpec {
    /// The SeccompProfile (cluster-scoped) that the selected pods get, as
    /// `localhostProfile: seccompd/<profileName>.json`. It may be created before or after
    /// the binding; until every node has it, a bound pod fails to start where it is missing
    /// (the status says so).
    #[schemars(length(min = 1, max = MAX_PROFILE_NAME_LEN))]
    pub profile_name: String,

    /// The pods to bind, by their labels, in the binding's namespace: `matchLabels` and
    /// `matchExpressions` as in any Kubernetes label selector, all of them must hold. An empty
    /// selector selects every pod of the namespace.
    pub pod_selector: PodSelector,

    /// Bind only these containers of the selected pods, by name (init containers included);
    /// empty binds every container. When the binding covers every container of a pod and
    /// none sets a profile, the profile is set for the whole pod (`spec.securityContext`),
    /// otherwise on each container it covers. Ephemeral containers (`kubectl debug`) are
    /// never bound: they run under the pod's profile if it has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_BINDING_CONTAINERS), inner(length(min = 1, max = MAX_CONTAINER_NAME_LEN), regex(pattern = CONTAINER_NAME_PATTERN)))]
    pub containers: Vec<String>,
}

/// A label selector, as Kubernetes writes them, with bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSelector {
    /// Labels a pod must have, with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_SELECTOR_TERMS))]
    pub match_labels: BTreeMap<String, String>,

    /// Requirements on a pod's labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTOR_TERMS))]
    pub match_expressions: Vec<SelectorRequirement>,
}

/// One requirement on a pod's labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
    "message": "values must be given for the operators In and NotIn, and only for them",
}]))]
pub struct SelectorRequirement {
    /// The label's key.
    #[schemars(length(min = 1, max = MAX_LABEL_KEY_LEN))]
    pub key: String,

    /// In, NotIn, Exists or DoesNotExist. NotIn and DoesNotExist also hold for a pod without
    /// the label.
    pub operator: SelectorOperator,

    /// The values for In and NotIn; none for Exists and DoesNotExist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTOR_VALUES), inner(length(max = MAX_LABEL_VALUE_LEN)))]
    pub values: Vec<String>,
}

/// How a requirement compares a label with its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SelectorOperator {
    /// The label has one of the values.
    In,
    /// The label is missing or has none of the values.
    NotIn,
    /// The label is there, whatever its value.
    Exists,
    /// The label is missing.
    DoesNotExist,
}

/// Whether the binding's profile can be used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfileBindingStatus {
    /// The value the binding gives pods: `seccompd/<profileName>.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,

    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Standard conditions. `Ready` is True when the profile exists and every node has its
    /// current version (reason ProfileInstalled); otherwise its reason says why: ProfileNotFound
    /// (no SeccompProfile has that name: bound pods would fail to start), or the profile's
    /// phase (ProfilePending, ProfilePartial, ProfileInvalid, ProfileError).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Why a binding is Ready or not: the reason of its `Ready` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingReason {
    /// The profile exists and every node has its current version.
    ProfileInstalled,
    /// No SeccompProfile has the binding's `profileName`.
    ProfileNotFound,
    /// The profile exists; no node has its current version yet (or it has no status yet).
    ProfilePending,
    /// Some nodes have the profile, others not.
    ProfilePartial,
    /// The profile was rejected.
    ProfileInvalid,
    /// Nodes failed to install the profile.
    ProfileError,
}

impl BindingReason {
    /// The reason as written in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            BindingReason::ProfileInstalled => "ProfileInstalled",
            BindingReason::ProfileNotFound => "ProfileNotFound",
            BindingReason::ProfilePending => "ProfilePending",
            BindingReason::ProfilePartial => "ProfilePartial",
            BindingReason::ProfileInvalid => "ProfileInvalid",
            BindingReason::ProfileError => "ProfileError",
        }
    }

    /// Whether the binding is Ready for this reason.
    pub fn ready(self) -> bool {
        self == BindingReason::ProfileInstalled
    }
}
