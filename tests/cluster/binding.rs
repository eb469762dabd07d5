//! SeccompProfileBinding on the test cluster: the admission chain of the install (a
//! MutatingAdmissionPolicy and a ValidatingAdmissionPolicy with the bindings as parameters,
//! manifests/binding-policies.yaml; no webhook) and the controller's binding status.
//!
//! - In a namespace with a binding for `app=web`, a pod `app=web` without a securityContext
//!   runs confined (EPERM in its log), a pod that sets RuntimeDefault keeps it, a pod of another
//!   app is untouched, and no webhook configuration of seccompd's exists.
//! - Where the profile goes (pod or container level, init containers, `containers`), and the
//!   selector's operators, on dry-run creations that the API server admits as it would the pod.
//! - Two bindings of different profiles that select a pod refuse it, naming both, every time
//!   (the API server takes the bindings in no fixed order); two of the same profile give it
//!   that profile every time.
//! - A binding to a missing profile says so in its status, and turns Ready once it exists.
//! - What a namespace user can do with bindings, with a real token of a ServiceAccount bound to
//!   the built-in `edit` role in its namespace; and that without the mutating policy pods are
//!   simply not bound (docs/security-model.md).
//!
//! Pods run on node1 (busybox's `mkdir` is what the test profile refuses). Each test works in a
//! namespace of its own, deleted at its end.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::recording_cluster::TestNamespace;
use seccompd_api::binding::{BINDING_ANNOTATION, BINDING_PROFILE_ANNOTATION};
use seccompd_api::{SeccompProfile, SeccompProfileBinding};
use seccompd_e2e::cluster::tokens::{allowed, client_with_token, forbidden};
use seccompd_e2e::cluster::{client, eventually, kubectl, kubectl_ok, repo_path, unique};
use seccompd_e2e::lifecycle::{
    BUSYBOX, NODE, create_profile, delete_profile, denylist, wait_status,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);

/// How many times a pod is created (as a dry run) to see that the verdict does not depend on
/// the order in which the API server takes the bindings (a random order each request: its
/// cache lists them from a map).
const ORDERS: usize = 12;

/// What busybox prints when the profile refuses its `mkdir`.
const EPERM: &str = "Operation not permitted";

/// A new namespace for a test (deleted when dropped), on a cluster that has the binding
/// policies (Kubernetes 1.36+; before, hack/cluster-up.sh leaves them out and these tests
/// cannot pass).
async fn binding_namespace(client: &Client, prefix: &str) -> TestNamespace {
    let installed = |kind: &str, name: &str| kubectl(&["get", kind, name]).status.success();
    assert!(
        installed("mutatingadmissionpolicy", "seccompd-profile-binding")
            && installed(
                "validatingadmissionpolicy",
                "seccompd-profile-binding-conflicts"
            ),
        "the policies of manifests/binding-policies.yaml are not installed: they need Kubernetes 1.36 or later"
    );
    TestNamespace::create(client, prefix, json!({})).await
}

/// A profile that lets busybox run but refuses `mkdir`, installed on every node; deleted
/// when dropped.
struct DenyMkdir {
    name: String,
}

impl DenyMkdir {
    async fn create(client: &Client) -> Self {
        let name = unique("deny-mkdir");
        create_profile(client, &name, &denylist(&["mkdir", "mkdirat"])).await;
        let profile = Self { name };
        wait_status(&profile.name, "Installed", "2/2", WAIT).await;
        profile
    }

    fn localhost(&self) -> String {
        format!("seccompd/{}.json", self.name)
    }
}

impl Drop for DenyMkdir {
    fn drop(&mut self) {
        let _ = kubectl(&[
            "delete",
            "seccompprofile",
            &self.name,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

/// A binding of `profile` to the pods `selector` selects.
fn binding(namespace: &str, name: &str, profile: &str, selector: Value) -> SeccompProfileBinding {
    serde_json::from_value(json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileBinding",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"profileName": profile, "podSelector": selector},
    }))
    .expect("a valid binding")
}

async fn create_binding(client: &Client, binding: &SeccompProfileBinding) {
    let namespace = binding.metadata.namespace.as_deref().unwrap_or_default();
    Api::<SeccompProfileBinding>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), binding)
        .await
        .unwrap_or_else(|e| panic!("create binding: {e}"));
}

