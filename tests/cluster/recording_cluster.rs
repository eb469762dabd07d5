//! Recording in the cluster, and the holes it must not open. The tests deploy the opt-in
//! recorder (manifests/ with the component manifests/recorder, as a user's kustomization adds
//! it) and remove it again; `SECCOMPD_IMAGE` names another image for the recorder than the
//! manifests' one.
//!
//! - Without the recorder no node has `seccompd/record.json`, and whatever the install, no
//!   pod may use it outside a namespace labelled `seccompd.dev/recording=allowed`.
//! - A pod running `ls /` under record.json, selected by a SeccompProfileRecording, gives a
//!   SeccompProfile under which new pods run `ls /` and `ls -l /` is denied, at pod and at
//!   container level.
//! - A recording writes only its own profile; the recorder's and the controller's real,
//!   pod-bound tokens can do no more than docs/security-model.md says.
//! - A recording recreated under the same name starts from nothing; its API requests do not
//!   grow with its duration.
//!
//! Recorded pods run on node1: on this machine node2 is a network namespace of the same
//! kernel, and the kernel sends audit records to the initial network namespace only (node1's,
//! the host's), so node2's recorder hears nothing and says so.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, Patch, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use seccompd_api::{
    RecordingPhase, SeccompProfile, SeccompProfileRecording, SeccompProfileRecordingStatus,
};
use seccompd_e2e::cluster::recorder::{RECORDER_SELECTOR, Recorder, recorder_metric, recorder_pod};
use seccompd_e2e::cluster::tokens::{
    NAMESPACE, allowed, client_with_token, dry_apply, dry_patch, dry_post, forbidden,
    token_bound_to_pod, unbound_token,
};
use seccompd_e2e::cluster::{
    client, eventually, granted_and_documented_can_i, installed_everywhere, kubectl, kubectl_ok,
    node_profile_path, unique,
};
use seccompd_e2e::lifecycle::{create_profile, delete_profile, denylist, wait_agents_rolled_out};
use seccompd_profile::limits::RECORD_PROFILE;
use serde_json::{Value, json};

pub(crate) const WAIT: Duration = Duration::from_secs(180);

/// The image manifests/examples/ use (hack/demo-image.sh packs this machine's Debian `ls`).
const DEBIAN: &str = "docker.io/library/debian:bookworm-slim";

const CONTROLLER_SELECTOR: &str =
    "app.kubernetes.io/name=seccompd,app.kubernetes.io/component=controller";
const RECORDER_SA: &str = "system:serviceaccount:seccompd-system:seccompd-recorder";

/// node2's kubelet root as the host sees it (hack/lib.sh: NODE2_KUBELET_ROOT).
const NODE2_KUBELET_ROOT: &str = "/var/lib/seccompd-e2e/node2/kubelet";

/// The recording profile's file on each node, as the host sees it.
fn record_files() -> Vec<PathBuf> {
    vec![
        node_profile_path(RECORD_PROFILE),
        PathBuf::from(NODE2_KUBELET_ROOT)
            .join("seccomp/seccompd")
            .join(format!("{RECORD_PROFILE}.json")),
    ]
}

/// A namespace for the test, with `labels`, deleted when dropped.
pub(crate) struct TestNamespace(pub(crate) String);

