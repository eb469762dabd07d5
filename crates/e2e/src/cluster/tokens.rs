//! Real tokens for the tests that play a component (or an attacker holding its token): a
//! ServiceAccount token bound to one of the component's pods, as the kubelet mounts it, and a
//! client that authenticates with nothing else; plus the verdicts such a test asserts.

use kube::api::{PatchParams, PostParams};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;

use super::{kubeconfig_path, kubectl_ok};

/// seccompd's namespace.
pub const NAMESPACE: &str = "seccompd-system";

/// A client that authenticates with `token` only.
pub async fn client_with_token(token: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig_path()).expect("the admin kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("load the kubeconfig");
    config.auth_info =
        serde_json::from_value::<AuthInfo>(json!({ "token": token })).expect("a token AuthInfo");
    Client::try_from(config).expect("a client")
}

/// The pod in seccompd's namespace that `selector` selects on `node`: its name and uid.
pub fn pod_on(selector: &str, node: &str) -> (String, String) {
    let out = kubectl_ok(&[
        "-n",
        NAMESPACE,
        "get",
        "pods",
        "-l",
        selector,
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "jsonpath={.items[0].metadata.name} {.items[0].metadata.uid}",
    ]);
    let (name, uid) = out
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("no pod {selector} on {node}: {out:?}"));
    (name.to_string(), uid.to_string())
}

/// A token of ServiceAccount `account` bound to the pod `selector` selects on `node` (what the
/// kubelet mounts into that pod), through the TokenRequest API.
pub fn token_bound_to_pod(account: &str, selector: &str, node: &str) -> String {
    let (pod, uid) = pod_on(selector, node);
    kubectl_ok(&[
        "-n",
        NAMESPACE,
        "create",
        "token",
        account,
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        &pod,
        "--bound-object-uid",
        &uid,
        "--duration",
        "10m",
    ])
    .trim()
    .to_string()
}

/// A token of ServiceAccount `account` bound to no pod (so carrying no node name).
pub fn unbound_token(account: &str) -> String {
    kubectl_ok(&[
        "-n",
        NAMESPACE,
        "create",
        "token",
        account,
        "--duration",
        "10m",
    ])
    .trim()
    .to_string()
}

/// The message of a 403, or a panic saying what happened instead.
pub fn forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => status.message,
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

/// Panics unless `result` is a success.
pub fn allowed<T>(what: &str, result: Result<T, kube::Error>) {
    if let Err(err) = result {
        panic!("{what}: expected to be allowed, got {err}");
    }
}

/// A forced server-side apply by `manager`, as a dry run (admission still judges it).
pub fn dry_apply(manager: &str) -> PatchParams {
    let mut params = PatchParams::apply(manager).force();
    params.dry_run = true;
    params
}

/// A patch as a dry run.
pub fn dry_patch() -> PatchParams {
    PatchParams {
        dry_run: true,
        ..Default::default()
    }
}

/// A create as a dry run.
pub fn dry_post() -> PostParams {
    PostParams {
        dry_run: true,
        ..Default::default()
    }
}
