//! The control plane dying under load: kube-apiserver, then etcd, killed with SIGKILL (no
//! shutdown of their own) while 200 profiles are being created, and started again with the
//! same arguments. The creates that failed meanwhile are retried, as any client does; in the
//! end every profile's file holds its exact bytes on both nodes, every status says
//! `Installed 2/2`, and no reader ever saw a partial file. Each prints the time from the
//! restart to convergence.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use seccompd_e2e::cluster::client;
use seccompd_e2e::faults::{
    Batch, FileWatch, all_installed, both_dirs, both_match, require_two_nodes,
    wait_cluster_healthy, wait_created,
};
use seccompd_e2e::lifecycle::component::StoppedComponent;

const PROFILES: usize = 200;
/// Creates in flight at once.
const WORKERS: usize = 4;
/// The component is killed once this many profiles exist: the rest are created through the
/// outage and after it.
const KILL_AFTER: usize = 60;
/// How long the killed component stays down before it is started again (a supervisor's
/// restart delay).
const DOWN_FOR: Duration = Duration::from_secs(3);
/// From the restart to every file and status in place.
const CONVERGE_WITHIN: Duration = Duration::from_secs(180);

#[tokio::test]
async fn apiserver_killed_and_restarted_during_a_bulk_create_loses_nothing() {
    killed_during_a_bulk_create("kube-apiserver", "apiserver-kill").await;
}

#[tokio::test]
async fn etcd_killed_and_restarted_during_a_bulk_create_loses_nothing() {
    killed_during_a_bulk_create("etcd", "etcd-kill").await;
}

async fn killed_during_a_bulk_create(component: &'static str, fault: &str) {
    require_two_nodes();
    let client = client().await;
    let batch = Batch::new(fault, PROFILES);
    let _cleanup = batch.cleanup();
    let wants = batch.wants();
    let watch = FileWatch::start(both_dirs(), wants.clone());

    let (creator, created) = batch.spawn_creates(&client, WORKERS);
    wait_created(&created, KILL_AFTER).await;

    let killed = StoppedComponent::kill(component);
    let created_before = created.load(Ordering::SeqCst);
    tokio::time::sleep(DOWN_FOR).await;
    let created_while_down = created.load(Ordering::SeqCst) - created_before;
    killed.restart();
    let restarted = Instant::now();
    let failed_attempts = creator.await.expect("the creates finished");
    let all_created = restarted.elapsed();

    let gone = BTreeSet::new();
    let mut files_at = None;
    let mut last = String::new();
    let converged = loop {
        if files_at.is_none() && both_match(&wants, &gone).is_ok() {
            files_at = Some(restarted.elapsed());
        }
        if files_at.is_some() {
            match all_installed(&client, &batch.selector(), PROFILES, 2).await {
                Ok(()) => break restarted.elapsed(),
                Err(e) => last = e,
            }
        } else if let Err(e) = both_match(&wants, &gone) {
            last = e;
        }
        assert!(
            restarted.elapsed() < CONVERGE_WITHIN,
            "{component} restarted {CONVERGE_WITHIN:?} ago and still: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let files_ms = files_at.unwrap_or_default().as_millis();
    let (reads, violations) = watch.finish();
    println!(
        "fault {fault}: profiles={PROFILES} created_before_kill={created_before} \
         created_while_down={created_while_down} failed_creates={failed_attempts} \
         down_ms={} all_created_ms={} files_ms={files_ms} converged_ms={} reads={reads} \
         partial_files={}",
        DOWN_FOR.as_millis(),
        all_created.as_millis(),
        converged.as_millis(),
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(reads > 0, "the reader read files");
    batch.delete_all(&client).await;
    // Afterwards every node serves and the agents and controllers are ready: the tests that
    // follow start from a cluster that has recovered.
    wait_cluster_healthy().await;
}