impl TestNamespace {
    pub(crate) async fn create(client: &Client, prefix: &str, labels: Value) -> Self {
        let name = unique(prefix);
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
        }))
        .expect("a namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create the test namespace");
        wait_default_account(&name).await;
        Self(name)
    }

    /// Deletes it and waits until it is gone.
    pub(crate) fn delete(&self) {
        kubectl_ok(&["delete", "namespace", &self.0, "--wait", "--timeout=180s"]);
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&[
            "delete",
            "namespace",
            &self.0,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

/// Waits until namespace `name` has its default ServiceAccount, which pods need.
async fn wait_default_account(name: &str) {
    eventually("the namespace's default ServiceAccount", WAIT, || async {
        let out = kubectl(&["-n", name, "get", "serviceaccount", "default"]);
        out.status
            .success()
            .then_some(())
            .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .await;
}

/// A namespace where recording is allowed.
async fn recording_namespace(client: &Client) -> TestNamespace {
    TestNamespace::create(client, "rec", json!({"seccompd.dev/recording": "allowed"})).await
}

/// A pod in `namespace` that runs `command` from the Debian image under `profile`
/// (a localhostProfile) set at pod level or at the container's, with `labels`, on `node`.
pub(crate) fn pod(
    namespace: &str,
    name: &str,
    command: &[&str],
    profile: &str,
    pod_level: bool,
    labels: Value,
    node: Option<&str>,
) -> Pod {
    let seccomp = json!({"type": "Localhost", "localhostProfile": profile});
    let mut container = json!({
        "name": "main", "image": DEBIAN, "imagePullPolicy": "IfNotPresent", "command": command,
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
    if let Some(node) = node {
        spec["nodeSelector"] = json!({"kubernetes.io/hostname": node});
    }
    spec["containers"] = json!([container]);
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }))
    .expect("a valid pod")
}

/// A recording of the pods labelled `app=<app>` into profile `profile`.
fn recording(namespace: &str, name: &str, app: &str, profile: &str) -> SeccompProfileRecording {
    serde_json::from_value(json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileRecording",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": {"app": app}}, "profileName": profile},
    }))
    .expect("a valid recording")
}

/// Starts recording `name` in `namespace` (pods labelled `app=<app>`, into `profile`) and
/// creates the recorded pod `pod_name` running `command` under record.json on `node`.
async fn start_recording(
    client: &Client,
    namespace: &str,
    name: &str,
    app: &str,
    profile: &str,
    (pod_name, command, node): (&str, &[&str], &str),
) {
    Api::<SeccompProfileRecording>::namespaced(client.clone(), namespace)
        .create(
            &PostParams::default(),
            &recording(namespace, name, app, profile),
        )
        .await
        .expect("create the recording");
    let recorded = pod(
        namespace,
        pod_name,
        command,
        "seccompd/record.json",
        true,
        json!({"app": app}),
        Some(node),
    );
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &recorded)
        .await
        .expect("create the recorded pod");
}

