//! A real Prometheus scrapes the agents: the binary hack/prometheus-bin.sh builds (`make deps`)
//! runs on the host with `kubernetes_sd_configs` (role pod) against the test cluster, keeps
//! the pods by the annotation and port name manifests/daemonset.yaml declares
//! (tests/prometheus/scrape-agents.yml), scrapes them at their pod IPs, and its HTTP API then
//! holds the agents' series, histograms among them.
//!
//! Fails, never skips, when the Prometheus binary or the cluster is missing.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;

use seccompd_e2e::cluster::{client, eventually, kubeconfig_path, repo_path};

const NAMESPACE: &str = "seccompd-system";
const AGENT_SELECTOR: &str = "app.kubernetes.io/name=seccompd,app.kubernetes.io/component=agent";
/// The job name in tests/prometheus/scrape-agents.yml.
const JOB: &str = "seccompd-agent";

/// Series an agent exposes from its start (histograms as Prometheus stores them: one series
/// per bucket, plus sum and count). The controller's (`seccompd_report_to_status_seconds`,
/// `seccompd_status_writes_total`) are not an agent's.
const EXPECTED_SERIES: [&str; 8] = [
    "seccompd_sync_passes_total",
    "seccompd_drift_repairs_total",
    "seccompd_ready",
    "seccompd_last_sync_pass_timestamp_seconds",
    "seccompd_sync_pass_duration_seconds_bucket",
    "seccompd_sync_pass_duration_seconds_count",
    "seccompd_sync_pass_duration_seconds_sum",
    "seccompd_profile_change_to_file_seconds_bucket",
];

#[tokio::test]
async fn prometheus_discovers_and_scrapes_every_agent() {
    let agents = agent_pods().await;
    let prometheus = Prometheus::start();

    // Discovery keeps exactly the agent pods, and every scrape succeeds.
    let targets = eventually(
        "Prometheus to scrape every agent pod",
        Duration::from_secs(90),
        || async { prometheus.healthy_targets() },
    )
    .await;
    assert_eq!(
        targets, agents,
        "the targets Prometheus kept are the agent pods"
    );

    // The agents' series are in Prometheus's storage, histogram buckets included.
    let names = eventually(
        "the agents' series in Prometheus",
        Duration::from_secs(60),
        || async {
            let names = prometheus.series_names()?;
            let missing: Vec<_> = EXPECTED_SERIES
                .iter()
                .filter(|n| !names.contains(**n))
                .collect();
            if missing.is_empty() {
                Ok(names)
            } else {
                Err(format!("missing {missing:?}; have {names:?}"))
            }
        },
    )
    .await;
    assert!(
        names.iter().all(|n| n.starts_with("seccompd_")),
        "{names:?}"
    );

    // A histogram with real observations: every agent has completed passes, each in the
    // +Inf bucket; and each agent reports itself ready.
    for (query, what) in [
        (
            format!("seccompd_sync_pass_duration_seconds_bucket{{job=\"{JOB}\",le=\"+Inf\"}}"),
            "completed passes in the duration histogram",
        ),
        (format!("seccompd_ready{{job=\"{JOB}\"}}"), "ready agents"),
    ] {
        let samples = prometheus.query(&query).unwrap_or_else(|e| panic!("{e}"));
        let pods: BTreeSet<String> = samples
            .iter()
            .filter(|(_, value)| *value >= 1.0)
            .map(|(pod, _)| pod.clone())
            .collect();
        assert_eq!(pods, agents, "{what}: {query} gave {samples:?}");
    }
}

/// The agent pods of the DaemonSet, by name.
async fn agent_pods() -> BTreeSet<String> {
    let pods: Api<Pod> = Api::namespaced(client().await, NAMESPACE);
    let list = pods
        .list(&ListParams::default().labels(AGENT_SELECTOR))
        .await
        .expect("listing the agent pods");
    let names: BTreeSet<String> = list
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(!names.is_empty(), "no agent pod in {NAMESPACE}");
    names
}

