//! Which seccompd profiles the pods on this node reference. Pure: pods in, profile names and
//! the pods that use them out.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;

use k8s_openapi::api::core::v1::{
    Container, EphemeralContainer, Pod, PodSecurityContext, PodSpec, PodStatus, SeccompProfile,
    SecurityContext,
};

use super::plan::profile_of;
use seccompd_api::PROFILE_SUBDIR;

/// A pod, as named in events and reports.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodRef {
    /// metadata.namespace.
    pub namespace: String,
    /// metadata.name.
    pub name: String,
    /// metadata.uid.
    pub uid: String,
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Every seccompd profile that a non-terminated pod references, with the pods (sorted) that
/// reference it.
pub fn profile_users<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> BTreeMap<String, Vec<PodRef>> {
    let mut out: BTreeMap<String, Vec<PodRef>> = BTreeMap::new();
    for pod in pods {
        let profiles = referenced_profiles(pod);
        if profiles.is_empty() {
            continue;
        }
        let who = pod_ref(pod);
        for profile in profiles {
            out.entry(profile).or_default().push(who.clone());
        }
    }
    for users in out.values_mut() {
        users.sort();
        users.dedup();
    }
    out
}

/// The seccompd profiles `pod` references at pod level or in any container, init container or
/// ephemeral container. Empty once the pod has terminated (Succeeded or Failed): it starts no
/// container again, so it needs no file.
pub fn referenced_profiles(pod: &Pod) -> BTreeSet<String> {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return BTreeSet::new();
    }
    let Some(spec) = &pod.spec else {
        return BTreeSet::new();
    };
    let pod_level = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref());
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.security_context.as_ref());
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| c.security_context.as_ref());
    let container_level = containers
        .chain(ephemeral)
        .filter_map(|sc| sc.and_then(|sc| sc.seccomp_profile.as_ref()));
    pod_level
        .into_iter()
        .chain(container_level)
        .filter(|p| p.type_ == "Localhost")
        .filter_map(|p| p.localhost_profile.as_deref())
        .filter_map(seccompd_profile_name)
        .map(str::to_string)
        .collect()
}

/// The seccompd profile a `localhostProfile` value names: `seccompd/<name>.json`, also when
/// written with redundant `/` or `.` components (the kubelet cleans the path before use).
pub fn seccompd_profile_name(localhost_profile: &str) -> Option<&str> {
    let mut parts = localhost_profile
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".");
    match (parts.next(), parts.next(), parts.next()) {
        (Some(PROFILE_SUBDIR), Some(file), None) => profile_of(OsStr::new(file)),
        _ => None,
    }
}

/// The pod's name, namespace and uid.
pub fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

/// Drops everything the agent does not need from a watched pod (names, uid, phase and the
/// seccomp profiles stay), so that the node's pods cost little memory.
pub fn slim(pod: &mut Pod) {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.labels = None;
    meta.owner_references = None;
    pod.spec = pod.spec.take().map(|spec| PodSpec {
        security_context: spec.security_context.map(|sc| PodSecurityContext {
            seccomp_profile: sc.seccomp_profile,
            ..Default::default()
        }),
        containers: spec.containers.into_iter().map(slim_container).collect(),
        init_containers: spec
            .init_containers
            .map(|cs| cs.into_iter().map(slim_container).collect()),
        ephemeral_containers: spec.ephemeral_containers.map(|cs| {
            cs.into_iter()
                .map(|c| EphemeralContainer {
                    name: c.name,
                    security_context: slim_security(c.security_context),
                    ..Default::default()
                })
                .collect()
        }),
        node_name: spec.node_name,
        ..Default::default()
    });
    // The start time tells whether a pod's containers can have read a profile file before a
    // SeccompFloor reached it.
    pod.status = pod.status.take().map(|s| PodStatus {
        phase: s.phase,
        start_time: s.start_time,
        ..Default::default()
    });
}

fn slim_container(c: Container) -> Container {
    Container {
        name: c.name,
        security_context: slim_security(c.security_context),
        ..Default::default()
    }
}