/// Waits until pod `name` has ended; returns its phase.
pub(crate) async fn wait_ended(pods: &Api<Pod>, name: &str) -> String {
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

/// Waits until the recording has ended (Completed or Failed), through one watch (so the
/// wait costs the API server the same number of requests however long it takes).
async fn wait_recording_ended(
    api: &Api<SeccompProfileRecording>,
    name: &str,
) -> SeccompProfileRecordingStatus {
    let ended = |r: Option<&SeccompProfileRecording>| {
        matches!(
            r.and_then(|r| r.status.as_ref()).and_then(|s| s.phase),
            Some(RecordingPhase::Completed | RecordingPhase::Failed)
        )
    };
    let found = tokio::time::timeout(WAIT, await_condition(api.clone(), name, ended))
        .await
        .unwrap_or_else(|_| panic!("recording {name} did not end within {WAIT:?}"))
        .expect("watching the recording");
    found
        .and_then(|r| r.status)
        .expect("an ended recording has a status")
}

pub(crate) fn logs(namespace: &str, pod: &str) -> String {
    kubectl_ok(&["-n", namespace, "logs", pod])
}

/// A client with a token bound to one of the controller's pods.
pub(crate) async fn controller_client() -> Client {
    let controller_node = kubectl_ok(&[
        "-n",
        NAMESPACE,
        "get",
        "pods",
        "-l",
        CONTROLLER_SELECTOR,
        "-o",
        "jsonpath={.items[0].spec.nodeName}",
    ]);
    client_with_token(&token_bound_to_pod(
        "seccompd-controller",
        CONTROLLER_SELECTOR,
        controller_node.trim(),
    ))
    .await
}

/// Waits until the recorder on `node` logged `text` (its probe's verdict).
async fn wait_recorder_log(node: &str, text: &str) {
    let (pod, _) = recorder_pod(node);
    eventually(&format!("{pod} to log {text:?}"), WAIT, || async {
        let out = kubectl_ok(&["-n", NAMESPACE, "logs", &pod]);
        out.contains(text).then_some(()).ok_or(out)
    })
    .await;
}

#[tokio::test]
async fn without_the_recorder_no_node_has_record_json_and_no_namespace_may_use_it() {
    let client = client().await;
    // The agents are ready: each has finished a full sync of its directory.
    wait_agents_rolled_out();
    for file in record_files() {
        assert!(!file.exists(), "{} without the recorder", file.display());
    }
    // A namespace enforcing the restricted Pod Security level, which admits any Localhost
    // profile: the pod below passes it in every other respect.
    let ns = TestNamespace::create(
        &client,
        "restricted",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.0);
    let restricted = |path: &str, pod_level: bool| -> Pod {
        let mut p = pod(&ns.0, "escape", &["true"], path, pod_level, json!({}), None);
        let value = serde_json::to_value(&p).expect("a pod");
        let mut value = value;
        value["spec"]["securityContext"]["runAsNonRoot"] = json!(true);
        value["spec"]["securityContext"]["runAsUser"] = json!(1000);
        value["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
            json!(false);
        value["spec"]["containers"][0]["securityContext"]["capabilities"] =
            json!({"drop": ["ALL"]});
        p = serde_json::from_value(value).expect("a pod");
        p
    };
    // The same file however the path is written (the kubelet joins and cleans it).
    for (path, pod_level) in [
        ("seccompd/record.json", true),
        ("seccompd/record.json", false),
        ("seccompd//record.json", true),
        ("./seccompd/record.json", false),
        ("seccompd/./record.json", true),
    ] {
        let message = forbidden(
            &format!("a pod under {path} (pod level: {pod_level})"),
            pods.create(&dry_post(), &restricted(path, pod_level)).await,
        );
        assert!(
            message.contains(&format!(
                "kubectl label namespace {} seccompd.dev/recording=allowed",
                ns.0
            )),
            "the refusal names the opt-in: {message}"
        );
    }
    // Another seccompd profile is not refused.
    allowed(
        "a pod under another seccompd profile",
        pods.create(&dry_post(), &restricted("seccompd/recorded.json", true))
            .await,
    );
    // The opt-in: an administrator labels the namespace.
    kubectl_ok(&[
        "label",
        "namespace",
        &ns.0,
        "seccompd.dev/recording=allowed",
    ]);
    allowed(
        "a pod under record.json in a namespace that allows recording",
        pods.create(&dry_post(), &restricted("seccompd/record.json", true))
            .await,
    );
}

#[tokio::test]
async fn a_recorded_ls_profile_allows_ls_and_denies_ls_l_at_pod_and_container_level() {
    let client = client().await;
    let _recorder = Recorder::deploy();
    let ns = recording_namespace(&client).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.0);
    let recordings: Api<SeccompProfileRecording> = Api::namespaced(client.clone(), &ns.0);
    // The recorder's identity may do exactly what docs/security-model.md says it may.
    let (granted, documented) = granted_and_documented_can_i(RECORDER_SA, NAMESPACE);
    assert_eq!(
        granted, documented,
        "`kubectl auth can-i --list --as={RECORDER_SA}` (left) and docs/security-model.md (right)"
    );
    // With the recorder, every agent installs the built-in recording profile.
    for file in record_files() {
        eventually("the agents to install record.json", WAIT, || async {
            file.is_file()
                .then_some(())
                .ok_or_else(|| format!("no {}", file.display()))
        })
        .await;
    }
    let app = unique("ls-recorded");
    let profile = unique("ls-learned");
    start_recording(
        &client,
        &ns.0,
        &app,
        &app,
        &profile,
        (&app, &["ls", "/"], "node1"),
    )
    .await;
    assert_eq!(wait_ended(&pods, &app).await, "Succeeded");
    assert!(
        logs(&ns.0, &app).lines().any(|l| l == "bin"),
        "ls / under record.json"
    );

    let status = wait_recording_ended(&recordings, &app).await;
    eprintln!("recording status: {status:?}");
    assert_eq!(status.phase, Some(RecordingPhase::Completed), "{status:?}");
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
    // node1's recorder heard its records; its metrics say so.
    assert_eq!(
        recorder_metric("node1", "seccompd_recorder_audit_available"),
        Some(1.0)
    );
    assert!(
        recorder_metric("node1", "seccompd_recorder_records_attributed_total")
            .is_some_and(|n| n >= f64::from(status.calls_recorded)),
        "every recorded call was attributed at least once"
    );

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
            &ns.0,
            name,
            command,
            &localhost,
            *pod_level,
            json!({"test": "recording"}),
            None,
        );
        pods.create(&PostParams::default(), &p)
            .await
            .expect("create a pod under the recorded profile");
    }
    for ((what, _, _), name) in runs.iter().zip(&names) {
        let phase = wait_ended(&pods, name).await;
        let out = logs(&ns.0, name);
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
    ns.delete();
    kubectl_ok(&["delete", "seccompprofile", &profile]);
}

