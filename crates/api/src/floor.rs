//! The `SeccompFloor` custom resource: deny rules an administrator puts under every profile
//! seccompd installs, and where they have arrived.

// Several print columns share `type_ = "string"`, which this lint mistakes for a repeat.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use seccompd_profile::floor::FloorSpec;
use seccompd_profile::limits::{MAX_LISTED_NODES, MAX_NODE_NAME_LEN, MAX_REASON_LEN};
use seccompd_profile::render::ContentHash;

/// Deny rules that every seccomp profile seccompd installs carries, on every node: each
/// SeccompProfile's file and the built-in seccompd/default.json. One floor protects every pod
/// that uses a seccompd profile from a kernel bug reachable through one system call, for
/// example `socket` with AF_ALG (Copy Fail, CVE-2026-31431). A floor rule wins over a
/// profile's allow; a profile in Audit mode logs the call instead. Only cluster
/// administrators should be allowed to write floors; a floor can exempt named profiles, a
/// profile cannot exempt itself. A running container keeps the filter it started with: see
/// `status.nodes` for the pods to restart.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seccompd.dev",
    version = "v1alpha1",
    kind = "SeccompFloor",
    shortname = "scf",
    category = "seccompd",
    status = "SeccompFloorStatus",
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.phase",
        description = "Installed (every profile file on every node carries it), Partial or Pending"
    ),
    printcolumn(
        name = "Installed",
        type_ = "string",
        json_path = ".status.installed",
        description = "Nodes where every profile file carries the current rules / all nodes"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(transparent)]
#[schemars(transform = crate::floor_rules::add_to_spec)]
pub struct SeccompFloorSpec(pub FloorSpec);

/// Where a SeccompFloor has arrived, summarized from every node's report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeccompFloorStatus {
    /// Installed (every profile file on every node carries the current rules), Partial (some
    /// nodes do; `nodes` names the others and why) or Pending (no node does yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<FloorPhase>,

    /// Nodes where every profile file carries the current rules, over all nodes, as `n/m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,

    /// sha256 of the current rules; nodes report the digest of the rules each file carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<ContentHash>,

    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Per node: the profiles that do not carry the current rules yet, and how many running
    /// pods started before the floor reached their profile (a container keeps the filter it
    /// started with: restart those pods). A bounded number of nodes are listed;
    /// `omittedNodes` counts the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LISTED_NODES))]
    pub nodes: Vec<FloorNode>,

    /// How many further nodes beyond those in `nodes`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_nodes: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Summary state of a floor across the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FloorPhase {
    /// Every profile file on every node carries the current rules.
    Installed,
    /// Some nodes carry them everywhere, others not yet or not for every profile.
    Partial,
    /// No node has reported the current rules yet.
    Pending,
}

/// One node's state for a floor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FloorNode {
    /// The node's name.
    #[schemars(length(max = MAX_NODE_NAME_LEN))]
    pub node_name: String,
    /// Whether every profile file on the node carries the current rules.
    pub carried: bool,
    /// Why not, naming the profiles (a profile that the floor would push over the kernel's
    /// instruction limit is refused there, with the counts); a long reason is cut, ending in
    /// ` [...]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_REASON_LEN))]
    pub reason: Option<String>,
    /// Running pods on the node that use a seccompd profile and started before the floor's
    /// current rules reached that profile's file: they run without them until restarted.
    #[serde(default)]
    pub pods_started_before: u32,
}