/// A busybox pod on node1 labelled `app=<app>` that runs `mkdir /made` and then says whether
/// it could, with nothing of seccomp set.
fn pod(namespace: &str, name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": {"kubernetes.io/hostname": NODE},
            "containers": [{
                "name": "main", "image": BUSYBOX, "imagePullPolicy": "Never",
                "command": ["sh", "-c", "mkdir /made && echo made"],
            }],
        },
    })
}

/// `pod` as the API server would store it (a dry-run create: the admission chain runs, nothing
/// is kept), or its refusal.
async fn admit(client: &Client, pod: &Value) -> Result<Pod, kube::Error> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let pod: Pod = serde_json::from_value(pod.clone()).expect("a valid pod");
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&params, &pod)
        .await
}

/// The pod as JSON, for pointers into it.
fn as_json(pod: &Pod) -> Value {
    serde_json::to_value(pod).expect("a pod as JSON")
}

/// The Localhost seccomp profile of the pod (`/spec/securityContext/seccompProfile`) or of a
/// container (`/spec/containers/0/securityContext/seccompProfile` and so on), as
/// `type[:localhostProfile]`, or "" when none is set there.
fn seccomp_at(pod: &Value, at: &str) -> String {
    let profile = pod.pointer(at);
    match profile {
        None => String::new(),
        Some(p) => match p["localhostProfile"].as_str() {
            Some(file) => format!("{}:{file}", p["type"].as_str().unwrap_or_default()),
            None => p["type"].as_str().unwrap_or_default().to_string(),
        },
    }
}

const POD_LEVEL: &str = "/spec/securityContext/seccompProfile";

fn container_level(i: usize) -> String {
    format!("/spec/containers/{i}/securityContext/seccompProfile")
}

fn annotation(pod: &Value, key: &str) -> Option<String> {
    pod["metadata"]["annotations"][key]
        .as_str()
        .map(str::to_string)
}

/// Waits until the API server's admission sees the bindings: `pod` is admitted bound to
/// `profile` (its informer of the bindings lags their creation a moment).
async fn wait_bound(client: &Client, pod: &Value, profile: &str) -> Value {
    eventually(
        &format!(
            "the admission chain to bind {} to {profile}",
            pod["metadata"]["name"]
        ),
        WAIT,
        || async {
            let admitted = admit(client, pod).await.map_err(|e| e.to_string())?;
            let admitted = as_json(&admitted);
            if annotation(&admitted, BINDING_PROFILE_ANNOTATION).as_deref() == Some(profile) {
                Ok(admitted)
            } else {
                Err(admitted["metadata"].to_string())
            }
        },
    )
    .await
}

async fn create_pod(client: &Client, pod: &Value) -> Pod {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let typed: Pod = serde_json::from_value(pod.clone()).expect("a valid pod");
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &typed)
        .await
        .unwrap_or_else(|e| panic!("create pod {}: {e}", pod["metadata"]["name"]))
}

/// Waits until pod `name` has ended, and returns its log.
async fn ended_log(client: &Client, namespace: &str, name: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("pod {name} to end"), WAIT, || async {
        let pod = pods.get(name).await.map_err(|e| e.to_string())?;
        let status = pod.status.unwrap_or_default();
        match status.phase.as_deref() {
            Some("Succeeded" | "Failed") => Ok(()),
            other => Err(format!("{other:?} {:?}", status.container_statuses)),
        }
    })
    .await;
    kubectl_ok(&["-n", namespace, "logs", name])
}