/// A recording aimed at a profile someone wrote by hand fails and leaves it as it was; the
/// recorder's token cannot touch any profile, nor another node's part or the outcome; the
/// controller's can create only recorded profiles and update only those.
#[tokio::test]
async fn a_recording_writes_only_its_own_profile_and_tokens_can_do_no_more() {
    let client = client().await;
    let _recorder = Recorder::deploy();
    let ns = recording_namespace(&client).await;
    let theirs = unique("theirs");
    create_profile(&client, &theirs, &denylist(&["mkdir"])).await;
    let before = kubectl_ok(&[
        "get",
        "seccompprofile",
        &theirs,
        "-o",
        "jsonpath={.metadata.generation} {.spec}",
    ]);

    // A namespace user's recording aimed at it, with a pod that calls a lot.
    let app = unique("aimed");
    let recordings: Api<SeccompProfileRecording> = Api::namespaced(client.clone(), &ns.0);
    start_recording(
        &client,
        &ns.0,
        &app,
        &app,
        &theirs,
        (&app, &["ls", "-l", "/"], "node1"),
    )
    .await;
    let status = wait_recording_ended(&recordings, &app).await;
    assert_eq!(status.phase, Some(RecordingPhase::Failed), "{status:?}");
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains(&format!("SeccompProfile {theirs} already exists")),
        "{message}"
    );
    let after = kubectl_ok(&[
        "get",
        "seccompprofile",
        &theirs,
        "-o",
        "jsonpath={.metadata.generation} {.spec}",
    ]);
    assert_eq!(
        before, after,
        "the profile's spec is byte-for-byte unchanged"
    );

    // The recorder's own token, bound to its pod on node1.
    let recorder = client_with_token(&token_bound_to_pod(
        "seccompd-recorder",
        RECORDER_SELECTOR,
        "node1",
    ))
    .await;
    let profiles: Api<SeccompProfile> = Api::all(recorder.clone());
    forbidden(
        "the recorder patching a profile it did not record",
        profiles
            .patch(
                &theirs,
                &dry_patch(),
                &Patch::Merge(json!({"spec": {"defaultAction": "SCMP_ACT_ALLOW"}})),
            )
            .await,
    );
    let fresh = SeccompProfile::new(&unique("fresh"), theirs_spec(&client, &theirs).await);
    forbidden(
        "the recorder creating a profile",
        profiles.create(&dry_post(), &fresh).await,
    );
    let parts: Api<SeccompProfileRecording> = Api::namespaced(recorder.clone(), &ns.0);
    let part = |node: &str, extra: Value| {
        let mut body = json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileRecording",
            "metadata": {"name": app, "namespace": ns.0},
            "status": {"nodes": [{"nodeName": node, "finished": true, "lostRecords": 0}]},
        });
        if let Some(map) = extra.as_object() {
            for (k, v) in map {
                body["status"][k] = v.clone();
            }
        }
        Patch::Apply(body)
    };
    let manager = "seccompd-recorder-node1";
    allowed(
        "the recorder writing its own node's part",
        parts
            .patch_status(&app, &dry_apply(manager), &part("node1", json!({})))
            .await,
    );
    let message = forbidden(
        "the recorder writing node2's part",
        parts
            .patch_status(&app, &dry_apply(manager), &part("node2", json!({})))
            .await,
    );
    assert!(message.contains("its own node's"), "{message}");
    forbidden(
        "the recorder writing the outcome",
        parts
            .patch_status(
                &app,
                &dry_apply(manager),
                &part("node1", json!({"phase": "Completed"})),
            )
            .await,
    );
    let unbound = client_with_token(&unbound_token("seccompd-recorder")).await;
    forbidden(
        "a recorder token bound to no pod writing a part",
        Api::<SeccompProfileRecording>::namespaced(unbound, &ns.0)
            .patch_status(&app, &dry_apply(manager), &part("node1", json!({})))
            .await,
    );

    // The controller's token, bound to one of its pods: it writes recorded profiles only.
    let controller = controller_client().await;
    let profiles: Api<SeccompProfile> = Api::all(controller);
    let message = forbidden(
        "the controller patching a hand-written profile",
        profiles
            .patch(
                &theirs,
                &dry_patch(),
                &Patch::Merge(json!({"spec": {"defaultAction": "SCMP_ACT_ALLOW"}})),
            )
            .await,
    );
    assert!(message.contains("a recording created"), "{message}");
    forbidden(
        "the controller creating a profile no recording records",
        profiles.create(&dry_post(), &fresh).await,
    );
    forbidden(
        "the controller deleting a profile",
        profiles.delete(&theirs, &dry_delete()).await,
    );

    ns.delete();
    delete_profile(&client, &theirs).await;
}

