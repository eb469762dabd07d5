//! A mixed fleet, as the local cluster is one: node1 runs runc 1.5.3, node2 Debian's runc 1.1.5,
//! each node labelled with its runtime (`seccompd.dev/runtime`, set by hack/cluster-up.sh and
//! hack/node2.sh through the kubelets' `--node-labels`). Each agent judges profiles for its own
//! node's runtime, and what only its runtime warns of reaches the profile's status; a profile
//! in Audit mode lets through what it would refuse, and the status shows the mode the nodes
//! run.

use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams};
use seccompd_api::SeccompProfile;
use seccompd_api::node_report::SeccompNodeReport;
use seccompd_e2e::cluster::{client, kubectl, node_profile_path, unique};
use seccompd_e2e::lifecycle::{
    create_pod, create_profile, delete_pod, delete_profile, denylist, rendered, shown_column,
    sleeper, wait_for_bytes, wait_running, wait_status,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn each_node_reports_the_runtime_it_judges_for() {
    let client = client().await;
    let reports: Api<SeccompNodeReport> = Api::all(client);
    for (node, runtime) in [("node1", "runc/1.5.3"), ("node2", "runc/1.1.5")] {
        let report = reports.get(node).await.expect("the node's report");
        let said = report.spec.runtime.unwrap_or_default();
        assert!(
            said.starts_with(runtime) && said.contains("node label seccompd.dev/runtime"),
            "{node}: {said}"
        );
    }
}

#[tokio::test]
async fn a_profile_with_flags_is_installed_where_the_runtime_accepts_them() {
    let client = client().await;
    let name = unique("flags");
    let mut spec = denylist(&["mkdir", "mkdirat"]);
    spec.flags = serde_json::from_value(json!(["SECCOMP_FILTER_FLAG_LOG"])).expect("a flag");
    let want = create_profile(&client, &name, &spec).await;
    wait_for_bytes(&node_profile_path(&name), &want.bytes, WAIT).await;
    let status = wait_status(&name, "Partial", "1/2", WAIT).await;
    delete_profile(&client, &name).await;
    let lagging = status["nodes"].as_array().expect("the nodes without it");
    assert_eq!(lagging.len(), 1, "{status}");
    assert_eq!(lagging[0]["nodeName"], "node2", "{status}");
    let reason = lagging[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("runc/1.1.5") && reason.contains("refuses any flag"),
        "node2's reason names its runtime: {status}"
    );
}

#[tokio::test]
async fn an_audited_profile_lets_through_what_enforcing_it_refuses() {
    let client = client().await;
    let name = unique("audit");
    let mut spec = denylist(&["mkdir", "mkdirat"]);
    spec.mode = seccompd_profile::model::Mode::Audit;
    let want = create_profile(&client, &name, &spec).await;
    wait_for_bytes(&node_profile_path(&name), &want.bytes, WAIT).await;
    let status = wait_status(&name, "Installed", "2/2", WAIT).await;
    assert_eq!(status["mode"], "Audit", "{status}");
    assert_eq!(shown_column(&name, "MODE"), "Audit");

    let localhost = format!("seccompd/{name}.json");
    let audited_pod = unique("audited");
    create_pod(&client, &sleeper(&audited_pod, Some(&localhost), None)).await;
    wait_running(&client, &audited_pod).await;
    let made = kubectl(&["exec", &audited_pod, "--", "mkdir", "/made"]);
    assert!(
        made.status.success(),
        "Audit lets mkdir run: {}",
        String::from_utf8_lossy(&made.stderr)
    );

    // Switching to Enforce changes the file; containers started afterwards are refused.
    let api: Api<SeccompProfile> = Api::all(client.clone());
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"mode": "Enforce"}})),
    )
    .await
    .expect("switch the mode");
    spec.mode = seccompd_profile::model::Mode::Enforce;
    let enforced = rendered(&spec);
    assert_ne!(enforced.bytes, want.bytes);
    wait_for_bytes(&node_profile_path(&name), &enforced.bytes, WAIT).await;
    // Both nodes take the enforced file: the status says so once both confirmed it.
    let status = wait_status(&name, "Installed", "2/2", WAIT).await;
    assert_eq!(status["mode"], "Enforce", "{status}");
    assert_eq!(shown_column(&name, "MODE"), "Enforce");
    let enforced_pod = unique("enforced");
    create_pod(&client, &sleeper(&enforced_pod, Some(&localhost), None)).await;
    wait_running(&client, &enforced_pod).await;
    let out = kubectl(&["exec", &enforced_pod, "--", "mkdir", "/made"]);
    let refused = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "Enforce refuses mkdir");
    assert!(refused.contains("Operation not permitted"), "{refused}");
    // The running audited container keeps the filter it started with.
    let again = kubectl(&["exec", &audited_pod, "--", "mkdir", "/again"]);
    assert!(
        again.status.success(),
        "the running audited pod is unchanged"
    );
    delete_pod(&client, &audited_pod).await;
    delete_pod(&client, &enforced_pod).await;
    delete_profile(&client, &name).await;
}

/// An allowlist with everything runc 1.1 calls after loading the filter but not what runc 1.5
/// also calls (statx, readlinkat): both nodes install it (it is valid), node1's agent warns
/// that no container starts under it there, and that warning, naming node1's runtime, reaches
/// the profile's status; node2 has nothing to warn of.
#[tokio::test]
async fn a_runc_1_5_node_warns_in_the_status_of_an_allowlist_without_statx() {
    let client = client().await;
    let name = unique("no-statx");
    let spec: seccompd_profile::model::ProfileSpec = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": [
            "access", "arch_prctl", "brk", "capget", "capset", "chdir", "close", "execve",
            "exit_group", "fcntl", "fstat", "fstatfs", "futex", "getcwd", "getdents64",
            "getppid", "mmap", "mprotect", "newfstatat", "openat", "prctl", "read",
            "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "setgid", "setgroups", "setresgid",
            "setresuid", "setuid", "write"]}],
    }))
    .expect("an allowlist");
    create_profile(&client, &name, &spec).await;
    // Installed on both: node2's report, which confirms it, is in the status too.
    let status = wait_status(&name, "Installed", "2/2", WAIT).await;
    delete_profile(&client, &name).await;
    let warnings = status["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "only node1 warns: {status}");
    assert_eq!(warnings[0]["nodeName"], "node1", "{status}");
    let message = warnings[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("runc/1.5.3")
            && message.contains("readlinkat, statx after loading the filter"),
        "node1's warning names its runtime and the calls: {message}"
    );
}
