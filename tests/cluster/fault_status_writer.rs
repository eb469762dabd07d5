//! The controller replica that writes statuses (the one holding the Lease) killed with
//! SIGKILL in the middle of a bulk create of 1,000 profiles and not coming back (as when its
//! node dies: its pod is the one the Deployment scales away): the other replica takes the
//! Lease once it runs out, takes up every profile, and every status ends `Installed 2/2`, none
//! stuck. Prints the failover time and when the last status was in place.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use seccompd_controller::status::writer::candidate_pod;
use seccompd_e2e::cluster::{client, eventually, kubectl, kubectl_ok};
use seccompd_e2e::faults::{
    Batch, all_installed, both_match, require_two_nodes, wait_cluster_healthy, wait_created,
};
use seccompd_e2e::lifecycle::component::signal;
use seccompd_e2e::lifecycle::{AGENT_NAMESPACE, wait_controller_ready};
use seccompd_e2e::procs::pod_process_pid;

use crate::two_nodes::lease_holder_identity;

const PROFILES: usize = 1000;
const WORKERS: usize = 16;
/// The writer is killed once this many profiles exist.
const KILL_AFTER: usize = 300;
/// From the last create to every status `Installed`.
const INSTALLED_WITHIN: Duration = Duration::from_secs(300);
const CONTROLLER: &str = "deployment/seccompd-controller";

/// Puts the controller Deployment back to its replicas, also when the test fails.
struct RestoreReplicas(String);

impl Drop for RestoreReplicas {
    fn drop(&mut self) {
        let replicas = format!("--replicas={}", self.0);
        let out = kubectl(&["-n", AGENT_NAMESPACE, "scale", CONTROLLER, &replicas]);
        if !out.status.success() {
            eprintln!(
                "restoring {CONTROLLER} to {}: {}",
                self.0,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if !std::thread::panicking() {
            wait_controller_ready();
        }
    }
}

#[tokio::test]
async fn the_status_writer_killed_during_a_bulk_create_of_1000_leaves_no_status_behind() {
    require_two_nodes();
    wait_controller_ready();
    let client = client().await;
    let holder = eventually("a status writer", Duration::from_secs(90), || async {
        lease_holder_identity(&client)
            .await
            .ok_or_else(|| "no holder".to_string())
    })
    .await;
    let holder_pod = candidate_pod(&holder).to_string();
    let pods: Api<Pod> = Api::namespaced(client.clone(), AGENT_NAMESPACE);
    let uid = pods
        .get(&holder_pod)
        .await
        .expect("the writer's pod")
        .metadata
        .uid
        .expect("a pod uid");
    let pid = pod_process_pid(&uid).expect("the writer's seccompd process on this machine");

    let batch = Batch::new("fault-writer", PROFILES);
    let _cleanup = batch.cleanup();
    let wants = batch.wants();
    let started = Instant::now();
    let (creator, created) = batch.spawn_creates(&client, WORKERS);
    wait_created(&created, KILL_AFTER).await;
    signal(pid, "-KILL");
    let killed = Instant::now();
    let created_before_kill = created.load(Ordering::SeqCst);
    // The killed replica stays gone: its pod is the cheapest to delete and the Deployment
    // drops to one replica, so the Lease can only pass to the replica that was not killed
    // (otherwise the killed pod's restarted container may simply take it back).
    let replicas = kubectl_ok(&[
        "-n",
        AGENT_NAMESPACE,
        "get",
        CONTROLLER,
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas.trim(), "2", "the controller runs two replicas");
    let _restore = RestoreReplicas(replicas.trim().to_string());
    kubectl_ok(&[
        "-n",
        AGENT_NAMESPACE,
        "annotate",
        "--overwrite",
        "pod",
        &holder_pod,
        "controller.kubernetes.io/pod-deletion-cost=-1000",
    ]);
    kubectl_ok(&["-n", AGENT_NAMESPACE, "scale", CONTROLLER, "--replicas=1"]);

    let next = eventually(
        "the Lease to pass to the other replica",
        Duration::from_secs(90),
        || async {
            match lease_holder_identity(&client).await {
                Some(h) if candidate_pod(&h) != holder_pod => Ok(h),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let failover = killed.elapsed();
    creator.await.expect("the creates finished");
    let last_create = Instant::now();
    let create_s = started.elapsed().as_secs_f64();

    let installed = loop {
        let last = match all_installed(&client, &batch.selector(), PROFILES, 2).await {
            Ok(()) => break last_create.elapsed(),
            Err(e) => e,
        };
        assert!(
            last_create.elapsed() < INSTALLED_WITHIN,
            "statuses stuck {INSTALLED_WITHIN:?} after the last create: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let after_kill = killed.elapsed();
    both_match(&wants, &Default::default()).expect("every file on both nodes");
    let next_pod = candidate_pod(&next).to_string();
    println!(
        "fault status-writer-kill: profiles={PROFILES} created_before_kill={created_before_kill} \
         create_s={create_s:.1} killed={holder_pod} new_writer={next_pod} \
         failover_ms={} installed_ms_after_last_create={} installed_ms_after_kill={}",
        failover.as_millis(),
        installed.as_millis(),
        after_kill.as_millis()
    );
    batch.delete_all(&client).await;
    wait_cluster_healthy().await;
}
