//! Benchmark: time from `create` of a SeccompProfile (the API server has accepted it) to the
//! complete file on the node, and to `Installed` in its status. Runs against the test cluster
//! (`make cluster-up`) as root on the node; prints figures, asserts nothing.
//!
//! `cargo bench --bench apply_to_file -- [ROUNDS]` (default 30).

use std::time::{Duration, Instant};

use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use seccompd_api::{Phase, SeccompProfile, SeccompProfileSpec};
use seccompd_e2e::{cluster, results};
use seccompd_profile::model::ProfileSpec;
use seccompd_profile::render::render;
use seccompd_profile::resolve::resolve;
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// The row printed for `samples` (sorted in place), and its `key_p50_ms=...` summary words.
fn row(label: &str, key: &str, samples: &mut [Duration]) -> (String, String) {
    samples.sort();
    let (min, max) = (samples[0], samples[samples.len() - 1]);
    let (median, p95) = (percentile(samples, 0.5), percentile(samples, 0.95));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        format!(
            "{label:<22} n={:<4} min={min:>8.1?} median={median:>8.1?} p95={p95:>8.1?} max={max:>8.1?}",
            samples.len(),
        ),
        format!(
            "{key}_min_ms={:.1} {key}_p50_ms={:.1} {key}_p95_ms={:.1} {key}_max_ms={:.1}",
            ms(min),
            ms(median),
            ms(p95),
            ms(max)
        ),
    )
}

#[tokio::main]
async fn main() {
    let results = results::ResultsFile::new("apply-to-file");
    let rounds: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let api: Api<SeccompProfile> = Api::all(cluster::client().await);
    let mut to_file = Vec::new();
    let mut to_status = Vec::new();
    for i in 0..rounds {
        let name = cluster::unique(&format!("bench-{i}"));
        let spec: ProfileSpec = serde_json::from_value(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "write", "exit_group", "execve"], "action": "SCMP_ACT_ALLOW"}],
        }))
        .expect("spec");
        let want = render(&resolve(&name, &spec, |_| None).expect("resolve")).bytes;
        let path = cluster::node_profile_path(&name);
        let obj = SeccompProfile::new(&name, SeccompProfileSpec(spec));
        api.create(&PostParams::default(), &obj)
            .await
            .expect("create");
        let start = Instant::now();
        // Poll tightly: the figure of interest is the agent's latency, not the poll interval.
        while std::fs::read(&path).ok().as_deref() != Some(&want[..]) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{name} never arrived"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        to_file.push(start.elapsed());
        loop {
            let p = api.get(&name).await.expect("get");
            if p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Installed) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} never Installed",
                p.name_any()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        to_status.push(start.elapsed());
        api.delete(&name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    let (file_row, file_words) = row("create -> file", "file", &mut to_file);
    let (status_row, status_words) = row("create -> Installed", "installed", &mut to_status);
    let report = format!(
        "seccompd apply-to-node latency on one node ({rounds} profiles, created one at a time)\n{file_row}\n{status_row}"
    );
    let summary = format!("apply-to-file: rounds={rounds} {file_words} {status_words}");
    println!("{report}\n{summary}");
    let figures = results::figures_from_line(&summary);
    match results.write(figures, &summary, &report, &[]) {
        Ok(path) => println!("results: {}", path.display()),
        Err(e) => panic!("writing the results file: {e}"),
    }
}
