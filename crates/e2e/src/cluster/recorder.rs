//! The opt-in recorder on the test cluster: deployed as a user's kustomization adds it
//! (manifests/ with the component manifests/recorder) and removed again, and its `/metrics` on
//! a node. Shared by the cluster tests and the audit bench.

use std::collections::BTreeMap;

use super::tokens::NAMESPACE;
use super::{apply_manifests, kubectl, kubectl_ok, repo_path};
use crate::lifecycle::{parse_metrics, wait_agents_rolled_out};

/// The label selector of the recorder's pods.
pub const RECORDER_SELECTOR: &str =
    "app.kubernetes.io/name=seccompd,app.kubernetes.io/component=recorder";

/// The port of the recorder's `/metrics` (charts/seccompd/templates/recorder/daemonset.yaml).
const METRICS_PORT: u16 = 9811;

/// The recorder's own objects, to remove it (the component also patches the agents, which
/// re-applying manifests/ undoes).
fn recorder_files() -> Vec<String> {
    ["rbac.yaml", "daemonset.yaml", "admission-policies.yaml"]
        .iter()
        .map(|f| {
            repo_path("manifests/recorder")
                .join(f)
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn rollout(what: &str) {
    kubectl_ok(&["-n", NAMESPACE, "rollout", "status", what, "--timeout=180s"]);
}

/// The recorder, deployed for a test or a bench and removed when dropped. `SECCOMPD_IMAGE`
/// names another image for it than the manifests' one.
pub struct Recorder;

impl Recorder {
    /// Deploys it; whatever fails half-way is undone when the guard drops.
    pub fn deploy() -> Self {
        let guard = Recorder;
        let dir = tempfile::tempdir().expect("a temporary directory");
        // kustomize takes only relative paths to other kustomizations.
        let up = "../".repeat(dir.path().components().count() - 1);
        let manifests = format!(
            "{up}{}",
            repo_path("manifests")
                .to_str()
                .expect("utf-8")
                .trim_start_matches('/')
        );
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [{manifests}]\ncomponents: [{manifests}/recorder]\n"
            ),
        )
        .expect("writing the kustomization");
        let out = apply_manifests(dir.path());
        assert!(
            out.status.success(),
            "applying manifests/ with the recorder component failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Ok(image) = std::env::var("SECCOMPD_IMAGE") {
            let container = format!("recorder={image}");
            kubectl_ok(&[
                "-n",
                NAMESPACE,
                "set",
                "image",
                "daemonset/seccompd-recorder",
                &container,
            ]);
        }
        rollout("daemonset/seccompd-recorder");
        wait_agents_rolled_out();
        guard
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let manifests = repo_path("manifests");
        let _ = apply_manifests(&manifests);
        let files = recorder_files();
        let mut args = vec!["delete", "--ignore-not-found", "--wait"];
        for f in &files {
            args.extend(["-f", f.as_str()]);
        }
        let _ = kubectl(&args);
        let _ = kubectl(&[
            "-n",
            NAMESPACE,
            "rollout",
            "status",
            "ds/seccompd-agent",
            "--timeout=180s",
        ]);
    }
}

/// The recorder's pod on `node`: its name and uid.
pub fn recorder_pod(node: &str) -> (String, String) {
    super::tokens::pod_on(RECORDER_SELECTOR, node)
}

/// The recorder's `/metrics` on `node` as text, through the API server's pod proxy.
pub fn recorder_metrics_text(node: &str) -> String {
    let path = format!(
        "/api/v1/namespaces/{NAMESPACE}/pods/{}:{METRICS_PORT}/proxy/metrics",
        recorder_pod(node).0
    );
    kubectl_ok(&["get", "--raw", &path])
}

/// Every sample of the recorder's `/metrics` on `node`, by series (name and labels as
/// printed).
pub fn recorder_metrics(node: &str) -> BTreeMap<String, f64> {
    parse_metrics(&recorder_metrics_text(node))
}

/// One series of the recorder's `/metrics` on `node` (name and labels as printed).
pub fn recorder_metric(node: &str, series: &str) -> Option<f64> {
    recorder_metrics_text(node)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
