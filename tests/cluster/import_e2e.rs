//! The two real-world profiles in `../shared/profiles/` (a CentOS `ls` allowlist and Docker's
//! default profile, in moby format) go through `seccompd import`, `seccompd validate`,
//! `kubectl apply` and the agent onto the node; a pod under the imported Docker default
//! profile runs. The CentOS one warns that it needs `allowPrivilegeEscalation: false`, and a
//! pod that sets it runs too, on node2 (Debian's runc 1.1.5): node1's runc 1.5.3 also calls
//! statx and readlinkat after loading the filter (it reopens its exec FIFO through a checked
//! /proc handle), which that allowlist lacks, and a pod there fails to start ("reopen exec
//! fifo: ... could not get mount id").
//!
//! Needs the test cluster with seccompd deployed (`make cluster-up`); without it the tests
//! fail, none skips itself.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use seccompd_e2e::cluster::{
    self, eventually, kubectl, kubectl_ok, kubectl_stdin, node_profile_path, unique,
};

fn shared_profile(file: &str) -> PathBuf {
    cluster::repo_path("../shared/profiles").join(file)
}

/// Runs the seccompd binary; returns (exit code, stdout, stderr).
fn seccompd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_seccompd"))
        .args(args)
        .output()
        .expect("running seccompd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Imports `file` as `name`, validates the result and applies it; returns validate's output.
fn import_validate_apply(file: &str, name: &str) -> String {
    let path = shared_profile(file);
    let path = path.to_str().expect("utf-8 path");
    let (code, yaml, stderr) = seccompd(&["import", path, "--name", name, "--arch", "amd64"]);
    assert_eq!(code, 0, "seccompd import {file} failed: {stderr}");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tmp = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&tmp, &yaml).expect("writing the imported YAML");
    let (code, report, _) =
        seccompd(&["validate", "--arch", "amd64", tmp.to_str().expect("utf-8")]);
    assert_eq!(
        code, 0,
        "seccompd validate of the imported {file}: {report}"
    );
    let out = kubectl_stdin(&["apply", "-f", "-"], &yaml);
    assert!(
        out.status.success(),
        "kubectl apply of the imported {file} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

async fn wait_for_node_file(name: &str) {
    let path = node_profile_path(name);
    eventually(
        &format!("the agent to install {}", path.display()),
        Duration::from_secs(60),
        || {
            let path = path.clone();
            async move {
                std::fs::read(&path)
                    .map(|_| ())
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
        },
    )
    .await;
}

/// The node whose runtime is Debian's runc 1.1.5 (hack/node2.sh).
const RUNC_1_1_NODE: &str = "node2";

/// A pod running `ls /` under `profile`; on `node` if given, else wherever it is scheduled.
fn pod_yaml(pod: &str, profile: &str, no_escalation: bool, node: Option<&str>) -> String {
    let node_selector = node
        .map(|n| format!("  nodeSelector: {{kubernetes.io/hostname: {n}}}\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {pod}, namespace: default}}
spec:
  restartPolicy: Never
{node_selector}  containers:
  - name: c
    image: docker.io/library/debian:bookworm-slim
    imagePullPolicy: IfNotPresent
    command: ["/usr/bin/ls", "/"]
    securityContext:
      allowPrivilegeEscalation: {allow}
      seccompProfile: {{type: Localhost, localhostProfile: seccompd/{profile}.json}}
"#,
        allow = !no_escalation
    )
}

/// Runs `ls /` in a pod under `profile` (on `node` if given) and waits for it to succeed.
async fn pod_runs(profile: &str, no_escalation: bool, node: Option<&str>) {
    let pod = unique("ls");
    let out = kubectl_stdin(
        &["apply", "-f", "-"],
        &pod_yaml(&pod, profile, no_escalation, node),
    );
    assert!(
        out.status.success(),
        "creating pod {pod}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let phase = eventually(
        &format!("pod {pod} under {profile} to finish"),
        Duration::from_secs(90),
        || {
            let pod = pod.clone();
            async move {
                let out = kubectl(&["get", "pod", &pod, "-o", "jsonpath={.status.phase}"]);
                let phase = String::from_utf8_lossy(&out.stdout).into_owned();
                match phase.as_str() {
                    "Succeeded" | "Failed" => Ok(phase),
                    _ => Err(format!("phase {phase:?}")),
                }
            }
        },
    )
    .await;
    let logs = kubectl_ok(&["logs", &pod]);
    let state = kubectl_ok(&[
        "get",
        "pod",
        &pod,
        "-o",
        "jsonpath={.status.containerStatuses}",
    ]);
    kubectl_ok(&["delete", "pod", &pod, "--wait=false"]);
    assert_eq!(phase, "Succeeded", "pod under {profile}: {state}\n{logs}");
    assert!(logs.lines().any(|l| l == "etc"), "ls / printed: {logs}");
}

#[tokio::test]
async fn docker_default_imports_installs_and_runs_a_pod() {
    let name = unique("docker-default");
    import_validate_apply("docker-default.json", &name);
    wait_for_node_file(&name).await;
    pod_runs(&name, false, None).await;
    kubectl_ok(&["delete", "seccompprofile", &name]);
}

#[tokio::test]
async fn centos_ls_imports_installs_and_runs_without_privilege_escalation() {
    let name = unique("centos8-ls");
    let report = import_validate_apply("centos8-ls.json", &name);
    assert!(
        report.contains("allowPrivilegeEscalation: false") && report.contains("getcwd"),
        "validate should warn about the calls runc makes without no_new_privs: {report}"
    );
    wait_for_node_file(&name).await;
    pod_runs(&name, true, Some(RUNC_1_1_NODE)).await;
    kubectl_ok(&["delete", "seccompprofile", &name]);
}