/// The binding's Ready condition once the controller wrote it with `reason`.
async fn wait_ready_reason(client: &Client, namespace: &str, name: &str, reason: &str) -> Value {
    let api: Api<SeccompProfileBinding> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("binding {name} to say {reason}"), WAIT, || async {
        let b = api.get(name).await.map_err(|e| e.to_string())?;
        let status = serde_json::to_value(&b.status).map_err(|e| e.to_string())?;
        let ready = status["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
            .cloned()
            .unwrap_or_default();
        if ready["reason"] == reason && status["observedGeneration"] == json!(b.metadata.generation)
        {
            Ok(ready)
        } else {
            Err(status.to_string())
        }
    })
    .await
}

/// A profile that denies mkdir, and a namespace whose binding `web` gives it to the pods
/// labelled `app=web`.
async fn web_bound(client: &Client, prefix: &str) -> (DenyMkdir, TestNamespace) {
    let profile = DenyMkdir::create(client).await;
    let ns = binding_namespace(client, prefix).await;
    let selector = json!({"matchLabels": {"app": "web"}});
    create_binding(client, &binding(&ns.0, "web", &profile.name, selector)).await;
    (profile, ns)
}

/// The acceptance of issue 20's binding: a binding for `app=web` confines the `app=web` pod
/// that sets nothing (EPERM in its log, the profile set for the whole pod), a pod that sets
/// RuntimeDefault keeps it, a pod of another app is untouched; and seccompd has no webhook.
#[tokio::test]
async fn a_binding_confines_the_pods_it_selects_and_leaves_the_rest() {
    let client = client().await;
    let (profile, ns) = web_bound(&client, "bind").await;
    let ready = wait_ready_reason(&client, &ns.0, "web", "ProfileInstalled").await;
    assert_eq!(ready["status"], "True", "{ready}");

    let web = pod(&ns.0, "web", "web");
    wait_bound(&client, &web, &profile.name).await;
    let created = as_json(&create_pod(&client, &web).await);
    assert_eq!(
        seccomp_at(&created, POD_LEVEL),
        format!("Localhost:{}", profile.localhost())
    );
    assert_eq!(seccomp_at(&created, &container_level(0)), "");
    assert_eq!(
        annotation(&created, BINDING_ANNOTATION).as_deref(),
        Some("web")
    );
    let log = ended_log(&client, &ns.0, "web").await;
    assert!(
        log.contains(EPERM),
        "the bound pod's mkdir is refused: {log:?}"
    );

    let mut runtime_default = pod(&ns.0, "web-runtime-default", "web");
    runtime_default["spec"]["securityContext"] =
        json!({"seccompProfile": {"type": "RuntimeDefault"}});
    let created = as_json(&create_pod(&client, &runtime_default).await);
    assert_eq!(seccomp_at(&created, POD_LEVEL), "RuntimeDefault");
    assert_eq!(seccomp_at(&created, &container_level(0)), "");
    assert_eq!(annotation(&created, BINDING_ANNOTATION), None);
    let log = ended_log(&client, &ns.0, "web-runtime-default").await;
    assert!(
        log.contains("made"),
        "RuntimeDefault lets mkdir run: {log:?}"
    );

    let other = pod(&ns.0, "db", "db");
    let created = as_json(&create_pod(&client, &other).await);
    assert_eq!(
        created["spec"]["securityContext"]["seccompProfile"],
        Value::Null
    );
    assert_eq!(seccomp_at(&created, &container_level(0)), "");
    assert_eq!(annotation(&created, BINDING_ANNOTATION), None);
    let log = ended_log(&client, &ns.0, "db").await;
    assert!(log.contains("made"), "the other app is not bound: {log:?}");

    let webhooks = kubectl_ok(&[
        "get",
        "mutatingwebhookconfigurations,validatingwebhookconfigurations",
        "-o",
        "name",
    ]);
    assert!(
        !webhooks.contains("seccompd"),
        "no webhook configuration of seccompd's: {webhooks}"
    );
    let labelled = kubectl_ok(&[
        "get",
        "mutatingwebhookconfigurations,validatingwebhookconfigurations",
        "-l",
        "app.kubernetes.io/name=seccompd",
        "-o",
        "name",
    ]);
    assert_eq!(labelled.trim(), "", "none labelled as seccompd's either");
}

