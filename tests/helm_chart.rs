//! The Helm chart (charts/seccompd), the one source of the install: `helm lint`; manifests/
//! as kubectl applies it is the chart rendered; each value changes what it claims and nothing
//! else; the rendered objects are well-formed and refer to each other. A release's life on the
//! test cluster is tests/cluster/helm_chart.rs.
//!
//! Helm comes from `make deps` (hack/helm-bin.sh builds it into the cache; `SECCOMPD_HELM`
//! overrides the path) and kubectl from hack/k8s-bins.sh; a test fails when either is missing.
//! Every test here runs offline. That the files under manifests/ are what the chart renders is
//! `make lint`'s check (hack/gen-manifests.sh --check); the tests here check how they are put
//! together.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::admissionregistration::v1beta1::{
    MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use seccompd_e2e::cluster::repo_path;
use seccompd_e2e::tools::{helm_bin, kubectl_bin, ok, run};

/// Labels Helm's bookkeeping puts on every object of the chart (templates/_helpers.tpl) unless
/// `helmLabels=false`, as manifests/ is rendered.
const HELM_LABELS: [&str; 4] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];

/// The kinds the chart renders that live in a namespace; every other kind it renders
/// (`as_kubernetes_type` knows each) is cluster-wide.
const NAMESPACED_KINDS: [&str; 6] = [
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "DaemonSet",
    "Deployment",
    "PodMonitor",
];

fn helm_ok(args: &[&str]) -> String {
    ok(&format!("helm {args:?}"), run(helm_bin(), args))
}

/// `helm template` of charts/seccompd, CRDs included, as release `release` in `namespace`
/// with `--set` values `sets`.
fn template_in(release: &str, namespace: &str, sets: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        release,
        "charts/seccompd",
        "--namespace",
        namespace,
        "--include-crds",
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    parse_objects(&helm_ok(&args))
}

/// The same in namespace `default`, named on the command line so that a kubeconfig's
/// namespace cannot change the rendering.
fn template(release: &str, sets: &[&str]) -> Vec<Value> {
    template_in(release, "default", sets)
}

/// The chart rendered as hack/gen-manifests.sh renders manifests/: release seccompd, Helm's
/// labels off.
fn template_for_manifests(sets: &[&str]) -> Vec<Value> {
    let mut all = vec!["helmLabels=false"];
    all.extend_from_slice(sets);
    template("seccompd", &all)
}

fn parse_objects(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("parsing rendered YAML");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// kind/namespace/name: what tells two objects of a rendering apart.
fn key(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("?")
    )
}

fn by_key(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects.into_iter().map(|o| (key(&o), o)).collect()
}

/// The one object of `kind` in `objects`.
fn only<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<_> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected one {kind}, got {}", found.len());
    found[0]
}

/// The object of `kind` named `name` in `objects`.
fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(objects, kind, name, None).unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The object of `kind` named `name` (in `namespace`, when given) in `objects`.
fn find<'a>(
    objects: &'a [Value],
    kind: &str,
    name: &str,
    namespace: Option<&str>,
) -> Option<&'a Value> {
    objects.iter().find(|o| {
        o["kind"] == kind
            && o["metadata"]["name"] == name
            && namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns)
    })
}

fn agent_env(daemonset: &Value, name: &str) -> Option<String> {
    let env = daemonset["spec"]["template"]["spec"]["containers"][0]["env"].as_array()?;
    let var = env.iter().find(|e| e["name"] == name)?;
    var["value"].as_str().map(str::to_string)
}

#[test]
fn lint() {
    helm_ok(&["lint", "--strict", "charts/seccompd"]);
    helm_ok(&[
        "lint",
        "--strict",
        "charts/seccompd",
        "--set",
        "metrics.podMonitor.enabled=true",
        "--set",
        "recorder.enabled=true",
        "--set",
        "helmLabels=false",
    ]);
}

/// `kubectl apply -k manifests/` applies exactly the objects of the chart as manifests/ is
/// rendered from it (CRDs from crds/ included): manifests/kustomization.yaml lists every
/// rendered file, and nothing else.
#[test]
fn manifests_kustomization_is_the_chart() {
    assert_same_objects(template_for_manifests(&[]), "manifests/");
}

