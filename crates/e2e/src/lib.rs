//! What runs against the test cluster (`make cluster-up`) and is not part of seccompd: the
//! helpers of the cluster tests (`tests/cluster/`, one test binary), the benches under
//! `benches/`, and the results files they write (`docs/results/`). Nothing here ships.

pub mod apimetrics;
pub mod cargo_output;
pub mod cluster;
pub mod faults;
pub mod floor_figures;
pub mod interrupt;
pub mod lifecycle;
pub mod procs;
pub mod projection;
pub mod results;
pub mod stats;
pub mod tools;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The repository's top directory (this crate is `crates/e2e` in it).
pub fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest_dir.join("../.."), PathBuf::from)
}

/// Names the agent executable a bench runs, instead of the one [`agent_binary`] builds.
pub const AGENT_BINARY_ENV: &str = "SECCOMPD_AGENT_BIN";

/// The binary target of the node agent (`src/bin/seccompd-agent.rs`).
pub const AGENT_BINARY: &str = "seccompd-agent";

/// The agent executable for a bench that runs agents itself: the file `SECCOMPD_AGENT_BIN`
/// names, or else this checkout's release build, which cargo brings up to date first (the
/// benches are built with the release settings too, so that build shares their dependencies).
/// A bench crate cannot name another package's binary (`CARGO_BIN_EXE_*` is for the package's
/// own tests), so it asks cargo where the binary is.
pub fn agent_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(AGENT_BINARY_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{AGENT_BINARY_ENV}={}: no such file",
                path.display()
            ))
        };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "seccompd",
            "--bin",
            AGENT_BINARY,
        ])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(repo_root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {}: {e}", cargo.to_string_lossy()))?;
    let stdout = child.stdout.take().ok_or("cargo's stdout is not piped")?;
    let executable = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| built_binary(&line, AGENT_BINARY))
        .last();
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    match executable {
        Some(path) if status.success() => Ok(path),
        _ => Err(format!(
            "`cargo build --release --bin {AGENT_BINARY}` failed ({status}); or set {AGENT_BINARY_ENV}"
        )),
    }
}

/// The executable of binary target `name` when `line` (of `cargo build
/// --message-format=json`) reports it built.
fn built_binary(line: &str, name: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    let target = &message["target"];
    let is_it = message["reason"] == "compiler-artifact"
        && target["name"] == name
        && target["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
    is_it
        .then(|| message["executable"].as_str().map(PathBuf::from))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"), "{manifest}");
    }

    #[test]
    fn the_built_binary_is_read_from_cargos_messages() {
        let bin = r#"{"reason":"compiler-artifact","target":{"name":"seccompd","kind":["bin"]},"executable":"/t/release/seccompd"}"#;
        assert_eq!(
            built_binary(bin, "seccompd"),
            Some(PathBuf::from("/t/release/seccompd"))
        );
        let lib = r#"{"reason":"compiler-artifact","target":{"name":"seccompd","kind":["lib"]},"executable":null}"#;
        assert_eq!(built_binary(lib, "seccompd"), None);
        let other = bin.replace("\"seccompd\",", "\"seccompd-e2e\",");
        assert_eq!(built_binary(&other, "seccompd"), None);
        assert_eq!(built_binary("Compiling seccompd", "seccompd"), None);
    }
}
