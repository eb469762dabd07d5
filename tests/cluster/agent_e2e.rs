//! End-to-end tests of the agent on the real node of the test cluster: apply, update, delete,
//! invalid specs, restarts. They read and check the files under /var/lib/kubelet/seccomp/seccompd
//! directly, so they run as root on the node's host.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use seccompd_agent::node::manifest::MANIFEST_NAME;
use seccompd_api::{Phase, SeccompProfile, SeccompProfileSpec};
use seccompd_e2e::cluster::{
    self, client, eventually, kubectl, kubectl_ok, node_profile_path, unique,
};
use seccompd_profile::model::ProfileSpec;
use seccompd_profile::render::{Rendered, render};
use seccompd_profile::resolve::resolve;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// An allowlist of `names` plus `execve` (without which no container could start, so the
/// API refuses it).
fn spec(names: &[&str]) -> ProfileSpec {
    let mut names = names.to_vec();
    names.push("execve");
    serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }))
    .expect("a valid spec")
}

fn profile(name: &str, spec: ProfileSpec) -> SeccompProfile {
    SeccompProfile::new(name, SeccompProfileSpec(spec))
}

/// What the agent must write for a profile without base.
fn expected_file(spec: &ProfileSpec) -> Rendered {
    render(&resolve("x", spec, |_| None).expect("no base to resolve"))
}

async fn wait_for_file(name: &str, want: &Rendered) {
    let path = node_profile_path(name);
    eventually(
        &format!("{} to hold the rendered profile", path.display()),
        WAIT,
        || async {
            match fs::read(&path) {
                Ok(bytes) if bytes == *want.bytes => Ok(()),
                Ok(bytes) => Err(format!(
                    "content differs: {}",
                    String::from_utf8_lossy(&bytes)
                )),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
}

async fn wait_for_phase(api: &Api<SeccompProfile>, name: &str, phase: Phase) -> SeccompProfile {
    eventually(&format!("{name} to be {phase:?}"), WAIT, || async {
        let p = api.get(name).await.map_err(|e| e.to_string())?;
        let status = p.status.clone().unwrap_or_default();
        if status.phase == Some(phase) && status.observed_generation == p.metadata.generation {
            Ok(p)
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await
}

/// The status's Ready condition.
fn ready_condition(
    status: &seccompd_api::SeccompProfileStatus,
) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("a Ready condition")
}

#[tokio::test]
async fn crd_from_crds_dir_is_established() {
    let out = kubectl_ok(&[
        "get",
        "crd",
        "seccompprofiles.seccompd.dev",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ]);
    assert_eq!(out.trim(), "True");
}

#[tokio::test]
async fn applied_profile_is_installed_updated_and_removed() {
    let api: Api<SeccompProfile> = Api::all(client().await);
    let name = unique("life");
    let first = spec(&["read", "write", "exit_group"]);
    api.create(&PostParams::default(), &profile(&name, first.clone()))
        .await
        .expect("create profile");

    wait_for_file(&name, &expected_file(&first)).await;
    let installed = wait_for_phase(&api, &name, Phase::Installed).await;
    let status = installed.status.expect("status");
    let everywhere = cluster::installed_everywhere();
    assert_eq!(status.installed.as_deref(), Some(everywhere.as_str()));
    assert_eq!(
        status.localhost_profile.as_deref(),
        Some(format!("seccompd/{name}.json").as_str())
    );
    assert_eq!(status.content_hash, Some(expected_file(&first).hash));
    let ready = ready_condition(&status);
    assert_eq!(ready.status, "True");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(node_profile_path(&name))
            .expect("file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o644);

    let table = kubectl_ok(&["get", "seccompprofiles", &name]);
    for column in [
        "STATUS",
        "INSTALLED",
        "PROFILE",
        "AGE",
        "Installed",
        &everywhere,
    ] {
        assert!(table.contains(column), "{column} missing from:\n{table}");
    }
    assert!(table.contains(&format!("seccompd/{name}.json")), "{table}");

    let second = spec(&["read", "write", "exit_group", "openat"]);
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"syscalls": second.syscalls}})),
    )
    .await
    .expect("update profile");
    wait_for_file(&name, &expected_file(&second)).await;
    let updated = wait_for_phase(&api, &name, Phase::Installed).await;
    assert_eq!(
        updated.status.and_then(|s| s.content_hash),
        Some(expected_file(&second).hash)
    );

    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
    let path = node_profile_path(&name);
    eventually("the file of the deleted profile to go", WAIT, || async {
        if path.exists() {
            Err("still there".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    assert!(
        api.get_opt(&name).await.expect("get").is_none(),
        "deletion never hangs"
    );
}

#[tokio::test]
async fn missing_base_is_reported_and_nothing_is_written() {
    let api: Api<SeccompProfile> = Api::all(client().await);
    let name = unique("orphan-base");
    let mut s = spec(&["read"]);
    s.base_profile_name = Some("no-such-base".into());
    api.create(&PostParams::default(), &profile(&name, s))
        .await
        .expect("create");
    let p = wait_for_phase(&api, &name, Phase::Invalid).await;
    let status = p.status.expect("status");
    let ready = ready_condition(&status);
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains("no-such-base"), "{}", ready.message);
    assert!(
        !node_profile_path(&name).exists(),
        "an invalid profile is never written"
    );
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
}

#[tokio::test]
async fn invalid_update_keeps_the_last_valid_file() {
    let api: Api<SeccompProfile> = Api::all(client().await);
    let name = unique("keep");
    let good = spec(&["read", "write"]);
    api.create(&PostParams::default(), &profile(&name, good.clone()))
        .await
        .expect("create");
    wait_for_phase(&api, &name, Phase::Installed).await;
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"baseProfileName": "missing-base"}})),
    )
    .await
    .expect("update to an invalid spec");
    let p = wait_for_phase(&api, &name, Phase::Invalid).await;
    let status = p.status.expect("status");
    let ready = ready_condition(&status);
    assert!(ready.message.contains("missing-base"), "{}", ready.message);
    assert_eq!(
        fs::read(node_profile_path(&name)).expect("the old file stays"),
        expected_file(&good).bytes.to_vec()
    );
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
}

