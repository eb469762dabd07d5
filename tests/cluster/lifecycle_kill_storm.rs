//! The kill -9 storm, short: the agent (as a host process beside the DaemonSet, with its own
//! directory) is killed at random moments while profiles are created, updated and deleted. A
//! concurrent reader never sees a partial or invalid file, and afterwards the directory
//! matches the API exactly. `cargo bench --bench kill_storm` runs the long version.

use std::path::PathBuf;
use std::time::Duration;

use seccompd_e2e::cluster::{client, kubeconfig_path, unique};
use seccompd_e2e::lifecycle::storm::{self, StormConfig};

#[tokio::test]
async fn kill_storm_never_shows_a_partial_file_and_ends_matching_the_api() {
    let client = client().await;
    let work = tempfile::tempdir().expect("a scratch directory");
    let report = storm::run(
        client,
        StormConfig {
            kills: 30,
            profiles: 6,
            max_life: Duration::from_millis(500),
            binary: PathBuf::from(env!("CARGO_BIN_EXE_seccompd-agent")),
            kubeconfig: kubeconfig_path(),
            work: work.path().to_path_buf(),
            prefix: unique("storm"),
            converge_within: Duration::from_secs(30),
        },
    )
    .await;
    println!("{}", report.summary());
    assert_eq!(report.kills, 30);
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(report.reads > 0, "the reader read files");
    assert!(report.creates > 0 && report.deletes + report.updates > 0);
    assert_eq!(report.early_exits, 0, "no agent died on its own");
    assert!(
        report.convergence.is_some(),
        "the directory did not come to match the API: {:?}",
        report.convergence_error
    );
}