fn dry_delete() -> DeleteParams {
    DeleteParams {
        dry_run: true,
        ..Default::default()
    }
}

async fn theirs_spec(client: &Client, name: &str) -> seccompd_api::SeccompProfileSpec {
    Api::<SeccompProfile>::all(client.clone())
        .get(name)
        .await
        .expect("the profile")
        .spec
}

/// Recorded in namespace X as recording R with its pod on node2 (whose recorder cannot hear
/// audit records here), then X deleted and R created anew with its pod on node1: the new R
/// knows nothing of the old pod and completes with node1's alone.
#[tokio::test]
async fn a_recording_recreated_under_its_name_starts_from_nothing() {
    let client = client().await;
    let _recorder = Recorder::deploy();
    // Each recorder's probe has come back (or not): node2's says it cannot hear.
    wait_recorder_log(
        "node1",
        "heard the audit record of this recorder's own probe",
    )
    .await;
    wait_recorder_log("node2", "cannot hear the kernel's audit records").await;
    assert_eq!(
        recorder_metric("node2", "seccompd_recorder_audit_available"),
        Some(0.0)
    );
    let prefix = unique("same");
    let name = "r";
    let profile = unique("same-name");
    let run = |node: &'static str| {
        let client = client.clone();
        let prefix = prefix.clone();
        let profile = profile.clone();
        async move {
            let ns_name = prefix.clone();
            let ns: Namespace = serde_json::from_value(json!({
                "metadata": {"name": ns_name, "labels": {"seccompd.dev/recording": "allowed"}},
            }))
            .expect("a namespace");
            Api::<Namespace>::all(client.clone())
                .create(&PostParams::default(), &ns)
                .await
                .expect("create the namespace");
            wait_default_account(&ns_name).await;
            let recordings: Api<SeccompProfileRecording> =
                Api::namespaced(client.clone(), &ns_name);
            let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);
            let pod_name = format!("on-{node}");
            start_recording(
                &client,
                &ns_name,
                name,
                "same",
                &profile,
                (&pod_name, &["ls", "/"], node),
            )
            .await;
            wait_ended(&pods, &pod_name).await;
            (ns_name, wait_recording_ended(&recordings, name).await)
        }
    };
    let (ns_name, first) = run("node2").await;
    assert_eq!(first.phase, Some(RecordingPhase::Failed), "{first:?}");
    let message = first.message.clone().unwrap_or_default();
    assert!(
        message.contains("node2") && message.contains("cannot hear"),
        "{message}"
    );
    kubectl_ok(&["delete", "namespace", &ns_name, "--wait", "--timeout=180s"]);

    let (ns_name, second) = run("node1").await;
    let _cleanup = TestNamespace(ns_name.clone());
    assert_eq!(second.phase, Some(RecordingPhase::Completed), "{second:?}");
    let recordings: Api<SeccompProfileRecording> = Api::namespaced(client.clone(), &ns_name);
    let parts = recordings
        .get_status(name)
        .await
        .expect("the recording")
        .status
        .unwrap_or_default()
        .nodes;
    let seen: Vec<(&str, Vec<String>)> = parts
        .iter()
        .map(|p| (p.node_name.as_str(), p.pods.clone()))
        .collect();
    assert_eq!(seen, [("node1", vec!["on-node1".to_string()])], "{parts:?}");
    assert_eq!(second.pods_seen, 1);
    kubectl_ok(&["delete", "seccompprofile", &profile]);
}

