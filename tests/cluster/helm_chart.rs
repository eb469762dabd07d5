//! A release of the Helm chart (charts/seccompd) on the test cluster: install, upgrade,
//! uninstall. What the chart renders is checked offline by tests/helm_chart.rs.

use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use seccompd_e2e::cluster::{self, eventually, kubeconfig_path, kubectl_ok};
use seccompd_e2e::tools::{helm_bin, ok, run};

const RELEASE: &str = "seccompd-chart-test";
/// The release's record lives here; its objects in a namespace of their own (`RELEASE`),
/// which the chart creates (values.yaml, `namespace`).
const RELEASE_NAMESPACE: &str = "default";
const MANIFESTS_NAMESPACE: &str = "seccompd-system";
const AGENT_SELECTOR: &str = "app.kubernetes.io/name=seccompd,app.kubernetes.io/component=agent";

fn helm_cluster(args: &[&str]) -> Output {
    let kubeconfig = kubeconfig_path();
    let mut all = vec!["--kubeconfig", kubeconfig.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run(helm_bin(), &all)
}

fn helm_cluster_ok(args: &[&str]) -> String {
    ok(&format!("helm {args:?}"), helm_cluster(args))
}

/// Puts the cluster back as `make cluster-up` left it, whether the test passed or not: the
/// release gone and seccompd from manifests/ rolled out again.
struct RestoreManifests;

impl Drop for RestoreManifests {
    fn drop(&mut self) {
        let _ = helm_cluster(&["uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait"]);
        let manifests = cluster::repo_path("manifests");
        restore_step(
            "delete the release's namespace",
            &cluster::kubectl(&[
                "delete",
                "namespace",
                RELEASE,
                "--ignore-not-found",
                "--wait",
            ]),
        );
        restore_step("apply manifests/", &cluster::apply_manifests(&manifests));
        restore_step(
            "wait for the agents' rollout",
            &cluster::kubectl(&[
                "-n",
                MANIFESTS_NAMESPACE,
                "rollout",
                "status",
                "ds/seccompd-agent",
                "--timeout=180s",
            ]),
        );
    }
}

/// Fails the test when a step of [`RestoreManifests`] failed; only says so when the test is
/// failing already.
fn restore_step(what: &str, out: &Output) {
    if !out.status.success() {
        let msg = format!(
            "restoring seccompd from manifests/: {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if std::thread::panicking() {
            eprintln!("{msg}");
        } else {
            panic!("{msg}");
        }
    }
}

/// Agent pods of the DaemonSet in `namespace`: (uid, ready, RUST_LOG).
async fn agent_pods(client: &Client, namespace: &str) -> Vec<(String, bool, Option<String>)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(AGENT_SELECTOR))
        .await
        .expect("listing agent pods");
    list.items
        .iter()
        .map(|p| {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let log = p.spec.as_ref().and_then(|s| {
                let env = s.containers.first()?.env.as_ref()?;
                env.iter().find(|e| e.name == "RUST_LOG")?.value.clone()
            });
            (p.metadata.uid.clone().unwrap_or_default(), ready, log)
        })
        .collect()
}

/// Waits until `namespace` runs `desired` ready agent pods, none of them in `old`, all
/// with RUST_LOG `log`; returns their uids.
async fn wait_for_agents(
    client: &Client,
    namespace: &str,
    desired: usize,
    old: &[String],
    log: &str,
) -> Vec<String> {
    eventually(
        &format!("{desired} ready agent(s) in {namespace} with RUST_LOG={log}"),
        Duration::from_secs(180),
        || async {
            let pods = agent_pods(client, namespace).await;
            let done = pods.len() == desired
                && pods.iter().all(|(uid, ready, l)| {
                    *ready && !old.contains(uid) && l.as_deref() == Some(log)
                });
            if done {
                Ok(pods.into_iter().map(|(uid, ..)| uid).collect())
            } else {
                Err(format!("{pods:?}"))
            }
        },
    )
    .await
}

