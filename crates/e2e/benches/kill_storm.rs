//! Kill -9 storm: the agent binary, run as a host process with its own kubelet root, is
//! killed with SIGKILL at random moments (by default 1000 times) while SeccompProfiles are
//! created, updated and deleted; a concurrent reader checks every file it can see; at the end
//! the directory must match the API exactly. Prints its figures; exits 1 on any violation.
//!
//! Needs the test cluster (`make cluster-up`). `cargo bench --bench kill_storm [-- KILLS]`;
//! the agent is the release build of this checkout, or the executable `SECCOMPD_AGENT_BIN` names.

use std::process::ExitCode;
use std::time::Duration;

use seccompd_e2e::lifecycle::storm::{self, StormConfig};
use seccompd_e2e::{agent_binary, cluster, results};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let results = results::ResultsFile::new("kill-storm");
    let kills: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let binary = match agent_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("kill_storm: no agent executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let kubeconfig = cluster::kubeconfig_path();
    let client = cluster::client().await;
    let work = match tempfile::tempdir() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("kill_storm: no scratch directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let prefix = format!("storm-bench-{}", std::process::id());
    println!("kill_storm: {kills} kills of {}", binary.display());
    let report = storm::run(
        client,
        StormConfig {
            kills,
            profiles: 8,
            max_life: Duration::from_millis(500),
            binary,
            kubeconfig,
            work: work.path().to_path_buf(),
            prefix,
            converge_within: Duration::from_secs(60),
        },
    )
    .await;
    let text = report.summary();
    println!("{text}");
    for v in report.violations.iter().take(20) {
        println!("violation: {v}");
    }
    let summary = format!(
        "kill-storm: kills={} kills_mid_write={} early_exits={} creates={} updates={} deletes={} api_errors={} storm_s={:.1} reads={} violations={} max_temp_files={} convergence_ms={}",
        report.kills,
        report.kills_mid_write,
        report.early_exits,
        report.creates,
        report.updates,
        report.deletes,
        report.api_errors,
        report.storm.as_secs_f64(),
        report.reads,
        report.violations.len(),
        report.max_temp_files,
        report
            .convergence
            .map_or_else(|| "none".into(), |d| d.as_millis().to_string()),
    );
    println!("{summary}");
    let written = results.write(results::figures_from_line(&summary), &summary, &text, &[]);
    match &written {
        Ok(path) => println!("results: {}", path.display()),
        Err(e) => eprintln!("kill_storm: writing the results file: {e}"),
    }
    if written.is_ok()
        && report.violations.is_empty()
        && report.early_exits == 0
        && report.convergence.is_some()
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
