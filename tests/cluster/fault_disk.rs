//! node2's seccomp directory on a filesystem that is full (ENOSPC), then one that is
//! read-only (EROFS): a small tmpfs mounted over the directory in node2's mount namespace, so
//! that node2's kubelet, runtime and agent all see it and node1 does not. While a profile is
//! created, another updated and a third deleted: no partial or empty file ever appears (each
//! file stays as it was or is complete), each profile node2 cannot write is `Error` naming
//! the cause on node2 only, node1 installs everything, the agent stays healthy; and once space
//! or writability returns everything is installed within seconds (the time is printed).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use seccompd_api::SeccompProfile;
use seccompd_e2e::cluster::{client, eventually};
use seccompd_e2e::faults::{
    Batch, FileWatch, NODE2, Node2SmallFs, agent_pod_on, agent_probe, all_installed, both_dirs,
    create_all, dir_matches, file_name, node2_dir, require_two_nodes, wait_cluster_healthy,
};
use seccompd_e2e::lifecycle::{denylist, node_dir, rendered, wait_status};
use serde_json::Value;

/// From the moment the filesystem can take writes again to every file and status in place.
const RECOVER_WITHIN: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug)]
enum Fault {
    Full,
    ReadOnly,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Full => "enospc",
            Fault::ReadOnly => "erofs",
        }
    }

    /// What the agent's reason must name.
    fn cause(self) -> &'static str {
        match self {
            Fault::Full => "No space left on device",
            Fault::ReadOnly => "Read-only file system",
        }
    }
}

#[tokio::test]
async fn a_full_directory_on_node2_is_an_error_there_and_recovers_within_seconds() {
    faulty_directory(Fault::Full).await;
}

#[tokio::test]
async fn a_read_only_directory_on_node2_is_an_error_there_and_recovers_within_seconds() {
    faulty_directory(Fault::ReadOnly).await;
}

async fn faulty_directory(fault: Fault) {
    require_two_nodes();
    let client = client().await;
    // Three profiles: `updated` and `deleted` exist before the fault, `created` comes during
    // it.
    let batch = Batch::new(&format!("fault-{}", fault.name()), 3);
    let _cleanup = batch.cleanup();
    let [(updated, old_spec), (deleted, _), (created, _)] =
        <[(String, _); 3]>::try_from(batch.specs.clone()).expect("three profiles");
    let before: Vec<SeccompProfile> = [&batch.specs[0], &batch.specs[1]]
        .into_iter()
        .map(|(n, s)| batch.object(n, s))
        .collect();
    create_all(&client, before, 2, Default::default()).await;
    for name in [&updated, &deleted] {
        wait_status(name, "Installed", "2/2", WAIT).await;
    }
    let wants = batch.wants();
    let (updated_file, created_file) = (file_name(&updated), file_name(&created));

    let small = Node2SmallFs::mount();
    // node2's new agent, on the small filesystem, found its files there as they were.
    let mut held = wants.clone();
    held.remove(&created_file);
    dir_matches(&node2_dir(), &held, &BTreeSet::new()).expect("node2's files on the copy");
    let watch = FileWatch::start(both_dirs(), wants.clone());

    let filler = match fault {
        Fault::Full => Some(small.fill()),
        Fault::ReadOnly => {
            small.set_read_only(true);
            None
        }
    };
    let faulted = Instant::now();

    // The changes: an update, a create, and on the read-only filesystem a delete.
    let new_spec = denylist(&["mkdir", "rmdir", "chroot"]);
    assert_ne!(new_spec, old_spec);
    let new_bytes = rendered(&new_spec).bytes.to_vec();
    watch.allow(&updated_file, new_bytes.clone());
    // A delete frees space: on the full filesystem the agent could then write what this test
    // expects it cannot, so the third profile stays there unchanged.
    let delete = match fault {
        Fault::Full => None,
        Fault::ReadOnly => Some(deleted.as_str()),
    };
    let (after, gone) = batch
        .update_create_delete(&client, (&updated, &new_spec), &created, delete)
        .await;

    // node1 has all of it.
    eventually("node1 to have every change", WAIT, || async {
        dir_matches(&node_dir(), &after, &gone)
    })
    .await;

    // Each profile node2 could not write is an Error there, naming the cause, and only there.
    for name in [&updated, &created] {
        let status = wait_status(name, "Error", "1/2", WAIT).await;
        check_error_on_node2_only(&status, fault.cause());
        println!("{}: {name}: {}", fault.name(), status["nodes"]);
    }
    let reported = faulted.elapsed();

    // node2 still holds what it had, whole: the old version of the updated profile, the
    // third profile (deleted on the read-only filesystem, where its file cannot go), nothing
    // for the new one.
    let mut node2_now = held.clone();
    node2_now.insert(updated_file.clone(), wants[&updated_file].clone());
    let node2_gone = BTreeSet::from([created_file.clone()]);
    dir_matches(&node2_dir(), &node2_now, &node2_gone).expect("node2 keeps what it had");

    // The agent stays healthy and ready.
    let pod = agent_pod_on(NODE2).expect("node2's agent pod");
    for probe in ["/healthz", "/readyz"] {
        agent_probe(&pod, probe)
            .unwrap_or_else(|e| panic!("node2's agent {pod} answers {probe}: {e}"));
    }

    // Space or writability returns.
    match fault {
        Fault::Full => small.free(),
        Fault::ReadOnly => small.set_read_only(false),
    }
    let back = Instant::now();
    let fault_lasted = faulted.elapsed();
    eventually("node2 to catch up", RECOVER_WITHIN, || async {
        dir_matches(&node2_dir(), &after, &gone)
    })
    .await;
    let files_ms = back.elapsed().as_millis();
    eventually("every status Installed 2/2", RECOVER_WITHIN, || async {
        all_installed(&client, &batch.selector(), after.len(), 2).await
    })
    .await;
    let converged_ms = back.elapsed().as_millis();
    let leftovers: Vec<String> = std::fs::read_dir(node2_dir())
        .expect("node2's directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".seccompd-tmp-"))
        .collect();
    let (reads, violations) = watch.finish();
    println!(
        "fault {}: filler_bytes={} error_reported_ms={} fault_ms={} files_ms={files_ms} \
         converged_ms={converged_ms} reads={reads} partial_files={}",
        fault.name(),
        filler.unwrap_or(0),
        reported.as_millis(),
        fault_lasted.as_millis(),
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    small.unmount();
    batch.delete_all(&client).await;
    wait_cluster_healthy().await;
}

/// The status lists node2 alone, in state Error, with a reason that names `cause`.
fn check_error_on_node2_only(status: &Value, cause: &str) {
    let nodes = status["nodes"].as_array().expect("the lagging nodes");
    assert_eq!(nodes.len(), 1, "{status}");
    assert_eq!(nodes[0]["nodeName"], NODE2, "{status}");
    assert_eq!(nodes[0]["state"], "Error", "{status}");
    let reason = nodes[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(cause),
        "the reason names {cause:?}: {status}"
    );
}