/// `helm install`, `helm upgrade` with a changed value, `helm uninstall` on the test cluster.
///
/// The cluster already runs seccompd from manifests/ in seccompd-system. A release beside
/// it would put two agents on the node, writing the same profile directory and the same
/// SeccompNodeReport, and elect two status writers for the same statuses. So the test
/// deletes only that DaemonSet (and waits for its pods to be gone; the CRDs, the profiles,
/// its RBAC and namespace stay), installs the release with names of its own (cluster-wide:
/// `seccompd-chart-test-agent`; namespace `seccompd-chart-test`, made by the chart; release
/// record in `default`), and at the end, also when it fails (`RestoreManifests`), uninstalls
/// the release, re-applies manifests/ and waits for the rollout, so the tests after it find
/// the cluster as before.
///
/// Asserts: the install brings up a ready agent on every node; an upgrade that changes
/// `logLevel` changes the DaemonSet's pod template and replaces every agent pod with a ready
/// one carrying the new value; the uninstall leaves no object of the release (its namespace,
/// namespaced and cluster-wide objects, its release record) but keeps the CRDs.
#[tokio::test]
async fn install_upgrade_uninstall() {
    helm_bin();
    let client = cluster::client().await;
    let _restore = RestoreManifests;

    let nodes = kubectl_ok(&["get", "nodes", "-o", "name"]).lines().count();
    kubectl_ok(&[
        "-n",
        MANIFESTS_NAMESPACE,
        "delete",
        "daemonset",
        "seccompd-agent",
        "--ignore-not-found",
        "--wait",
    ]);
    eventually(
        "the manifests/ agent pods to be gone",
        Duration::from_secs(120),
        || async {
            let pods = agent_pods(&client, MANIFESTS_NAMESPACE).await;
            if pods.is_empty() {
                Ok(())
            } else {
                Err(format!("{pods:?}"))
            }
        },
    )
    .await;

    let namespace_value = format!("namespace.name={RELEASE}");
    let mut install = vec![
        "install",
        RELEASE,
        "charts/seccompd",
        "-n",
        RELEASE_NAMESPACE,
        "--set",
        &namespace_value,
        "--wait",
        "--timeout",
        "3m",
    ];
    // As the README tells users of a release before 1.36 (no MutatingAdmissionPolicy v1).
    if !cluster::serves_mutating_admission_policy_v1() {
        install.extend(["--set", "bindings.enabled=false"]);
    }
    helm_cluster_ok(&install);
    let installed = wait_for_agents(&client, RELEASE, nodes, &[], "info").await;
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), RELEASE);
    let ds_name = format!("{RELEASE}-agent");
    let before = daemonsets
        .get(&ds_name)
        .await
        .expect("the release's DaemonSet");

    helm_cluster_ok(&[
        "upgrade",
        RELEASE,
        "charts/seccompd",
        "-n",
        RELEASE_NAMESPACE,
        "--reuse-values",
        "--set",
        "logLevel=debug",
        "--wait",
        "--timeout",
        "3m",
    ]);
    let after = daemonsets
        .get(&ds_name)
        .await
        .expect("the release's DaemonSet");
    assert_ne!(
        before.spec.as_ref().map(|s| &s.template),
        after.spec.as_ref().map(|s| &s.template),
        "the upgrade did not change the pod template"
    );
    assert!(after.metadata.generation > before.metadata.generation);
    wait_for_agents(&client, RELEASE, nodes, &installed, "debug").await;

    helm_cluster_ok(&["uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait"]);
    let instance = format!("app.kubernetes.io/instance={RELEASE}");
    eventually(
        "no object of the release left",
        Duration::from_secs(120),
        || async {
            let secrets = format!("owner=helm,name={RELEASE}");
            let queries: [&[&str]; 4] = [
                &[
                    "get",
                    "namespace",
                    RELEASE,
                    "-o",
                    "name",
                    "--ignore-not-found",
                ],
                &[
                    "get",
                    "clusterroles,clusterrolebindings",
                    "-l",
                    &instance,
                    "-o",
                    "name",
                ],
                &[
                    "get",
                    "daemonsets,pods,serviceaccounts,roles,rolebindings",
                    "-A",
                    "-l",
                    &instance,
                    "-o",
                    "name",
                ],
                // The release record.
                &[
                    "-n",
                    RELEASE_NAMESPACE,
                    "get",
                    "secrets",
                    "-l",
                    &secrets,
                    "-o",
                    "name",
                ],
            ];
            let text: String = queries.into_iter().map(kubectl_ok).collect();
            if text.trim().is_empty() {
                Ok(())
            } else {
                Err(text)
            }
        },
    )
    .await;
    kubectl_ok(&[
        "get",
        "crd",
        "seccompprofiles.seccompd.dev",
        "seccompnodereports.seccompd.dev",
    ]);
}
