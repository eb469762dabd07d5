//! Profiles, node reports and snapshots for the status writer's tests, on two nodes.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::tracker::Snapshot;
use seccompd_api::{SeccompNodeReport, SeccompProfile};
use seccompd_profile::digest::SetDigest;
use seccompd_profile::render::{ContentHash, render};
use seccompd_profile::resolve::resolve;

/// The nodes that count.
pub const NODES: [&str; 2] = ["node1", "node2"];

/// Profile `name` at generation 3 and `resource_version`, with `status` if any.
pub fn profile(name: &str, resource_version: &str, status: Option<Value>) -> SeccompProfile {
    let mut object = json!({
        "apiVersion": "seccompd.dev/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": resource_version, "generation": 3},
        "spec": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]},
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    serde_json::from_value(object).unwrap()
}

/// The content hash nodes should install for `profile`.
pub fn expected_hash(profile: &SeccompProfile) -> ContentHash {
    render(&resolve(&profile.name_any(), &profile.spec.0, |_| None).unwrap()).hash
}

/// A synced report of `node` at `resource_version` with `installed` in their current version.
pub fn report(
    node: &str,
    resource_version: &str,
    installed: &[&SeccompProfile],
) -> SeccompNodeReport {
    let members: Vec<(String, ContentHash)> = installed
        .iter()
        .map(|p| (p.name_any(), expected_hash(p)))
        .collect();
    let digest = SetDigest::of_set(members.iter().map(|(n, h)| (n.as_str(), h)));
    serde_json::from_value(json!({
        "apiVersion": "seccompd.dev/v1alpha1",
        "kind": "SeccompNodeReport",
        "metadata": {"name": node, "resourceVersion": resource_version},
        "spec": {"synced": true, "installed": installed.len(), "installedDigest": digest.to_hex()},
    }))
    .unwrap()
}

/// The writer's view of `profiles` and `reports` on [`NODES`].
pub fn snapshot(profiles: &[&SeccompProfile], reports: &[&SeccompNodeReport]) -> Snapshot {
    Snapshot {
        profiles: profiles
            .iter()
            .map(|p| (p.name_any(), Arc::new((*p).clone())))
            .collect(),
        reports: reports
            .iter()
            .map(|r| (r.name_any(), Arc::new((*r).clone())))
            .collect(),
        node_names: NODES.iter().map(|n| n.to_string()).collect(),
        floors: Default::default(),
    }
}

/// The wall-clock time the tests' statuses are stamped with.
pub fn stamp() -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap())
}