/// manifests/ with the recorder component (manifests/recorder) added, as a user's kustomization
/// adds it, is the chart with `recorder.enabled=true`: the component's patch leaves the agents
/// as the chart renders them with the recorder.
#[test]
fn recorder_component_is_the_chart_with_the_recorder() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // kustomize takes only relative paths to other kustomizations.
    let up = "../".repeat(dir.path().components().count() - 1);
    let repo = repo_path("manifests");
    let manifests = format!(
        "{up}{}",
        repo.to_str().expect("utf-8").trim_start_matches('/')
    );
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [{manifests}]\ncomponents: [{manifests}/recorder]\n"
        ),
    )
    .expect("writing the kustomization");
    assert_same_objects(
        template_for_manifests(&["recorder.enabled=true"]),
        dir.path().to_str().expect("utf-8"),
    );
}

/// `helm` holds the same objects as `kubectl kustomize <dir>`, field by field.
fn assert_same_objects(helm: Vec<Value>, dir: &str) {
    let helm = by_key(helm);
    let kustomize = by_key(parse_objects(&ok(
        &format!("kubectl kustomize {dir}"),
        run(kubectl_bin(), &["kustomize", dir]),
    )));
    let fix = "run `make manifests`; a new file goes into its kustomization.yaml";
    assert_eq!(
        helm.keys().collect::<Vec<_>>(),
        kustomize.keys().collect::<Vec<_>>(),
        "the chart and {dir} render different objects: {fix}"
    );
    let mut differences = Vec::new();
    for (key, object) in &helm {
        differ(object, &kustomize[key], key.clone(), &mut differences);
    }
    assert!(
        differences.is_empty(),
        "the chart (left) and {dir} (right) differ ({fix}):\n{}",
        differences.join("\n")
    );
}

/// Collects the paths where `a` and `b` differ, with both values.
fn differ(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (l, r) = (
                    &x.get(k).cloned().unwrap_or_default(),
                    &y.get(k).cloned().unwrap_or_default(),
                );
                differ(l, r, format!("{path}.{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                differ(l, r, format!("{path}[{i}]"), out);
            }
        }
        // kustomize writes the CRDs' `minimum: 0.0` as 0.
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a != b => out.push(format!("{path}: {a} | {b}")),
        _ => {}
    }
}

/// Each value changes every place that depends on it, and names follow the release.
#[test]
fn values_reach_the_objects() {
    let objects = template(
        "edge",
        &[
            "kubeletRoot=/data/kubelet/",
            "logLevel=seccompd=debug",
            "metrics.port=9900",
            "metrics.podAnnotations.prometheus\\.io/scrape=true",
            "metrics.podMonitor.enabled=true",
            "image.repository=registry.example/seccompd",
            "image.tag=v1",
            "image.pullPolicy=IfNotPresent",
            "nodeSelector.kubernetes\\.io/arch=arm64",
            "resources.limits.memory=128Mi",
        ],
    );
    let ds = only(&objects, "DaemonSet");
    assert_eq!(ds["metadata"]["name"], "edge-seccompd-agent");
    let pod = &ds["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example/seccompd:v1");
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["resources"]["limits"]["memory"], "128Mi");
    assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/arch"], "arm64");
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    // The kubelet root moves the hostPath, the mount and what the agent is told together.
    assert_eq!(
        agent_env(ds, "KUBELET_ROOT").as_deref(),
        Some("/data/kubelet")
    );
    let dir = "/data/kubelet/seccomp/seccompd";
    assert_eq!(pod["spec"]["volumes"][0]["hostPath"]["path"], dir);
    assert_eq!(container["volumeMounts"][0]["mountPath"], dir);
    assert_eq!(agent_env(ds, "RUST_LOG").as_deref(), Some("seccompd=debug"));
    // The port moves the container port and the agent's listen address together.
    assert_eq!(container["ports"][0]["containerPort"], 9900);
    assert_eq!(
        agent_env(ds, "HEALTH_ADDR").as_deref(),
        Some("0.0.0.0:9900")
    );

    let monitor = only(&objects, "PodMonitor");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        ds["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"][0]["port"],
        container["ports"][0]["name"]
    );
    // Cluster-wide names carry the release, so two releases never share them.
    let binding = named(&objects, "ClusterRoleBinding", "edge-seccompd-agent");
    assert_eq!(binding["roleRef"]["name"], "edge-seccompd-agent");
    assert_eq!(
        binding["subjects"][0]["name"],
        pod["spec"]["serviceAccountName"]
    );
    // The controller follows the agents' DaemonSet by its name, and the admission policy
    // matches the agents' ServiceAccount by its name.
    let controller = named(&objects, "Deployment", "edge-seccompd-controller");
    assert_eq!(
        agent_env(controller, "AGENT_DAEMONSET").as_deref(),
        Some("edge-seccompd-agent")
    );
    let binding = named(&objects, "ClusterRoleBinding", "edge-seccompd-controller");
    assert_eq!(
        binding["subjects"][0]["name"],
        controller["spec"]["template"]["spec"]["serviceAccountName"]
    );
    let role = named(&objects, "Role", "edge-seccompd-controller");
    assert_eq!(role["rules"][2]["resourceNames"][0], "edge-seccompd-agent");
    let policy = named(
        &objects,
        "ValidatingAdmissionPolicy",
        "edge-seccompd-agent-node-restriction",
    );
    assert_eq!(
        policy["spec"]["matchConditions"][0]["expression"],
        "request.userInfo.username == \"system:serviceaccount:seccompd-system:edge-seccompd-agent\""
    );
}

