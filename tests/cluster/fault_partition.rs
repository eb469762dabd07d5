//! node2 cut off from the API server for 120 s (rules in its network namespace drop every
//! packet to and from the server, as a dead link does; its processes keep running) while
//! profiles are created, updated and deleted. node2 keeps every file it had, whole, and its
//! kubelet keeps starting a pod's container from one of them; the statuses say `Partial 1/2` naming node2 and why; and once the link is back node2 converges
//! within seconds (the time is printed).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use seccompd_e2e::cluster::{client, eventually};
use seccompd_e2e::faults::{
    Batch, FileWatch, NODE2, Node2Partition, PodOnDrop, all_installed, both_dirs, create_all,
    dir_matches, file_name, node2_container_starts, node2_dir, require_two_nodes,
    restarting_pod_on_node2, unix_now, wait_cluster_healthy,
};
use seccompd_e2e::lifecycle::{create_pod, delete_pod, denylist, node_dir, rendered, wait_status};
use serde_json::Value;

const CUT_FOR: Duration = Duration::from_secs(120);
/// From the link's return to node2's files, and every status, matching the API.
const CONVERGE_WITHIN: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn node2_cut_off_for_120_s_keeps_its_files_is_partial_and_converges_when_back() {
    require_two_nodes();
    let client = client().await;
    // kept: unchanged; updated, deleted: changed during the cut; created: during the cut.
    let batch = Batch::new("fault-partition", 4);
    let _cleanup = batch.cleanup();
    let [kept, updated, deleted, created] = <[(String, _); 4]>::try_from(batch.specs.clone())
        .expect("four profiles")
        .map(|(name, _)| name);
    let before = batch.specs[..3]
        .iter()
        .map(|(n, s)| batch.object(n, s))
        .collect();
    create_all(&client, before, 3, Default::default()).await;
    for name in [&kept, &updated, &deleted] {
        wait_status(name, "Installed", "2/2", WAIT).await;
    }
    // A container on node2 that exits at once and is started again from `kept`'s file.
    let pod = format!("{kept}-restarts");
    create_pod(&client, &restarting_pod_on_node2(&pod, &kept)).await;
    let _pod_cleanup = PodOnDrop(pod.clone());
    eventually("node2 to start the pod's container", WAIT, || async {
        if node2_container_starts(&pod).is_empty() {
            Err("no start logged yet".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    let wants = batch.wants();
    let watch = FileWatch::start(both_dirs(), wants.clone());
    let new_spec = denylist(&["mkdir", "rmdir", "chroot"]);
    let new_bytes = rendered(&new_spec).bytes.to_vec();
    watch.allow(&file_name(&updated), new_bytes.clone());

    let partition = Node2Partition::cut();
    let cut = Instant::now();
    let cut_at = unix_now();
    // What the API says now, which node1 has, and node2 must come to.
    let (after, gone) = batch
        .update_create_delete(&client, (&updated, &new_spec), &created, Some(&deleted))
        .await;
    eventually("node1 to have every change", WAIT, || async {
        dir_matches(&node_dir(), &after, &gone)
    })
    .await;
    // What node2 had.
    let mut had = wants.clone();
    had.remove(&file_name(&created));
    let not_there = BTreeSet::from([file_name(&created)]);

    for name in [&updated, &created] {
        let status = wait_status(name, "Partial", "1/2", WAIT).await;
        check_lagging_node2(&status);
        println!("cut off: {name}: {}", status["nodes"]);
    }
    let mut checks = 0;
    while cut.elapsed() < CUT_FOR {
        dir_matches(&node2_dir(), &had, &not_there).expect("node2 keeps what it had");
        for name in [&updated, &created] {
            let status = wait_status(name, "Partial", "1/2", Duration::from_secs(10)).await;
            check_lagging_node2(&status);
        }
        checks += 1;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // The kubelet restarted the container while the API server was out of its reach: the
    // profile's file was there each time (without it the container is never created).
    let starts_while_cut = node2_container_starts(&pod)
        .into_iter()
        .filter(|&t| t > cut_at)
        .count();
    partition.heal();
    let back = Instant::now();
    let cut_ms = cut.elapsed().as_millis();
    assert!(
        starts_while_cut > 0,
        "node2 started no container of {pod} while cut off"
    );

    let mut files_at = None;
    let mut last = String::new();
    let converged = loop {
        if files_at.is_none() {
            match dir_matches(&node2_dir(), &after, &gone) {
                Ok(()) => files_at = Some(back.elapsed()),
                Err(e) => last = e,
            }
        }
        if files_at.is_some() {
            match all_installed(&client, &batch.selector(), 3, 2).await {
                Ok(()) => break back.elapsed(),
                Err(e) => last = e,
            }
        }
        assert!(
            back.elapsed() < CONVERGE_WITHIN,
            "node2 reconnected {CONVERGE_WITHIN:?} ago and still: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (reads, violations) = watch.finish();
    println!(
        "fault partition: cut_ms={cut_ms} checks_while_cut={checks} \
         pod_starts_while_cut={starts_while_cut} files_ms={} converged_ms={} reads={reads} \
         partial_files={}",
        files_at.unwrap_or_default().as_millis(),
        converged.as_millis(),
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    delete_pod(&client, &pod).await;
    batch.delete_all(&client).await;
    wait_cluster_healthy().await;
}

/// The status names node2 alone as lagging, with a reason.
fn check_lagging_node2(status: &Value) {
    let nodes = status["nodes"].as_array().expect("the lagging nodes");
    assert_eq!(nodes.len(), 1, "{status}");
    assert_eq!(nodes[0]["nodeName"], NODE2, "{status}");
    assert!(
        !nodes[0]["reason"].as_str().unwrap_or_default().is_empty(),
        "a reason: {status}"
    );
}
