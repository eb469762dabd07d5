//! The exact requests the decider makes, against a scripted API server.

use http::{Method, StatusCode};
use kube::runtime::reflector::{self, Store};
use serde_json::{Value, json};

use super::*;
use seccompd_runtime::apiserver::mock::mock_client;

const STATUS: &str =
    "/apis/seccompd.dev/v1alpha1/namespaces/default/seccompprofilerecordings/rec/status";
const PROFILES: &str = "/apis/seccompd.dev/v1alpha1/seccompprofiles";

fn recording(version: &str) -> SeccompProfileRecording {
    serde_json::from_value(recording_json(version)).unwrap()
}

fn recording_json(version: &str) -> Value {
    json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileRecording",
        "metadata": {"name": "rec", "namespace": "default", "uid": "rec-uid",
                     "resourceVersion": version},
        "spec": {"podSelector": {"matchLabels": {"app": "ls"}}, "profileName": "ls"},
        "status": {"nodes": [{"nodeName": "node1", "pods": ["ls-1"], "finished": true,
            "lostRecords": 0, "arch": "SCMP_ARCH_X86_64",
            "calls": [{"arch": "SCMP_ARCH_X86_64", "names": ["read", "write"]}]}]},
    })
}

fn store<K: Clone + kube::Resource<DynamicType = ()>>(objects: Vec<K>) -> Store<K> {
    let (store, mut writer) = reflector::store();
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::Apply(o));
    }
    store
}

fn ended_pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "ls-1", "namespace": "default", "uid": "pod-uid",
                     "labels": {"app": "ls"}},
        "spec": {"nodeName": "node1", "containers": [{"name": "main"}]},
        "status": {"phase": "Succeeded"},
    }))
    .unwrap()
}

fn profile_meta(annotations: Value) -> PartialObjectMeta<SeccompProfile> {
    serde_json::from_value(json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
        "metadata": {"name": "ls", "resourceVersion": "40", "annotations": annotations},
    }))
    .unwrap()
}

fn decider(client: Client) -> Decider {
    Decider {
        client,
        fallback_arch: Arch::X86_64,
        written_from: HashMap::new(),
    }
}

/// A recording whose pod ended and whose node's part is final: the profile is created (with
/// the recording's uid), then the outcome is written over the version decided from, to this
/// recording only; deciding again from the same version writes nothing.
#[tokio::test]
async fn a_completed_recording_creates_its_profile_then_writes_its_outcome_once() {
    let (client, mut api) = mock_client();
    let mut decider = decider(client);
    let rec = recording("7");
    let pods = store(vec![ended_pod()]);
    let profiles = store::<PartialObjectMeta<SeccompProfile>>(vec![]);
    let server = tokio::spawn(async move {
        let created = api
            .expect(
                Method::POST,
                PROFILES,
                &["fieldManager=seccompd-recording-decider"],
                StatusCode::CREATED,
                json!({"apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
                       "metadata": {"name": "ls"}, "spec": {"defaultAction": "SCMP_ACT_ERRNO"}}),
            )
            .await;
        let meta = &created.body["metadata"];
        assert_eq!(meta["name"], "ls");
        assert_eq!(meta["annotations"][RECORDING_UID], "rec-uid");
        assert_eq!(meta["annotations"][RECORDED_BY], "default/rec");
        assert_eq!(created.body["spec"]["defaultAction"], "SCMP_ACT_ERRNO");
        let names = created.body["spec"]["syscalls"][0]["names"].clone();
        for name in ["read", "write", "rt_sigreturn"] {
            assert!(names.as_array().unwrap().contains(&json!(name)), "{names}");
        }
        let outcome = api
            .expect(
                Method::PATCH,
                STATUS,
                &["fieldManager=seccompd-recording-decider", "force=true"],
                StatusCode::OK,
                recording_json("8"),
            )
            .await;
        assert_eq!(outcome.body["metadata"]["resourceVersion"], "7");
        assert_eq!(outcome.body["metadata"]["uid"], "rec-uid");
        let status = &outcome.body["status"];
        assert_eq!(status["phase"], "Completed");
        assert_eq!(status["profile"], "ls");
        assert_eq!(
            (&status["podsSeen"], &status["callsRecorded"]),
            (&json!(1), &json!(2))
        );
        assert!(
            status.get("nodes").is_none(),
            "each node writes its own part"
        );
        api
    });
    decider.decide_one(&rec, &pods, &profiles).await.unwrap();
    decider.decide_one(&rec, &pods, &profiles).await.unwrap();
    drop(decider);
    server.await.unwrap().expect_no_more().await;
}

/// A profile of that name that this recording did not create: the recording fails, and the
/// profile is neither created nor patched.
#[tokio::test]
async fn a_recording_aimed_at_someone_elses_profile_fails_and_writes_no_profile() {
    for annotations in [json!({}), json!({RECORDING_UID: "other-uid"})] {
        let (client, mut api) = mock_client();
        let mut decider = decider(client);
        let rec = recording("7");
        let pods = store(vec![ended_pod()]);
        let profiles = store(vec![profile_meta(annotations)]);
        let server = tokio::spawn(async move {
            let outcome = api
                .expect(
                    Method::PATCH,
                    STATUS,
                    &["fieldManager=seccompd-recording-decider", "force=true"],
                    StatusCode::OK,
                    recording_json("8"),
                )
                .await;
            let status = &outcome.body["status"];
            assert_eq!(status["phase"], "Failed");
            let message = status["message"].as_str().unwrap();
            assert!(
                message.contains("SeccompProfile ls already exists"),
                "{message}"
            );
            api
        });
        decider.decide_one(&rec, &pods, &profiles).await.unwrap();
        drop(decider);
        server.await.unwrap().expect_no_more().await;
    }
}

/// The profile it created (a create whose outcome write failed, say): updated over the
/// version seen, with its recording's uid kept.
#[tokio::test]
async fn its_own_profile_is_updated_over_the_version_seen() {
    let (client, mut api) = mock_client();
    let mut decider = decider(client);
    let rec = recording("7");
    let pods = store(vec![ended_pod()]);
    let profiles = store(vec![profile_meta(json!({RECORDING_UID: "rec-uid"}))]);
    let server = tokio::spawn(async move {
        let patched = api
            .expect(
                Method::PATCH,
                &format!("{PROFILES}/ls"),
                &["fieldManager=seccompd-recording-decider", "force=true"],
                StatusCode::OK,
                json!({"apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
                       "metadata": {"name": "ls"}, "spec": {"defaultAction": "SCMP_ACT_ERRNO"}}),
            )
            .await;
        assert_eq!(patched.body["metadata"]["resourceVersion"], "40");
        assert_eq!(
            patched.body["metadata"]["annotations"][RECORDING_UID],
            "rec-uid"
        );
        api.expect(
            Method::PATCH,
            STATUS,
            &["fieldManager=seccompd-recording-decider", "force=true"],
            StatusCode::OK,
            recording_json("8"),
        )
        .await;
        api
    });
    decider.decide_one(&rec, &pods, &profiles).await.unwrap();
    drop(decider);
    server.await.unwrap().expect_no_more().await;
}