/// Into the release's own namespace, with the Namespace left to the user.
#[test]
fn existing_namespace() {
    let objects = parse_objects(&helm_ok(&[
        "template",
        "seccompd",
        "charts/seccompd",
        "--namespace",
        "tools",
        "--set",
        "namespace.create=false",
        "--set",
        "namespace.name=",
    ]));
    assert!(objects.iter().all(|o| o["kind"] != "Namespace"));
    let namespaced: Vec<_> = objects
        .iter()
        .filter(|o| !o["metadata"]["namespace"].is_null())
        .collect();
    assert_eq!(
        namespaced.len(),
        6,
        "two ServiceAccounts, Role, RoleBinding, DaemonSet, Deployment"
    );
    for o in namespaced {
        assert_eq!(o["metadata"]["namespace"], "tools", "{}", key(o));
    }
    for binding in objects.iter().filter(|o| o["kind"] == "ClusterRoleBinding") {
        assert_eq!(
            binding["subjects"][0]["namespace"],
            "tools",
            "{}",
            key(binding)
        );
    }
    for (policy, account) in [
        ("seccompd-agent-node-restriction", "seccompd-agent"),
        (
            "seccompd-controller-recorded-profiles",
            "seccompd-controller",
        ),
    ] {
        let policy = named(&objects, "ValidatingAdmissionPolicy", policy);
        assert_eq!(
            policy["spec"]["matchConditions"][0]["expression"],
            format!("request.userInfo.username == \"system:serviceaccount:tools:{account}\"")
        );
    }
}

/// Helm stores a release in its namespace before creating anything, so the namespace the
/// chart creates cannot be that one: the chart says so instead of failing at install.
#[test]
fn created_namespace_is_not_the_releases() {
    let out = run(
        helm_bin(),
        &[
            "template",
            "seccompd",
            "charts/seccompd",
            "-n",
            "seccompd-system",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "namespace.create=true needs a namespace.name other than the release's namespace"
        ),
        "{stderr}"
    );
}

/// What setting values changes in a rendering: the objects it adds and removes, and the
/// objects it changes (before, after), by key.
struct Toggled {
    added: Vec<String>,
    removed: Vec<String>,
    changed: BTreeMap<String, (Value, Value)>,
}

/// The rendering with `base` and then `toggled` set, against the one with `base` alone.
fn toggle(base: &[&str], toggled: &[&str]) -> Toggled {
    let before = by_key(template("seccompd", base));
    let mut after = by_key(template("seccompd", &[base, toggled].concat()));
    let mut toggled = Toggled {
        added: Vec::new(),
        removed: Vec::new(),
        changed: BTreeMap::new(),
    };
    for (key, old) in before {
        match after.remove(&key) {
            None => toggled.removed.push(key),
            Some(new) if new != old => {
                toggled.changed.insert(key, (old, new));
            }
            Some(_) => {}
        }
    }
    toggled.added = after.into_keys().collect();
    toggled
}

