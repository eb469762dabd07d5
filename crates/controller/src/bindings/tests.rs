//! The exact requests the binding status writer makes, against a scripted API server.

use http::{Method, StatusCode};
use kube::runtime::reflector;
use serde_json::{Value, json};

use super::*;
use seccompd_runtime::apiserver::mock::mock_client;

const STATUS: &str =
    "/apis/seccompd.dev/v1alpha1/namespaces/shop/seccompprofilebindings/web/status";

fn binding_json(version: &str, status: Option<Value>) -> Value {
    let mut b = json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileBinding",
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-1",
                     "resourceVersion": version, "generation": 1},
        "spec": {"profileName": "deny-mkdir", "podSelector": {"matchLabels": {"app": "web"}}},
    });
    if let Some(status) = status {
        b["status"] = status;
    }
    b
}

fn store<K: Clone + kube::Resource<DynamicType = ()>>(objects: Vec<K>) -> Store<K> {
    let (store, mut writer) = reflector::store();
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::Apply(o));
    }
    store
}

fn writer(client: Client) -> Writer {
    Writer {
        client,
        settled: BTreeMap::new(),
        retries: None,
    }
}

fn bindings(version: &str) -> Store<SeccompProfileBinding> {
    store(vec![
        serde_json::from_value(binding_json(version, None)).unwrap(),
    ])
}

/// A binding to a profile that does not exist gets ProfileNotFound, applied to its status
/// subresource with the binding's uid as a precondition; the next pass, before the watch
/// brings the write back, does not repeat it.
#[tokio::test]
async fn a_binding_to_a_missing_profile_says_so_once() {
    let (client, mut api) = mock_client();
    let mut writer = writer(client);
    let bindings = bindings("7");
    let profiles = store::<SeccompProfile>(vec![]);
    let server = tokio::spawn(async move {
        let body = api
            .expect_apply(STATUS, BINDING_STATUS_MANAGER, binding_json("8", None))
            .await;
        (body, api)
    });
    assert_eq!(writer.pass(&bindings, &profiles).await, RESYNC);
    assert_eq!(writer.pass(&bindings, &profiles).await, RESYNC);
    drop(writer);
    let (body, api) = server.await.unwrap();
    api.expect_no_more().await;
    assert_eq!(body["metadata"]["uid"], "uid-1");
    let condition = &body["status"]["conditions"][0];
    assert_eq!(condition["type"], "Ready");
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "ProfileNotFound");
    assert!(
        condition["message"]
            .as_str()
            .unwrap()
            .contains("SeccompProfile deny-mkdir does not exist")
    );
    assert_eq!(
        body["status"]["localhostProfile"],
        "seccompd/deny-mkdir.json"
    );
}

/// A failed write is tried again after the API's backoff, and the pass after a success
/// waits for the resync only.
#[tokio::test]
async fn a_failed_write_is_retried_after_the_api_backoff() {
    let (client, mut api) = mock_client();
    let mut writer = writer(client);
    let bindings = bindings("7");
    let profiles = store::<SeccompProfile>(vec![]);
    let server = tokio::spawn(async move {
        let query = [
            &*format!("fieldManager={BINDING_STATUS_MANAGER}"),
            "force=true",
        ];
        api.refuse(
            Method::PATCH,
            STATUS,
            &query,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
        api.expect_apply(STATUS, BINDING_STATUS_MANAGER, binding_json("8", None))
            .await;
        api
    });
    let wait = writer.pass(&bindings, &profiles).await;
    assert!(
        wait < RESYNC && wait >= Duration::from_millis(500),
        "{wait:?}"
    );
    assert_eq!(writer.pass(&bindings, &profiles).await, RESYNC);
    drop(writer);
    server.await.unwrap().expect_no_more().await;
}

/// A binding whose status already says what its profile's does is not written.
#[tokio::test]
async fn an_up_to_date_binding_is_not_written() {
    let profile: SeccompProfile = serde_json::from_value(json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
        "metadata": {"name": "deny-mkdir"},
        "spec": {"defaultAction": "SCMP_ACT_ALLOW"},
        "status": {"phase": "Installed", "installed": "2/2"},
    }))
    .unwrap();
    let first: SeccompProfileBinding = serde_json::from_value(binding_json("7", None)).unwrap();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = decide::binding_status(
        &first,
        decide::NamedProfile::Present(profile.status.as_ref()),
        None,
        &now,
    );
    let current = store(vec![
        serde_json::from_value::<SeccompProfileBinding>(binding_json(
            "9",
            Some(serde_json::to_value(&status).unwrap()),
        ))
        .unwrap(),
    ]);
    let (client, api) = mock_client();
    let mut writer = writer(client);
    assert_eq!(writer.pass(&current, &store(vec![profile])).await, RESYNC);
    drop(writer);
    api.expect_no_more().await;
}

/// A binding deleted while its status is written (404): the writer looks again after the
/// backoff, finds it gone from its cache and writes nothing more.
#[tokio::test]
async fn a_binding_deleted_during_its_write_is_let_go() {
    let (client, mut api) = mock_client();
    let mut writer = writer(client);
    let profiles = store::<SeccompProfile>(vec![]);
    let server = tokio::spawn(async move {
        let query = [
            &*format!("fieldManager={BINDING_STATUS_MANAGER}"),
            "force=true",
        ];
        api.refuse(Method::PATCH, STATUS, &query, StatusCode::NOT_FOUND)
            .await;
        api
    });
    assert!(writer.pass(&bindings("7"), &profiles).await < RESYNC);
    let gone = store::<SeccompProfileBinding>(vec![]);
    assert_eq!(writer.pass(&gone, &profiles).await, RESYNC);
    assert!(writer.settled.is_empty());
    drop(writer);
    server.await.unwrap().expect_no_more().await;
}