/// The Prometheus binary hack/prometheus-bin.sh builds and caches (it owns the version).
fn prometheus_binary() -> PathBuf {
    let script = repo_path("hack/prometheus-bin.sh");
    let out = Command::new(&script)
        .arg("--path")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} --path failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.is_file(),
        "no Prometheus binary at {}: build it with hack/prometheus-bin.sh (`make deps` does)",
        path.display()
    );
    path
}

/// A Prometheus process on the host, killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with tests/prometheus/scrape-agents.yml and waits until it is ready.
    fn start() -> Self {
        let binary = prometheus_binary();
        let kubeconfig = kubeconfig_path();
        assert!(
            kubeconfig.is_file(),
            "no kubeconfig at {}: bring the test cluster up first (`make cluster-up`)",
            kubeconfig.display()
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        let template = fs::read_to_string(repo_path("tests/prometheus/scrape-agents.yml"))
            .expect("reading tests/prometheus/scrape-agents.yml");
        fs::write(
            &config,
            template.replace("@KUBECONFIG@", &kubeconfig.to_string_lossy()),
        )
        .expect("writing the Prometheus configuration");
        let log = dir.path().join("prometheus.log");
        let port = free_port();
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("creating the Prometheus log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut prometheus = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        prometheus.wait_until_ready();
        prometheus
    }

    fn wait_until_ready(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Prometheus exited ({status}):\n{}", self.log_text());
            }
            if curl(&format!("{}/-/ready", self.url), &[]).is_ok() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "Prometheus not ready after 60 s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The pods of the job's active targets once all are up; `Err` says which are not.
    fn healthy_targets(&self) -> Result<BTreeSet<String>, String> {
        let data = self.api("/api/v1/targets", &[("state", "active")])?;
        let targets: Vec<&Value> = data["activeTargets"]
            .as_array()
            .ok_or("no activeTargets")?
            .iter()
            .filter(|t| t["labels"]["job"] == JOB)
            .collect();
        let down: Vec<_> = targets.iter().filter(|t| t["health"] != "up").collect();
        if targets.is_empty() || !down.is_empty() {
            return Err(format!("targets {targets:?}"));
        }
        targets
            .iter()
            .map(|t| {
                t["labels"]["pod"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("a target without a pod label: {t}"))
            })
            .collect()
    }

    /// The names of every series the job's scrapes stored.
    fn series_names(&self) -> Result<BTreeSet<String>, String> {
        let data = self.api(
            "/api/v1/label/__name__/values",
            &[("match[]", &format!("{{job=\"{JOB}\"}}"))],
        )?;
        let names = data.as_array().ok_or("no names")?;
        Ok(names
            .iter()
            .filter_map(|n| n.as_str())
            // Prometheus's own series about each scrape (`up`, `scrape_*`).
            .filter(|n| *n != "up" && !n.starts_with("scrape_"))
            .map(str::to_string)
            .collect())
    }

    /// An instant query's samples, by the `pod` label.
    fn query(&self, query: &str) -> Result<Vec<(String, f64)>, String> {
        let data = self.api("/api/v1/query", &[("query", query)])?;
        data["result"]
            .as_array()
            .ok_or_else(|| format!("no result: {data}"))?
            .iter()
            .map(|s| {
                let pod = s["metric"]["pod"].as_str().ok_or("no pod label")?;
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("no value in {s}"))?;
                Ok((pod.to_string(), value))
            })
            .collect()
    }

    /// The `data` of a successful API answer.
    fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let body = curl(&format!("{}{path}", self.url), params)?;
        let answer: Value =
            serde_json::from_str(&body).map_err(|e| format!("{path}: {e}: {body}"))?;
        if answer["status"] != "success" {
            return Err(format!("{path}: {answer}"));
        }
        Ok(answer["data"].clone())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("Prometheus log:\n{}", self.log_text());
        }
    }
}

/// A GET with URL-encoded query parameters, through curl; the body of a 2xx answer.
fn curl(url: &str, params: &[(&str, &str)]) -> Result<String, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-fsS", "--max-time", "5", "--get", url]);
    for (key, value) in params {
        cmd.arg("--data-urlencode").arg(format!("{key}={value}"));
    }
    let out = cmd.output().map_err(|e| format!("running curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{url}: {e}"))
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address").port()
}
