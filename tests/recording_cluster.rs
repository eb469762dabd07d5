//! Recording in the cluster (issue 13's acceptance): the seed walkthrough's `ls` profile
//! learned instead of written. The test deploys the opt-in recorder (manifests/recorder) and
//! removes it again; a pod running `ls /` under the built-in `seccompd/record.json`, selected
//! by a SeccompProfileRecording, gives a SeccompProfile; new pods under that profile run
//! `ls /`, and `ls -l /` is denied (EPERM), with the profile set at pod level and at container
//! level. `SECCOMPD_IMAGE` names another image for the recorder than the manifests' one.
//!
//! The recorded pod runs on node1: on this machine node2 is a network namespace of the same
//! kernel, and the kernel sends audit records to the initial network namespace only (node1's,
//! the host's), so node2's recorder hears nothing (see the README).

mod common;

use std::time::Duration;

use common::{
    can_i_list, client, documented_can_i, eventually, installed_everywhere, kubectl, kubectl_ok,
    node_profile_path, repo_path, unique,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use seccompd::api::{RecordingPhase, SeccompProfileRecording};
use seccompd::profile::limits::RECORD_PROFILE;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(180);

/// The image manifests/examples/ use (hack/demo-image.sh packs this machine's Debian `ls`).
const DEBIAN: &str = "docker.io/library/debian:bookworm-slim";

/// The recorder's manifests, applied with kubectl (a kustomize component cannot be applied
/// on its own).
fn recorder_files() -> Vec<String> {
    ["rbac.yaml", "daemonset.yaml"]
        .iter()
        .map(|f| {
            repo_path("manifests/recorder")
                .join(f)
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// The recorder, deployed for the test and removed when dropped.
struct Recorder;

impl Recorder {
    fn deploy() -> Self {
        let files = recorder_files();
        let mut args = vec!["apply"];
        for f in &files {
            args.extend(["-f", f.as_str()]);
        }
        kubectl_ok(&args);
        if let Ok(image) = std::env::var("SECCOMPD_IMAGE") {
            let container = format!("recorder={image}");
            kubectl_ok(&[
                "-n",
                "seccompd-system",
                "set",
                "image",
                "daemonset/seccompd-recorder",
                &container,
            ]);
        }
        kubectl_ok(&[
            "-n",
            "seccompd-system",
            "rollout",
            "status",
            "daemonset/seccompd-recorder",
            "--timeout=120s",
        ]);
        Recorder
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let files = recorder_files();
        let mut args = vec!["delete", "--ignore-not-found", "--wait"];
        for f in &files {
            args.extend(["-f", f.as_str()]);
        }
        let _ = kubectl(&args);
    }
}

/// A pod in `default` that runs `command` from the Debian image under `profile`
/// (a localhostProfile) set at pod level or at the container's, with `labels`.
fn pod(name: &str, command: &[&str], profile: &str, pod_level: bool, labels: Value) -> Pod {
    let seccomp = json!({"type": "Localhost", "localhostProfile": profile});
    let mut container = json!({
        "name": "ls", "image": DEBIAN, "imagePullPolicy": "IfNotPresent", "command": command,
    });
    let mut spec = json!({
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
        "containers": [],
    });
    if pod_level {
        spec["securityContext"] = json!({"seccompProfile": seccomp});
    } else {
        container["securityContext"] = json!({"seccompProfile": seccomp});
    }
    spec["containers"] = json!([container]);
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": spec,
    }))
    .expect("a valid pod")
}

/// Waits until pod `name` has ended; returns its phase.
async fn wait_ended(pods: &Api<Pod>, name: &str) -> String {
    eventually(&format!("pod {name} to end"), WAIT, || async {
        let p = pods.get(name).await.map_err(|e| e.to_string())?;
        let status = p.status.unwrap_or_default();
        match status.phase.as_deref() {
            Some(phase @ ("Succeeded" | "Failed")) => Ok(phase.to_string()),
            other => Err(format!("{other:?} {:?}", status.container_statuses)),
        }
    })
    .await
}

fn logs(pod: &str) -> String {
    kubectl_ok(&["-n", "default", "logs", pod])
}

#[tokio::test]
async fn a_recorded_ls_profile_allows_ls_and_denies_ls_l_at_pod_and_container_level() {
    let client = client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let recordings: Api<SeccompProfileRecording> = Api::namespaced(client.clone(), "default");
    let _recorder = Recorder::deploy();
    // The recorder's identity may do exactly what the README says it may.
    let recorder = "system:serviceaccount:seccompd-system:seccompd-recorder";
    assert_eq!(
        can_i_list(recorder, "seccompd-system"),
        documented_can_i(recorder),
        "`kubectl auth can-i --list --as={recorder}` (left) and the README (right)"
    );
    // Every agent installs the built-in recording profile.
    let record = node_profile_path(RECORD_PROFILE);
    eventually("the agent to install record.json", WAIT, || async {
        record
            .is_file()
            .then_some(())
            .ok_or_else(|| format!("no {}", record.display()))
    })
    .await;
    let app = unique("ls-recorded");
    let profile = unique("ls-learned");

    let recording: SeccompProfileRecording = serde_json::from_value(json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileRecording",
        "metadata": {"name": app, "namespace": "default"},
        "spec": {"podSelector": {"matchLabels": {"app": app}}, "profileName": profile},
    }))
    .expect("a valid recording");
    recordings
        .create(&PostParams::default(), &recording)
        .await
        .expect("create the recording");
    let mut recorded = pod(
        &app,
        &["ls", "/"],
        "seccompd/record.json",
        true,
        json!({"app": app}),
    );
    // node1's recorder is the one that hears this kernel's audit records (see above).
    recorded.spec.as_mut().expect("spec").node_selector =
        Some([("kubernetes.io/hostname".to_string(), "node1".to_string())].into());
    pods.create(&PostParams::default(), &recorded)
        .await
        .expect("create the recorded pod");
    assert_eq!(wait_ended(&pods, &app).await, "Succeeded");
    assert!(
        logs(&app).lines().any(|l| l == "bin"),
        "ls / under record.json"
    );

    let status = eventually("the recording to complete", WAIT, || async {
        let r = recordings.get(&app).await.map_err(|e| e.to_string())?;
        let status = r.status.unwrap_or_default();
        match status.phase {
            Some(RecordingPhase::Completed) => Ok(status),
            Some(RecordingPhase::Failed) => panic!("the recording failed: {status:?}"),
            _ => Err(format!("{status:?}")),
        }
    })
    .await;
    eprintln!("recording status: {status:?}");
    assert_eq!(status.profile.as_deref(), Some(profile.as_str()));
    assert_eq!(status.pods_seen, 1);
    assert!(status.calls_recorded > 10, "{status:?}");
    let spec = kubectl_ok(&["get", "seccompprofile", &profile, "-o", "jsonpath={.spec}"]);
    for name in ["execve", "getdents64"] {
        assert!(
            spec.contains(&format!("\"{name}\"")),
            "{name} missing: {spec}"
        );
    }
    eventually("the recorded profile on every node", WAIT, || async {
        let out = kubectl_ok(&[
            "get",
            "seccompprofile",
            &profile,
            "-o",
            "jsonpath={.status.phase} {.status.installed}",
        ]);
        if out == format!("Installed {}", installed_everywhere()) {
            Ok(())
        } else {
            Err(out)
        }
    })
    .await;

    let localhost = format!("seccompd/{profile}.json");
    let runs = [
        ("pod-ls", &["ls", "/"][..], true),
        ("pod-lsl", &["ls", "-l", "/"][..], true),
        ("ctr-ls", &["ls", "/"][..], false),
        ("ctr-lsl", &["ls", "-l", "/"][..], false),
    ];
    let names: Vec<String> = runs
        .iter()
        .map(|(what, _, _)| format!("{app}-{what}"))
        .collect();
    for ((_, command, pod_level), name) in runs.iter().zip(&names) {
        let p = pod(
            name,
            command,
            &localhost,
            *pod_level,
            json!({"test": "recording"}),
        );
        pods.create(&PostParams::default(), &p)
            .await
            .expect("create a pod under the recorded profile");
    }
    for ((what, _, _), name) in runs.iter().zip(&names) {
        let phase = wait_ended(&pods, name).await;
        let out = logs(name);
        if what.ends_with("-ls") {
            assert_eq!(phase, "Succeeded", "{name}: {out}");
            assert!(out.lines().any(|l| l == "bin"), "{name}: {out}");
        } else {
            // Debian's ls reports each denial and goes on: the denial is the check.
            assert!(
                out.contains("Operation not permitted"),
                "{name} ({phase}): {out}"
            );
        }
    }

    for name in names.iter().chain([&app]) {
        let _ = pods.delete(name, &DeleteParams::default()).await;
    }
    recordings
        .delete(&app, &DeleteParams::default())
        .await
        .expect("delete the recording");
    kubectl_ok(&["delete", "seccompprofile", &profile]);
}