/// The recorder's objects, each named after it, as release seccompd renders them.
const RECORDER_OBJECTS: [&str; 4] = [
    "ClusterRole//seccompd-recorder",
    "ClusterRoleBinding//seccompd-recorder",
    "DaemonSet/seccompd-system/seccompd-recorder",
    "ServiceAccount/seccompd-system/seccompd-recorder",
];
const RECORDER_POLICY: [&str; 2] = [
    "ValidatingAdmissionPolicy//seccompd-recorder-node-restriction",
    "ValidatingAdmissionPolicyBinding//seccompd-recorder-node-restriction",
];
const AGENT_DAEMONSET: &str = "DaemonSet/seccompd-system/seccompd-agent";

/// `recorder.enabled=true` adds the recorder's DaemonSet, identity, RBAC and node restriction
/// (this last only with `admissionPolicies.enabled`), and has the agents install the
/// recording profile (RECORDING=true); every other object stays as it was.
#[test]
fn recorder_enabled_adds_the_recorder() {
    for (base, policy) in [
        (&[][..], &RECORDER_POLICY[..]),
        (&["admissionPolicies.enabled=false"][..], &[][..]),
    ] {
        let toggled = toggle(base, &["recorder.enabled=true"]);
        let mut expected: Vec<String> = RECORDER_OBJECTS
            .iter()
            .chain(policy)
            .map(|k| k.to_string())
            .collect();
        expected.sort();
        assert_eq!(toggled.added, expected, "with {base:?}");
        assert!(toggled.removed.is_empty(), "{:?}", toggled.removed);
        assert_eq!(
            toggled.changed.keys().collect::<Vec<_>>(),
            [AGENT_DAEMONSET],
            "with {base:?}"
        );
        let (before, after) = &toggled.changed[AGENT_DAEMONSET];
        assert_eq!(agent_env(before, "RECORDING"), None);
        assert_eq!(agent_env(after, "RECORDING").as_deref(), Some("true"));
        let mut without = after.clone();
        let env = without
            .pointer_mut("/spec/template/spec/containers/0/env")
            .and_then(Value::as_array_mut)
            .expect("the agent's env");
        env.retain(|e| e["name"] != "RECORDING");
        assert_eq!(&without, before, "the agents change only by RECORDING");
    }
}