/// Where the profile goes: the whole pod when the binding covers every container and none
/// sets one; otherwise each covered container (init containers too) that sets none, and a
/// container's own profile is kept. The selector's four operators select as Kubernetes's do.
#[tokio::test]
async fn the_profile_goes_where_the_binding_covers_and_nothing_is_overwritten() {
    let client = client().await;
    let profile = DenyMkdir::create(&client).await;
    let mine = format!("Localhost:{}", profile.localhost());
    let ns = binding_namespace(&client, "bind-where").await;
    let mut only_main = binding(
        &ns.0,
        "main-only",
        &profile.name,
        json!({"matchExpressions": [
            {"key": "app", "operator": "In", "values": ["web", "api"]},
            {"key": "tier", "operator": "NotIn", "values": ["debug"]},
            {"key": "team", "operator": "Exists"},
            {"key": "unbound", "operator": "DoesNotExist"},
        ]}),
    );
    only_main.spec.containers = vec!["main".into(), "setup".into()];
    create_binding(&client, &only_main).await;

    let mut two = pod(&ns.0, "two", "web");
    two["metadata"]["labels"]["team"] = json!("a");
    two["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "sidecar", "image": BUSYBOX, "command": ["sleep", "1"]}));
    two["spec"]["initContainers"] =
        json!([{"name": "setup", "image": BUSYBOX, "command": ["true"]}]);
    let admitted = wait_bound(&client, &two, &profile.name).await;
    // The binding does not cover the sidecar: per container, not the pod.
    assert_eq!(seccomp_at(&admitted, POD_LEVEL), "");
    assert_eq!(seccomp_at(&admitted, &container_level(0)), mine);
    assert_eq!(seccomp_at(&admitted, &container_level(1)), "");
    assert_eq!(
        seccomp_at(
            &admitted,
            "/spec/initContainers/0/securityContext/seccompProfile"
        ),
        mine
    );
    assert_eq!(
        annotation(&admitted, BINDING_ANNOTATION).as_deref(),
        Some("main-only")
    );

    // A container's own profile stays; the other covered container is bound.
    let mut own = two.clone();
    own["spec"]["initContainers"][0]["securityContext"] =
        json!({"seccompProfile": {"type": "Unconfined"}});
    let admitted = as_json(&admit(&client, &own).await.expect("admitted"));
    assert_eq!(
        seccomp_at(
            &admitted,
            "/spec/initContainers/0/securityContext/seccompProfile"
        ),
        "Unconfined"
    );
    assert_eq!(seccomp_at(&admitted, &container_level(0)), mine);

    // Covering every container that exists is the whole pod.
    let mut one = pod(&ns.0, "one", "api");
    one["metadata"]["labels"]["team"] = json!("b");
    let admitted = as_json(&admit(&client, &one).await.expect("admitted"));
    assert_eq!(seccomp_at(&admitted, POD_LEVEL), mine);
    assert_eq!(seccomp_at(&admitted, &container_level(0)), "");

    // The selector: each operator can exclude the pod.
    for (label, value) in [
        ("app", Some("db")),
        ("tier", Some("debug")),
        ("team", None),
        ("unbound", Some("yes")),
    ] {
        let mut excluded = one.clone();
        match value {
            Some(v) => excluded["metadata"]["labels"][label] = json!(v),
            None => {
                excluded["metadata"]["labels"]
                    .as_object_mut()
                    .expect("labels")
                    .remove(label);
            }
        }
        let admitted = as_json(&admit(&client, &excluded).await.expect("admitted"));
        assert_eq!(
            seccomp_at(&admitted, POD_LEVEL),
            "",
            "{label}={value:?} is not selected"
        );
        assert_eq!(annotation(&admitted, BINDING_ANNOTATION), None);
    }

    // A deprecated seccomp annotation counts as the pod's own: the API server refuses a
    // field that differs from it.
    let mut legacy = one.clone();
    legacy["metadata"]["annotations"] =
        json!({"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"});
    let admitted = as_json(&admit(&client, &legacy).await.expect("admitted"));
    assert_eq!(annotation(&admitted, BINDING_ANNOTATION), None);
    assert_ne!(seccomp_at(&admitted, POD_LEVEL), mine);
}

/// Two bindings of different profiles selecting one pod: it is refused, with both named and
/// the fix, on every one of [`ORDERS`] attempts; a pod that sets its own profile everywhere is
/// not bound and is admitted. Once both name the same profile, every attempt gives the pod
/// that profile, at the same place, with the first binding name in the annotation.
#[tokio::test]
async fn two_bindings_of_one_pod_refuse_it_or_agree_whatever_the_order() {
    let client = client().await;
    let first = DenyMkdir::create(&client).await;
    let second = DenyMkdir::create(&client).await;
    let ns = binding_namespace(&client, "bind-two").await;
    let web = json!({"matchLabels": {"app": "web"}});
    create_binding(&client, &binding(&ns.0, "alpha", &first.name, web.clone())).await;
    let mut zulu = binding(&ns.0, "zulu", &second.name, json!({}));
    zulu.spec.containers = vec!["main".into()];
    create_binding(&client, &zulu).await;

    let pod = pod(&ns.0, "contested", "web");
    let refusal = eventually("the pod to be refused", WAIT, || async {
        match admit(&client, &pod).await {
            Err(kube::Error::Api(status)) if status.code == 403 => Ok(status.message),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    for attempt in 0..ORDERS {
        let message = forbidden(
            "a pod two bindings of different profiles select",
            admit(&client, &pod).await,
        );
        for named in [
            "SeccompProfileBindings",
            "alpha",
            "zulu",
            &first.name,
            &second.name,
            "give both the same profileName",
        ] {
            assert!(message.contains(named), "attempt {attempt}: {message}");
        }
        assert!(
            message.contains("seccompd-profile-binding-conflicts"),
            "{message}"
        );
    }
    assert!(refusal.contains("both select this pod"), "{refusal}");

    let mut own = pod.clone();
    own["spec"]["securityContext"] = json!({"seccompProfile": {"type": "RuntimeDefault"}});
    for _ in 0..ORDERS {
        let admitted = as_json(
            &admit(&client, &own)
                .await
                .expect("a pod with its own profile"),
        );
        assert_eq!(seccomp_at(&admitted, POD_LEVEL), "RuntimeDefault");
        assert_eq!(annotation(&admitted, BINDING_ANNOTATION), None);
    }

    let api: Api<SeccompProfileBinding> = Api::namespaced(client.clone(), &ns.0);
    api.patch(
        "zulu",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"profileName": first.name}})),
    )
    .await
    .expect("zulu names alpha's profile");
    let mine = format!("Localhost:{}", first.localhost());
    wait_bound(&client, &pod, &first.name).await;
    for attempt in 0..ORDERS {
        let admitted = as_json(&admit(&client, &pod).await.expect("admitted"));
        // zulu covers main only, alpha the whole pod; whichever came first, the pod level and
        // main have alpha's profile.
        assert_eq!(seccomp_at(&admitted, POD_LEVEL), mine, "attempt {attempt}");
        let main = seccomp_at(&admitted, &container_level(0));
        assert!(main.is_empty() || main == mine, "attempt {attempt}: {main}");
        assert_eq!(
            annotation(&admitted, BINDING_ANNOTATION).as_deref(),
            Some("alpha"),
            "attempt {attempt}"
        );
    }
}

