//! A node of the test cluster as this host sees it: node2's kubelet root and /var/lib are
//! directories of the host (hack/node2.sh), so a path on the node, and a symlink on the node
//! that points to an absolute path (SPO's `seccomp/operator`), is found here by mapping.

use std::path::{Component, Path, PathBuf};

/// The kubelet root on every node (the kubelet's default).
const KUBELET_ROOT: &str = "/var/lib/kubelet";
/// Symlinks followed at most while resolving one path.
const MAX_LINKS: usize = 8;

#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    /// The node's kubelet root on this host.
    pub root: PathBuf,
    /// The node's /var/lib on this host.
    pub var_lib: PathBuf,
}

impl Node {
    /// Where `path`, absolute as the node's processes see it, is on this host.
    fn host_path(&self, path: &Path) -> PathBuf {
        if let Ok(rest) = path.strip_prefix(KUBELET_ROOT) {
            self.root.join(rest)
        } else if let Ok(rest) = path.strip_prefix("/var/lib") {
            self.var_lib.join(rest)
        } else {
            path.to_path_buf()
        }
    }

    /// Where `relative` (below the kubelet root) is on this host, its symlinks followed as the
    /// node would follow them. What does not exist is joined as it is.
    pub fn file(&self, relative: &Path) -> PathBuf {
        let mut on_node = PathBuf::from(KUBELET_ROOT);
        let mut links = 0;
        for part in relative.components() {
            match part {
                Component::Normal(p) => on_node.push(p),
                Component::ParentDir => {
                    on_node.pop();
                }
                _ => {}
            }
            while links < MAX_LINKS {
                let Ok(target) = std::fs::read_link(self.host_path(&on_node)) else {
                    break;
                };
                links += 1;
                on_node = match on_node.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
        }
        self.host_path(&on_node)
    }
}