/// `admissionPolicies.enabled=false` removes every ValidatingAdmissionPolicy and its binding,
/// and nothing else.
#[test]
fn admission_policies_disabled_removes_the_policies() {
    let toggled = toggle(&[], &["admissionPolicies.enabled=false"]);
    let policies = [
        "seccompd-agent-node-restriction",
        "seccompd-controller-recorded-profiles",
        "seccompd-record-profile-opt-in",
    ];
    let mut expected: Vec<String> = [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    .iter()
    .flat_map(|kind| policies.iter().map(move |p| format!("{kind}//{p}")))
    .collect();
    expected.sort();
    assert_eq!(toggled.removed, expected);
    assert!(toggled.added.is_empty(), "{:?}", toggled.added);
    assert!(toggled.changed.is_empty(), "{:?}", toggled.changed.keys());
}

/// The objects of SeccompProfileBinding's admission chain and roles, as release seccompd
/// renders them.
const BINDING_OBJECTS: [&str; 6] = [
    "ClusterRole//seccompd-bindings-edit",
    "ClusterRole//seccompd-bindings-view",
    "MutatingAdmissionPolicy//seccompd-profile-binding",
    "MutatingAdmissionPolicyBinding//seccompd-profile-binding",
    "ValidatingAdmissionPolicy//seccompd-profile-binding-conflicts",
    "ValidatingAdmissionPolicyBinding//seccompd-profile-binding-conflicts",
];

/// `bindings.enabled=false` (clusters before Kubernetes 1.36) removes the binding policies and
/// the roles that let namespace users write bindings, and nothing else; both binding policies
/// take every SeccompProfileBinding of the pod's own namespace as their parameter.
#[test]
fn bindings_disabled_removes_the_binding_policies() {
    let toggled = toggle(&[], &["bindings.enabled=false"]);
    assert_eq!(toggled.removed, BINDING_OBJECTS);
    assert!(toggled.added.is_empty(), "{:?}", toggled.added);
    assert!(toggled.changed.is_empty(), "{:?}", toggled.changed.keys());
    let objects = template("seccompd", &[]);
    for kind in ["MutatingAdmissionPolicy", "ValidatingAdmissionPolicy"] {
        let name = if kind.starts_with("Mutating") {
            "seccompd-profile-binding"
        } else {
            "seccompd-profile-binding-conflicts"
        };
        let policy = named(&objects, kind, name);
        assert_eq!(
            policy["spec"]["paramKind"],
            serde_json::json!({"apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileBinding"})
        );
        let binding = named(&objects, &format!("{kind}Binding"), name);
        assert_eq!(
            binding["spec"]["paramRef"],
            serde_json::json!({"selector": {}, "parameterNotFoundAction": "Allow"}),
            "no namespace: the pod's own"
        );
    }
    let edit = named(&objects, "ClusterRole", "seccompd-bindings-edit");
    assert_eq!(
        edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
}

/// `metrics.podMonitor.enabled=true` adds the PodMonitor and nothing else.
#[test]
fn pod_monitor_enabled_adds_the_pod_monitor() {
    let toggled = toggle(&[], &["metrics.podMonitor.enabled=true"]);
    assert_eq!(toggled.added, ["PodMonitor/seccompd-system/seccompd-agent"]);
    assert!(toggled.removed.is_empty(), "{:?}", toggled.removed);
    assert!(toggled.changed.is_empty(), "{:?}", toggled.changed.keys());
}

/// `helmLabels=false` (as manifests/ is rendered) drops exactly Helm's four labels from every
/// object and pod template the chart templates; the CRDs (crds/, not templated) carry none.
#[test]
fn helm_labels_false_drops_only_helms_labels() {
    let toggled = toggle(
        &["recorder.enabled=true", "metrics.podMonitor.enabled=true"],
        &["helmLabels=false"],
    );
    assert!(toggled.added.is_empty() && toggled.removed.is_empty());
    let all = template(
        "seccompd",
        &["recorder.enabled=true", "metrics.podMonitor.enabled=true"],
    );
    let templated: Vec<String> = all
        .iter()
        .filter(|o| o["kind"] != "CustomResourceDefinition")
        .map(key)
        .collect();
    assert_eq!(
        toggled.changed.keys().cloned().collect::<BTreeSet<_>>(),
        templated.into_iter().collect::<BTreeSet<_>>()
    );
    for (key, (before, after)) in &toggled.changed {
        let mut stripped = before.clone();
        for pointer in ["/metadata/labels", "/spec/template/metadata/labels"] {
            let Some(labels) = stripped.pointer_mut(pointer).and_then(Value::as_object_mut) else {
                continue;
            };
            for label in HELM_LABELS {
                assert!(
                    labels.remove(label).is_some(),
                    "{key}{pointer} lacks {label}"
                );
            }
        }
        assert_eq!(&stripped, after, "{key}");
    }
}

/// Every object of a rendering, with and without the recorder, for another release and in a
/// namespace of the user's: well-formed for its kind, and what it names (service accounts,
/// roles, policies, ports, volumes, the agents' DaemonSet) is rendered beside it.
#[test]
fn rendered_objects_are_whole() {
    let variants: [(&str, &str, &[&str]); 4] = [
        ("seccompd", "default", &[]),
        (
            "seccompd",
            "default",
            &[
                "recorder.enabled=true",
                "metrics.podMonitor.enabled=true",
                "helmLabels=false",
            ],
        ),
        (
            "edge",
            "default",
            &["recorder.enabled=true", "metrics.port=9900"],
        ),
        (
            "seccompd",
            "tools",
            &[
                "recorder.enabled=true",
                "namespace.create=false",
                "namespace.name=",
            ],
        ),
    ];
    for (release, namespace, sets) in variants {
        let objects = template_in(release, namespace, sets);
        let problems: Vec<String> = objects
            .iter()
            .flat_map(|o| {
                problems(o, &objects)
                    .into_iter()
                    .map(|p| format!("{}: {p}", key(o)))
            })
            .chain(duplicates(&objects))
            .collect();
        assert!(
            problems.is_empty(),
            "release {release} in {namespace} with {sets:?}:\n{}",
            problems.join("\n")
        );
    }
}

/// Keys rendered more than once.
fn duplicates(objects: &[Value]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    objects
        .iter()
        .map(key)
        .filter(|k| !seen.insert(k.clone()))
        .map(|k| format!("{k}: rendered twice"))
        .collect()
}

/// The user a ValidatingAdmissionPolicy's matchCondition names a ServiceAccount by.
const ACCOUNT_USER: &str = "system:serviceaccount:";

/// What is wrong with `object` among `objects`.
fn problems(object: &Value, objects: &[Value]) -> Vec<String> {
    let mut found = Vec::new();
    let kind = object["kind"].as_str().unwrap_or_default();
    if let Err(e) = as_kubernetes_type(object) {
        found.push(e);
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if !is_dns_subdomain(name) {
        found.push(format!("name {name:?} is not a DNS subdomain"));
    }
    let namespace = object["metadata"]["namespace"].as_str();
    match (NAMESPACED_KINDS.contains(&kind), namespace) {
        (true, None) => found.push("namespaced, without a namespace".into()),
        (false, Some(ns)) => found.push(format!("cluster-wide, with namespace {ns}")),
        _ => {}
    }
    if kind != "CustomResourceDefinition"
        && object["metadata"]["labels"]["app.kubernetes.io/name"] != "seccompd"
    {
        found.push("no label app.kubernetes.io/name=seccompd".into());
    }
    let str_at = |value: &Value| value.as_str().unwrap_or_default().to_string();
    match kind {
        "DaemonSet" | "Deployment" => {
            let pod = &object["spec"]["template"];
            match object["spec"]["selector"]["matchLabels"].as_object() {
                Some(selector) if !selector.is_empty() => {
                    for (label, value) in selector {
                        if pod["metadata"]["labels"][label] != *value {
                            found.push(format!("its pods lack the selector's {label}={value}"));
                        }
                    }
                }
                _ => found.push("no selector.matchLabels".into()),
            }
            let account = str_at(&pod["spec"]["serviceAccountName"]);
            found.extend(missing(objects, "ServiceAccount", &account, namespace));
            for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
                found.extend(container_problems(container, &pod["spec"]));
                let env = container["env"].as_array().into_iter().flatten();
                for var in env.filter(|v| v["name"] == "AGENT_DAEMONSET") {
                    found.extend(missing(
                        objects,
                        "DaemonSet",
                        &str_at(&var["value"]),
                        namespace,
                    ));
                }
            }
        }
        "ClusterRoleBinding" | "RoleBinding" => {
            let role_kind = str_at(&object["roleRef"]["kind"]);
            let role_namespace = if role_kind == "Role" { namespace } else { None };
            let role = str_at(&object["roleRef"]["name"]);
            found.extend(missing(objects, &role_kind, &role, role_namespace));
            for subject in object["subjects"].as_array().into_iter().flatten() {
                let account = str_at(&subject["name"]);
                let ns = subject["namespace"].as_str();
                found.extend(missing(objects, "ServiceAccount", &account, ns));
            }
        }
        "ValidatingAdmissionPolicyBinding" => {
            let policy = str_at(&object["spec"]["policyName"]);
            found.extend(missing(objects, "ValidatingAdmissionPolicy", &policy, None));
        }
        "MutatingAdmissionPolicyBinding" => {
            let policy = str_at(&object["spec"]["policyName"]);
            found.extend(missing(objects, "MutatingAdmissionPolicy", &policy, None));
        }
        "MutatingAdmissionPolicy" => {
            let bound = objects.iter().any(|o| {
                o["kind"] == "MutatingAdmissionPolicyBinding" && o["spec"]["policyName"] == name
            });
            if !bound {
                found.push("no binding".into());
            }
        }
        "ValidatingAdmissionPolicy" => {
            let bound = objects.iter().any(|o| {
                o["kind"] == "ValidatingAdmissionPolicyBinding" && o["spec"]["policyName"] == name
            });
            if !bound {
                found.push("no binding".into());
            }
            let conditions = object["spec"]["matchConditions"].as_array().into_iter();
            for condition in conditions.flatten() {
                let expression = str_at(&condition["expression"]);
                for (at, _) in expression.match_indices(ACCOUNT_USER) {
                    let user = &expression[at + ACCOUNT_USER.len()..];
                    let user = user.split('"').next().unwrap_or_default();
                    let (ns, account) = user.split_once(':').unwrap_or(("", user));
                    found.extend(missing(objects, "ServiceAccount", account, Some(ns)));
                }
            }
        }
        _ => {}
    }
    found
}

/// A reference to an object `objects` lack.
fn missing(objects: &[Value], kind: &str, name: &str, namespace: Option<&str>) -> Option<String> {
    find(objects, kind, name, namespace)
        .is_none()
        .then(|| format!("names {kind} {name:?} (namespace {namespace:?}), which is not rendered"))
}

/// A container's named probe ports and its mounts name a port and volumes of its pod.
fn container_problems(container: &Value, pod_spec: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let name = container["name"].as_str().unwrap_or_default();
    let ports: Vec<&Value> = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    for probe in ["readinessProbe", "livenessProbe"] {
        let port = &container[probe]["httpGet"]["port"];
        if port.is_string() && !ports.iter().any(|p| p["name"] == *port) {
            found.push(format!(
                "container {name}: {probe} port {port} is none of its ports"
            ));
        }
    }
    let volumes = pod_spec["volumes"].as_array().into_iter().flatten();
    let volumes: Vec<&Value> = volumes.map(|v| &v["name"]).collect();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        if !volumes.contains(&&mount["name"]) {
            found.push(format!(
                "container {name}: mounts {}, no volume",
                mount["name"]
            ));
        }
    }
    found
}

/// Reads `object` as the Kubernetes type of its kind (k8s-openapi checks apiVersion, kind,
/// required fields and the types of the fields it knows).
fn as_kubernetes_type(object: &Value) -> Result<(), String> {
    fn read<T: serde::de::DeserializeOwned>(object: &Value) -> Result<(), String> {
        serde_json::from_value::<T>(object.clone())
            .map(|_| ())
            .map_err(|e| format!("not a valid {}: {e}", object["kind"]))
    }
    match object["kind"].as_str().unwrap_or_default() {
        "Namespace" => read::<Namespace>(object),
        "ServiceAccount" => read::<ServiceAccount>(object),
        "ClusterRole" => read::<ClusterRole>(object),
        "ClusterRoleBinding" => read::<ClusterRoleBinding>(object),
        "Role" => read::<Role>(object),
        "RoleBinding" => read::<RoleBinding>(object),
        "DaemonSet" => read::<DaemonSet>(object),
        "Deployment" => read::<Deployment>(object),
        "ValidatingAdmissionPolicy" => read::<ValidatingAdmissionPolicy>(object),
        "ValidatingAdmissionPolicyBinding" => read::<ValidatingAdmissionPolicyBinding>(object),
        // admissionregistration.k8s.io/v1 (Kubernetes 1.36) kept v1beta1's fields; the
        // k8s-openapi feature of the workspace (v1_35) knows the kind as v1beta1 only.
        "MutatingAdmissionPolicy" => read::<MutatingAdmissionPolicy>(&as_v1beta1(object)?),
        "MutatingAdmissionPolicyBinding" => {
            read::<MutatingAdmissionPolicyBinding>(&as_v1beta1(object)?)
        }
        "CustomResourceDefinition" => read::<CustomResourceDefinition>(object),
        // The Prometheus Operator's kind, which k8s-openapi does not have.
        "PodMonitor" if object["apiVersion"] == "monitoring.coreos.com/v1" => Ok(()),
        kind => Err(format!(
            "kind {kind:?} is new to this test: add it to the kinds above"
        )),
    }
}

/// `object`, an admissionregistration.k8s.io/v1 object, as v1beta1.
fn as_v1beta1(object: &Value) -> Result<Value, String> {
    if object["apiVersion"] != "admissionregistration.k8s.io/v1" {
        return Err(format!(
            "apiVersion {} is not admissionregistration.k8s.io/v1",
            object["apiVersion"]
        ));
    }
    let mut beta = object.clone();
    beta["apiVersion"] = "admissionregistration.k8s.io/v1beta1".into();
    Ok(beta)
}

/// A name Kubernetes takes for these kinds: at most 253 lowercase letters, digits, '-' and
/// '.', starting and ending with a letter or digit.
fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= 253
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
}