fn slim_security(sc: Option<SecurityContext>) -> Option<SecurityContext> {
    let seccomp_profile: Option<SeccompProfile> = sc?.seccomp_profile;
    Some(SecurityContext {
        seccomp_profile,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn localhost(path: &str) -> serde_json::Value {
        json!({"type": "Localhost", "localhostProfile": path})
    }

    fn pod(name: &str, phase: &str, spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
            "spec": spec,
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    fn container(name: &str, profile: Option<serde_json::Value>) -> serde_json::Value {
        match profile {
            Some(p) => json!({"name": name, "securityContext": {"seccompProfile": p}}),
            None => json!({"name": name}),
        }
    }

    fn names(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    #[test]
    fn every_place_a_pod_can_name_a_profile_counts() {
        let p = pod(
            "all",
            "Running",
            json!({
                "securityContext": {"seccompProfile": localhost("seccompd/pod-level.json")},
                "containers": [
                    container("main", Some(localhost("seccompd/main.json"))),
                    container("plain", None),
                ],
                "initContainers": [container("init", Some(localhost("seccompd/init.json")))],
                "ephemeralContainers": [container("debug", Some(localhost("seccompd/debug.json")))],
            }),
        );
        assert_eq!(
            names(&referenced_profiles(&p)),
            ["debug", "init", "main", "pod-level"]
        );
    }

    #[test]
    fn other_profiles_and_types_are_ignored() {
        let p = pod(
            "others",
            "Running",
            json!({
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    container("a", Some(localhost("other-operator/x.json"))),
                    container("b", Some(localhost("x.json"))),
                    container("c", Some(json!({"type": "Unconfined"}))),
                    container("d", Some(localhost("seccompd/nested/x.json"))),
                    container("e", Some(localhost("seccompd/.hidden.json"))),
                    container("f", Some(localhost("seccompd/x.yaml"))),
                    container("g", Some(json!({"type": "Localhost"}))),
                ],
            }),
        );
        assert!(referenced_profiles(&p).is_empty());
    }

    #[test]
    fn redundant_path_components_name_the_same_file() {
        for path in [
            "seccompd/p.json",
            "seccompd//p.json",
            "./seccompd/p.json",
            "seccompd/./p.json",
        ] {
            assert_eq!(seccompd_profile_name(path), Some("p"), "{path}");
        }
        assert_eq!(seccompd_profile_name("seccompd/"), None);
        assert_eq!(seccompd_profile_name("seccompd"), None);
    }

    #[test]
    fn terminated_pods_need_no_file_but_pending_ones_do() {
        let spec = json!({"containers": [container("c", Some(localhost("seccompd/p.json")))]});
        for phase in ["Succeeded", "Failed"] {
            assert!(referenced_profiles(&pod("done", phase, spec.clone())).is_empty());
        }
        for phase in ["Pending", "Running", "Unknown"] {
            assert_eq!(
                names(&referenced_profiles(&pod("live", phase, spec.clone()))),
                ["p"]
            );
        }
    }

    #[test]
    fn users_are_grouped_by_profile_and_sorted() {
        let uses = |name: &str, profiles: &[&str]| {
            let containers: Vec<_> = profiles
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    container(
                        &format!("c{i}"),
                        Some(localhost(&format!("seccompd/{p}.json"))),
                    )
                })
                .collect();
            pod(name, "Running", json!({"containers": containers}))
        };
        let pods = [
            uses("b", &["shared", "only-b"]),
            uses("a", &["shared", "shared"]),
            uses("c", &[]),
        ];
        let users = profile_users(&pods);
        let shown: Vec<(&str, Vec<String>)> = users
            .iter()
            .map(|(p, who)| (p.as_str(), who.iter().map(ToString::to_string).collect()))
            .collect();
        assert_eq!(
            shown,
            [
                ("only-b", vec!["ns/b".to_string()]),
                ("shared", vec!["ns/a".to_string(), "ns/b".to_string()]),
            ]
        );
        assert_eq!(users["shared"][0].uid, "uid-a");
    }

    #[test]
    fn slimming_keeps_what_the_agent_reads() {
        let mut p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "ns", "uid": "u",
                         "annotations": {"big": "x".repeat(1000)}, "labels": {"a": "b"}},
            "spec": {
                "nodeName": "node1",
                "securityContext": {"runAsUser": 1, "seccompProfile": localhost("seccompd/p.json")},
                "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"],
                                "securityContext": {"privileged": false,
                                  "seccompProfile": localhost("seccompd/c.json")}}],
                "initContainers": [container("i", Some(localhost("seccompd/i.json")))],
                "ephemeralContainers": [container("e", Some(localhost("seccompd/e.json")))],
                "volumes": [{"name": "v", "emptyDir": {}}],
            },
            "status": {"phase": "Running", "podIP": "10.0.0.1"},
        }))
        .unwrap();
        let before = referenced_profiles(&p);
        slim(&mut p);
        assert_eq!(referenced_profiles(&p), before);
        assert_eq!(pod_ref(&p).to_string(), "ns/x");
        assert_eq!(pod_ref(&p).uid, "u");
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.containers[0].image, None);
        assert_eq!(spec.volumes, None);
        assert_eq!(p.metadata.annotations, None);
        assert_eq!(p.status.as_ref().unwrap().pod_ip, None);
        assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
    }
}
