//! The tools `make deps` builds into its cache (hack/helm-bin.sh, hack/k8s-bins.sh), found
//! as the scripts name them, and running them from the repository. A test fails, naming the
//! fix, when one is missing.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::repo_root;

/// A binary a hack/ script names: the script's stdout, which must be an existing file.
pub fn cached_binary(what: &str, script: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("running bash for the {what} path: {e}"));
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.is_file(),
        "no {what} at {}: run `make deps`",
        path.display()
    );
    path
}

/// Helm: `SECCOMPD_HELM`, or the one hack/helm-bin.sh built (`make deps`).
pub fn helm_bin() -> PathBuf {
    match std::env::var_os("SECCOMPD_HELM") {
        Some(path) => PathBuf::from(path),
        None => cached_binary("helm", "hack/helm-bin.sh --print"),
    }
}

/// The kubectl hack/k8s-bins.sh built (the one `make cluster-up` links into .cluster/bin).
pub fn kubectl_bin() -> PathBuf {
    cached_binary("kubectl", "source hack/lib.sh && echo \"$BIN/kubectl\"")
}

/// Runs `bin ARGS...` in the repository to its end.
pub fn run(bin: PathBuf, args: &[&str]) -> Output {
    Command::new(&bin)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

/// Stdout of a command that must succeed.
pub fn ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
