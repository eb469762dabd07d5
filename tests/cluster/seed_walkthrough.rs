//! The seed walkthrough on the real node, with seccompd doing the copying: the `ls` profile
//! applied as a SeccompProfile confines real containers through containerd and runc.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use seccompd_api::{Phase, SeccompProfile};
use seccompd_e2e::cluster::{client, eventually, kubectl_ok, kubectl_stdin, repo_path, unique};

const WAIT: Duration = Duration::from_secs(120);

fn example(file: &str) -> String {
    repo_path("manifests/examples")
        .join(file)
        .to_string_lossy()
        .into_owned()
}

async fn wait_installed(name: &str) {
    let api: Api<SeccompProfile> = Api::all(client().await);
    eventually(&format!("{name} to be Installed"), WAIT, || async {
        let p = api.get(name).await.map_err(|e| e.to_string())?;
        match p.status.as_ref().and_then(|s| s.phase) {
            Some(Phase::Installed) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

async fn wait_pod_phase(pods: &Api<Pod>, name: &str, phase: &str) {
    eventually(&format!("pod {name} to reach {phase}"), WAIT, || async {
        let pod = pods.get(name).await.map_err(|e| e.to_string())?;
        let status = pod.status.unwrap_or_default();
        if status.phase.as_deref() == Some(phase) {
            Ok(())
        } else {
            Err(format!(
                "{:?} {:?}",
                status.phase, status.container_statuses
            ))
        }
    })
    .await
}

fn logs(pod: &str) -> String {
    kubectl_ok(&["-n", "default", "logs", pod])
}

#[tokio::test]
async fn seed_ls_profile_confines_pods_at_pod_and_container_level() {
    let pods: Api<Pod> = Api::namespaced(client().await, "default");
    kubectl_ok(&["apply", "-f", &example("centos8-ls-profile.yaml")]);
    wait_installed("centos8-ls").await;

    kubectl_ok(&["apply", "-f", &example("pod-level.yaml")]);
    wait_pod_phase(&pods, "seccomp-ls-test", "Succeeded").await;
    let listing = logs("seccomp-ls-test");
    for entry in ["bin", "usr", "proc"] {
        assert!(
            listing.lines().any(|l| l == entry),
            "{entry} missing from `ls /`:\n{listing}"
        );
    }

    kubectl_ok(&["apply", "-f", &example("container-level.yaml")]);
    wait_pod_phase(&pods, "seccomp-mkdir-test", "Failed").await;
    let denied = logs("seccomp-mkdir-test");
    assert!(
        denied.contains("Operation not permitted"),
        "mkdir output:\n{denied}"
    );

    for pod in ["seccomp-ls-test", "seccomp-mkdir-test"] {
        pods.delete(pod, &DeleteParams::default())
            .await
            .expect("delete pod");
    }
    // Leaves the cluster as it found it (`make demo` applies the same profile).
    kubectl_ok(&["delete", "-f", &example("centos8-ls-profile.yaml")]);
}

#[tokio::test]
async fn pod_waits_in_create_container_error_until_its_profile_arrives() {
    let pods: Api<Pod> = Api::namespaced(client().await, "default");
    let profile = unique("late");
    let pod = unique("late-pod");
    kubectl_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"{{"apiVersion": "v1", "kind": "Pod",
                "metadata": {{"name": "{pod}", "namespace": "default"}},
                "spec": {{"restartPolicy": "Never", "containers": [{{
                  "name": "ls", "image": "docker.io/library/debian:bookworm-slim",
                  "imagePullPolicy": "IfNotPresent", "command": ["ls", "/"],
                  "securityContext": {{"allowPrivilegeEscalation": false,
                    "seccompProfile": {{"type": "Localhost", "localhostProfile": "seccompd/{profile}.json"}}}}}}]}}}}"#
        ),
    );
    eventually("the pod to report CreateContainerError", WAIT, || async {
        let p = pods.get(&pod).await.map_err(|e| e.to_string())?;
        let waiting = p
            .status
            .and_then(|s| s.container_statuses)
            .and_then(|cs| cs.into_iter().next())
            .and_then(|c| c.state)
            .and_then(|s| s.waiting);
        match waiting.as_ref().and_then(|w| w.reason.as_deref()) {
            Some("CreateContainerError") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let manifest = std::fs::read_to_string(example("centos8-ls-profile.yaml")).expect("example");
    let renamed = manifest.replace("name: centos8-ls", &format!("name: {profile}"));
    let out = kubectl_stdin(&["apply", "-f", "-"], &renamed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_pod_phase(&pods, &pod, "Succeeded").await;
    assert!(logs(&pod).lines().any(|l| l == "bin"));

    pods.delete(&pod, &DeleteParams::default())
        .await
        .expect("delete pod");
    kubectl_ok(&["delete", "seccompprofile", &profile]);
}