/// The sum of kube-apiserver's `apiserver_request_total` for SeccompProfileRecordings.
fn recording_requests() -> f64 {
    kubectl_ok(&["get", "--raw", "/metrics"])
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_request_total{")
                && l.contains("resource=\"seccompprofilerecordings\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// A recording of a pod running `seconds` long (on node1), start to end: the API requests
/// on SeccompProfileRecordings it cost (the test's own: one create, one watch).
async fn requests_of_a_recording(client: &Client, seconds: u32) -> f64 {
    let ns = recording_namespace(client).await;
    let app = unique("long");
    let recordings: Api<SeccompProfileRecording> = Api::namespaced(client.clone(), &ns.0);
    let script =
        format!("i=0; while [ $i -lt {seconds} ]; do ls / >/dev/null; sleep 1; i=$((i+1)); done");
    let before = recording_requests();
    let started = Instant::now();
    start_recording(
        client,
        &ns.0,
        &app,
        &app,
        &unique("long"),
        (&app, &["sh", "-c", &script], "node1"),
    )
    .await;
    let status = wait_recording_ended(&recordings, &app).await;
    let requests = recording_requests() - before;
    assert_eq!(status.phase, Some(RecordingPhase::Completed), "{status:?}");
    eprintln!(
        "a recording of a pod running {seconds} s: {requests} API requests on SeccompProfileRecordings in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let profile = status
        .profile
        .expect("a completed recording names its profile");
    ns.delete();
    kubectl_ok(&["delete", "seccompprofile", &profile]);
    requests
}

#[tokio::test]
async fn a_recordings_api_requests_do_not_grow_with_its_duration() {
    let client = client().await;
    let _recorder = Recorder::deploy();
    let short = requests_of_a_recording(&client, 5).await;
    let long = requests_of_a_recording(&client, 60).await;
    println!("recording requests: 5 s pod {short}, 60 s pod {long}");
    // A recorder polling the API server would add a few requests per second of the pod's run
    // (the design before: a read and a pod list per second per node, over 240 here). Writes
    // follow changes: a call the longer run made late (a signal's rt_sigreturn, say) is one
    // more part and one more outcome write, so the bound is a factor, not an equality.
    assert!(
        long <= short * 2.0 && long < 60.0,
        "a 60 s recording cost {long} requests, a 5 s one {short}"
    );
}
