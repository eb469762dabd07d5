//! Which pod and container a process belongs to, from its `/proc/PID/cgroup`. No I/O.
//!
//! The kubelet puts every container in a cgroup below its pod's, and the container runtime
//! names the container's cgroup after the container's ID. Both cgroup drivers' shapes:
//!
//! - cgroupfs: `/kubepods/besteffort/pod<uid>/<container id>` (`kubepods/pod<uid>/...` for
//!   Guaranteed pods), possibly below a `--cgroup-root` such as `/node2`;
//! - systemd: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with
//!   '_' for '-'>.slice/cri-containerd-<container id>.scope` (`crio-` for CRI-O).
//!
//! Read from inside a cgroup namespace the path is relative (`/../../kubepods/...`); only the
//! pod's and the container's segments matter, wherever they are.

use std::fmt;

/// A pod's `metadata.uid`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodUid(pub String);

/// A container's ID as the runtime knows it: the hex part of a container status's
/// `containerID` (`containerd://<id>`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId(pub String);

impl ContainerId {
    /// The ID of a container status's `containerID` (`<runtime>://<id>`).
    pub fn from_status(container_id: &str) -> Option<Self> {
        let id = container_id.rsplit("://").next()?;
        is_container_id(id).then(|| ContainerId(id.to_string()))
    }
}

impl fmt::Display for PodUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The container a process runs in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribution {
    /// Its pod.
    pub pod: PodUid,
    /// Its container (the pod's sandbox has an ID too, which no container status names).
    pub container: ContainerId,
}

/// The container of a process whose `/proc/PID/cgroup` reads `text`; `None` for a process
/// in no pod's container (the host's own, or a pod's cgroup itself).
pub fn attribute(text: &str) -> Option<Attribution> {
    // cgroup v2 has one line `0::<path>`; on v1 every hierarchy gives the same pod and
    // container, and the first line that names both is taken.
    text.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        attribute_path(path)
    })
}

fn attribute_path(path: &str) -> Option<Attribution> {
    let segments: Vec<&str> = path.split('/').collect();
    let at = segments.iter().position(|s| pod_uid(s).is_some())?;
    let pod = pod_uid(segments[at])?;
    let container = container_id(segments.get(at + 1)?)?;
    Some(Attribution { pod, container })
}

/// The pod UID a cgroup segment names: `pod<uid>` (cgroupfs) or
/// `kubepods[-<qos>]-pod<uid with _>.slice` (systemd).
fn pod_uid(segment: &str) -> Option<PodUid> {
    let uid = match segment.strip_suffix(".slice") {
        Some(slice) if slice.starts_with("kubepods") => {
            slice.rsplit_once("-pod")?.1.replace('_', "-")
        }
        Some(_) => return None,
        None => segment.strip_prefix("pod")?.to_string(),
    };
    is_uid(&uid).then_some(PodUid(uid))
}

/// The container ID a cgroup segment names: `<id>` (cgroupfs) or `<runtime>-<id>.scope`
/// (systemd).
fn container_id(segment: &str) -> Option<ContainerId> {
    let id = match segment.strip_suffix(".scope") {
        Some(scope) => scope.rsplit('-').next()?,
        None => segment,
    };
    is_container_id(id).then(|| ContainerId(id.to_string()))
}

/// A UID as Kubernetes writes it: 8-4-4-4-12 hex digits.
fn is_uid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A container ID as containerd and CRI-O write it: 64 hex digits.
fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    const ID: &str = "3b8c5a5e1d0f4e2a9c7b6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a";

    fn want() -> Option<Attribution> {
        Some(Attribution {
            pod: PodUid(UID.to_string()),
            container: ContainerId(ID.to_string()),
        })
    }

    #[test]
    fn cgroupfs_paths_with_and_without_a_root_and_qos_class() {
        for path in [
            format!("0::/kubepods/besteffort/pod{UID}/{ID}"),
            format!("0::/kubepods/pod{UID}/{ID}"),
            format!("0::/node2/kubepods/burstable/pod{UID}/{ID}"),
            // Read from inside another cgroup namespace.
            format!("0::/../../kubepods/besteffort/pod{UID}/{ID}"),
        ] {
            assert_eq!(attribute(&path), want(), "{path}");
        }
    }

    #[test]
    fn systemd_paths_of_containerd_and_cri_o() {
        let slice_uid = UID.replace('-', "_");
        for path in [
            format!(
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{slice_uid}.slice/cri-containerd-{ID}.scope"
            ),
            format!("0::/kubepods.slice/kubepods-pod{slice_uid}.slice/crio-{ID}.scope"),
        ] {
            assert_eq!(attribute(&path), want(), "{path}");
        }
    }

    #[test]
    fn cgroup_v1_takes_the_first_hierarchy_naming_both() {
        let text = format!("12:pids:/\n11:memory:/kubepods/besteffort/pod{UID}/{ID}\n0::/\n");
        assert_eq!(attribute(&text), want());
    }

    /// As read on the test cluster's machine (cgroup v1, cgroupfs, node2 under /node2).
    #[test]
    fn cgroup_v1_lines_of_this_machine() {
        let text = "9:name=systemd:/node2/kubepods/burstable/pod6a788be9-7e55-4549-b0a6-7077f3a6f2f4/feac2e2d8403bf2c67c06c20809044482dbf72348e941eee09f56e6daaec8651\n8:pids:/node2/kubepods/burstable/pod6a788be9-7e55-4549-b0a6-7077f3a6f2f4/feac2e2d8403bf2c67c06c20809044482dbf72348e941eee09f56e6daaec8651\n";
        assert_eq!(
            attribute(text),
            Some(Attribution {
                pod: PodUid("6a788be9-7e55-4549-b0a6-7077f3a6f2f4".to_string()),
                container: ContainerId(
                    "feac2e2d8403bf2c67c06c20809044482dbf72348e941eee09f56e6daaec8651".to_string()
                ),
            })
        );
        assert_eq!(attribute("9:name=systemd:/\n8:pids:/\n"), None);
    }

    #[test]
    fn host_processes_and_pod_level_cgroups_are_no_container() {
        assert_eq!(attribute("0::/system.slice/containerd.service\n"), None);
        assert_eq!(attribute("0::/init.scope"), None);
        assert_eq!(
            attribute(&format!("0::/kubepods/besteffort/pod{UID}")),
            None
        );
        assert_eq!(
            attribute(&format!("0::/kubepods/besteffort/pod{UID}/short")),
            None
        );
        assert_eq!(attribute("0::/kubepods/besteffort/podnot-a-uid/x"), None);
        assert_eq!(attribute(""), None);
    }

    #[test]
    fn container_ids_from_container_statuses() {
        assert_eq!(
            ContainerId::from_status(&format!("containerd://{ID}")),
            Some(ContainerId(ID.to_string()))
        );
        assert_eq!(ContainerId::from_status("containerd://"), None);
    }
}