/// A binding to a profile that does not exist says so in its status, naming it, and in
/// `kubectl get`; once the profile exists and is installed, the binding is Ready.
#[tokio::test]
async fn a_binding_to_a_missing_profile_says_so_until_it_exists() {
    let client = client().await;
    let ns = binding_namespace(&client, "bind-missing").await;
    let missing = unique("not-yet");
    create_binding(
        &client,
        &binding(
            &ns.0,
            "early",
            &missing,
            json!({"matchLabels": {"app": "web"}}),
        ),
    )
    .await;
    let ready = wait_ready_reason(&client, &ns.0, "early", "ProfileNotFound").await;
    assert_eq!(ready["status"], "False");
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("SeccompProfile {missing} does not exist")),
        "{message}"
    );
    let table = kubectl_ok(&["-n", &ns.0, "get", "seccompprofilebindings"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "PROFILE", "READY", "STATUS", "AGE"],
        "{table}"
    );
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|row| row.contains(&missing)
                && row.contains("False")
                && row.contains("ProfileNotFound")),
        "{table}"
    );

    create_profile(&client, &missing, &denylist(&["mkdir", "mkdirat"])).await;
    let ready = wait_ready_reason(&client, &ns.0, "early", "ProfileInstalled").await;
    delete_profile(&client, &missing).await;
    assert_eq!(ready["status"], "True");
}