#[tokio::test]
async fn restarted_agent_repairs_deletions_removes_its_orphans_and_leaves_foreign_files() {
    let api: Api<SeccompProfile> = Api::all(client().await);
    let name = unique("restart");
    let orphan = unique("restart-orphan");
    let s = spec(&["read", "write"]);
    for n in [&name, &orphan] {
        api.create(&PostParams::default(), &profile(n, s.clone()))
            .await
            .expect("create");
        wait_for_file(n, &expected_file(&s)).await;
    }

    kubectl_ok(&[
        "-n",
        "seccompd-system",
        "delete",
        "pod",
        "-l",
        "app.kubernetes.io/component=agent",
        "--wait=true",
    ]);
    // Behind the agent's back while it is down (or just coming back): a file deleted, a
    // profile deleted, and a file of someone else's planted.
    fs::remove_file(node_profile_path(&name)).expect("delete the file");
    api.delete(&orphan, &DeleteParams::default())
        .await
        .expect("delete the orphan's profile");
    let foreign = node_profile_path(&unique("planted-foreign"));
    fs::write(&foreign, b"{\"defaultAction\":\"SCMP_ACT_ALLOW\"}").expect("plant a foreign file");
    kubectl_ok(&[
        "-n",
        "seccompd-system",
        "rollout",
        "status",
        "ds/seccompd-agent",
        "--timeout=120s",
    ]);

    let dir = node_profile_path("x").parent().expect("dir").to_path_buf();
    let foreign_name = foreign
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    eventually("the directory to match the API exactly", WAIT, || async {
        // Every valid profile has its file; one that was never valid has none. The foreign
        // file stays: the agent removes only what it wrote. The built-in default profile is
        // there too.
        let want: BTreeSet<String> = api
            .list(&Default::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase) != Some(Phase::Invalid))
            .map(|p| format!("{}.json", p.name_any()))
            .chain([
                foreign_name.clone(),
                format!("{}.json", seccompd_profile::limits::DEFAULT_PROFILE),
            ])
            .collect();
        let have: BTreeSet<String> = fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != MANIFEST_NAME)
            .collect();
        if want == have {
            Ok(())
        } else {
            Err(format!("want {want:?}, have {have:?}"))
        }
    })
    .await;
    assert_eq!(
        fs::read(node_profile_path(&name)).expect("restored"),
        expected_file(&s).bytes.to_vec()
    );
    assert_eq!(
        fs::read(&foreign).expect("left in place"),
        b"{\"defaultAction\":\"SCMP_ACT_ALLOW\"}"
    );
    fs::remove_file(&foreign).expect("the test removes what it planted");
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
}

#[tokio::test]
async fn examples_apply_cleanly() {
    let out = kubectl(&[
        "apply",
        "-f",
        cluster::repo_path("manifests/examples")
            .to_str()
            .expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "kubectl apply -f manifests/examples/ failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    kubectl_ok(&[
        "delete",
        "-f",
        cluster::repo_path("manifests/examples")
            .to_str()
            .expect("utf-8 path"),
        "--wait=true",
    ]);
}
