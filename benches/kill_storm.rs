//! Kill -9 storm: the agent binary, run as a host process with its own kubelet root, is
//! killed with SIGKILL at random moments (by default 1000 times) while SeccompProfiles are
//! created, updated and deleted; a concurrent reader checks every file it can see; at the end
//! the directory must match the API exactly. Prints its figures; exits 1 on any violation.
//!
//! Needs the test cluster (`make cluster-up`). `cargo bench --bench kill_storm [-- KILLS]`.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lifecycle_support/host_agent.rs"]
#[allow(dead_code)]
mod host_agent;
#[path = "../tests/lifecycle_support/storm.rs"]
mod storm;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use storm::StormConfig;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let kills: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let kubeconfig = common::kubeconfig_path();
    let client = common::client().await;
    let work = match tempfile::tempdir() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("kill_storm: no scratch directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let prefix = format!("storm-bench-{}", std::process::id());
    println!(
        "kill_storm: {kills} kills of {}",
        env!("CARGO_BIN_EXE_seccompd")
    );
    let report = storm::run(
        client,
        StormConfig {
            kills,
            profiles: 8,
            max_life: Duration::from_millis(500),
            binary: PathBuf::from(env!("CARGO_BIN_EXE_seccompd")),
            kubeconfig,
            work: work.path().to_path_buf(),
            prefix,
            converge_within: Duration::from_secs(60),
        },
    )
    .await;
    println!("{}", report.summary());
    for v in report.violations.iter().take(20) {
        println!("violation: {v}");
    }
    if report.violations.is_empty() && report.early_exits == 0 && report.convergence.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