/// What a namespace user can do with bindings, with a real token of a ServiceAccount that
/// the built-in `edit` role is bound to in its namespace (seccompd's roles aggregate into it):
/// create bindings there and not elsewhere, not create profiles, not bind the pods of another
/// namespace, not override a profile a pod sets itself, not bind to the recording profile.
#[tokio::test]
async fn a_namespace_user_binds_only_its_own_namespaces_pods_that_set_nothing() {
    let admin = client().await;
    let profile = DenyMkdir::create(&admin).await;
    let ns = binding_namespace(&admin, "bind-user").await;
    let elsewhere = binding_namespace(&admin, "bind-other").await;
    kubectl_ok(&["-n", &ns.0, "create", "serviceaccount", "dev"]);
    kubectl_ok(&[
        "-n",
        &ns.0,
        "create",
        "rolebinding",
        "dev-edit",
        "--clusterrole=edit",
        &format!("--serviceaccount={}:dev", ns.0),
    ]);
    let token = kubectl_ok(&["-n", &ns.0, "create", "token", "dev", "--duration", "10m"]);
    let user = client_with_token(token.trim()).await;

    let web = json!({"matchLabels": {"app": "web"}});
    let own = binding(&ns.0, "web", &profile.name, web.clone());
    allowed(
        "a binding in its own namespace",
        Api::<SeccompProfileBinding>::namespaced(user.clone(), &ns.0)
            .create(&PostParams::default(), &own)
            .await,
    );
    forbidden(
        "a binding in another namespace",
        Api::<SeccompProfileBinding>::namespaced(user.clone(), &elsewhere.0)
            .create(
                &PostParams::default(),
                &binding(&elsewhere.0, "web", &profile.name, web.clone()),
            )
            .await,
    );
    forbidden(
        "a SeccompProfile",
        Api::<SeccompProfile>::all(user.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
                    "metadata": {"name": unique("by-user")},
                    "spec": {"defaultAction": "SCMP_ACT_ALLOW"},
                }))
                .expect("a profile"),
            )
            .await,
    );
    let record = Api::<SeccompProfileBinding>::namespaced(user.clone(), &ns.0)
        .create(
            &PostParams::default(),
            &binding(&ns.0, "record", "record", web.clone()),
        )
        .await;
    match record {
        Err(kube::Error::Api(status)) if status.code == 422 => {
            assert!(
                status.message.contains("not 'record'"),
                "{}",
                status.message
            );
        }
        other => panic!("a binding to the recording profile: expected 422, got {other:?}"),
    }

    // The user's own pods: bound when they set nothing, kept when they set a profile.
    let bound = wait_bound(&user, &pod(&ns.0, "web", "web"), &profile.name).await;
    assert_eq!(
        seccomp_at(&bound, POD_LEVEL),
        format!("Localhost:{}", profile.localhost())
    );
    let mut unconfined = pod(&ns.0, "web-unconfined", "web");
    unconfined["spec"]["containers"][0]["securityContext"] =
        json!({"seccompProfile": {"type": "Unconfined"}});
    let kept = as_json(&admit(&user, &unconfined).await.expect("admitted"));
    assert_eq!(seccomp_at(&kept, &container_level(0)), "Unconfined");
    assert_eq!(seccomp_at(&kept, POD_LEVEL), "");

    // The same labels in another namespace: the binding is not a parameter there.
    let there = as_json(
        &admit(&admin, &pod(&elsewhere.0, "web", "web"))
            .await
            .expect("admitted"),
    );
    assert_eq!(seccomp_at(&there, POD_LEVEL), "");
    assert_eq!(annotation(&there, BINDING_ANNOTATION), None);
}

/// A misconfigured install: without the MutatingAdmissionPolicyBinding, pods are created
/// unbound (no annotation, no profile) and nothing refuses them; the binding's status is
/// unchanged (the controller cannot see admission). Applying manifests/binding-policies.yaml
/// again restores binding.
#[tokio::test]
async fn without_the_mutating_policy_pods_are_simply_not_bound() {
    let client = client().await;
    let (profile, ns) = web_bound(&client, "bind-nopolicy").await;
    let web = pod(&ns.0, "web", "web");
    wait_bound(&client, &web, &profile.name).await;

    let policies = repo_path("manifests/binding-policies.yaml");
    let policies = policies.to_str().expect("utf-8");
    let restore = Restore(policies.to_string());
    kubectl_ok(&[
        "delete",
        "mutatingadmissionpolicybinding",
        "seccompd-profile-binding",
        "--wait",
    ]);
    let unbound = eventually("pods to be created unbound", WAIT, || async {
        let admitted = as_json(&admit(&client, &web).await.map_err(|e| e.to_string())?);
        if annotation(&admitted, BINDING_ANNOTATION).is_none() {
            Ok(admitted)
        } else {
            Err("still bound".to_string())
        }
    })
    .await;
    assert_eq!(seccomp_at(&unbound, POD_LEVEL), "");
    drop(restore);
    wait_bound(&client, &web, &profile.name).await;
}

/// Applies manifests/binding-policies.yaml again when dropped.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = kubectl(&["apply", "-f", &self.0]);
    }
}

/// A binding's spec is checked at `kubectl apply`: a requirement's values must match its
/// operator, and container names are DNS labels.
#[tokio::test]
async fn a_malformed_binding_is_refused_at_apply() {
    let client = client().await;
    let ns = binding_namespace(&client, "bind-invalid").await;
    let api: Api<SeccompProfileBinding> = Api::namespaced(client.clone(), &ns.0);
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    for (selector, containers, says) in [
        (
            json!({"matchExpressions": [{"key": "app", "operator": "In"}]}),
            json!([]),
            "values must be given for the operators In and NotIn",
        ),
        (
            json!({"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}),
            json!([]),
            "values must be given for the operators In and NotIn",
        ),
        (
            json!({"matchExpressions": [{"key": "app", "operator": "Matches", "values": ["x"]}]}),
            json!([]),
            "Unsupported value",
        ),
        (json!({}), json!(["Main_Container"]), "should match"),
    ] {
        let body = json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileBinding",
            "metadata": {"name": "bad", "namespace": ns.0},
            "spec": {"profileName": "p", "podSelector": selector, "containers": containers},
        });
        let out = kubectl_stdin_json(&["create", "--dry-run=server", "-f", "-"], &body);
        assert!(!out.0, "refused: {body}");
        assert!(out.1.contains(says), "{says}: {}", out.1);
    }
    allowed(
        "a well-formed binding",
        api.create(&params, &binding(&ns.0, "good", "p", json!({})))
            .await,
    );
}

/// Runs kubectl with `body` as JSON on its stdin: whether it succeeded, and its stderr.
fn kubectl_stdin_json(args: &[&str], body: &Value) -> (bool, String) {
    let out = seccompd_e2e::cluster::kubectl_stdin(args, &body.to_string());
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
