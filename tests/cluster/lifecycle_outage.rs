//! An API server outage on the real node: with kube-apiserver stopped for 30 s the files stay
//! and tampering is still repaired from the last known state; once it is back, the directory
//! converges to the API without ever losing a file whose profile still exists (nor one the
//! agent did not write).

use std::fs::{self, OpenOptions};
use std::time::{Duration, Instant};

use kube::Api;
use seccompd_api::{Phase, SeccompProfile};
use seccompd_e2e::cluster::{
    self, client, eventually, kubectl, kubernetes_service_ip, node_profile_path, unique,
    wait_for_readyz,
};
use seccompd_e2e::lifecycle::component::StoppedComponent;
use seccompd_e2e::lifecycle::{
    create_profile, delete_profile, denylist, expected_dir, node_dir, time_until_bytes,
    wait_for_absence, wait_for_bytes,
};

const OUTAGE: Duration = Duration::from_secs(30);
/// Drift repair during the outage: as fast as with the API up.
const REPAIR_WITHIN: Duration = Duration::from_secs(1);
/// From the moment the agent can reach the API again: its watches retry at least every 8 s,
/// relist at once on `410 Expired`, and the pass that follows takes milliseconds.
const CONVERGE_WITHIN: Duration = Duration::from_secs(30);
/// Names of the files the test plants during the outage start with this.
const PLANTED_PREFIX: &str = "planted-during-outage-";

/// The name of the file planted in `round`.
fn planted(round: usize) -> String {
    format!("{PLANTED_PREFIX}{round}.json")
}

#[tokio::test]
async fn files_stay_and_are_repaired_while_the_api_server_is_down_then_converge() {
    let client = client().await;
    let names: Vec<String> = (0..3).map(|i| unique(&format!("outage{i}"))).collect();
    let mut wants = Vec::new();
    for name in &names {
        let want = create_profile(&client, name, &denylist(&["mkdir"])).await;
        wait_for_bytes(
            &node_profile_path(name),
            &want.bytes,
            Duration::from_secs(60),
        )
        .await;
        wants.push(want);
    }

    let service_ip = kubernetes_service_ip();
    let server = StoppedComponent::stop("kube-apiserver");
    let down_since = Instant::now();
    let probe = kubectl(&["get", "--raw", "/readyz", "--request-timeout=2s"]);
    assert!(!probe.status.success(), "the API server must be down");

    let mut round = 0;
    let mut slowest = Duration::ZERO;
    while down_since.elapsed() < OUTAGE {
        let path = node_profile_path(&names[round % names.len()]);
        let want = &wants[round % names.len()].bytes;
        match round % 3 {
            0 => fs::remove_file(&path).expect("delete"),
            1 => drop(
                OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .expect("truncate"),
            ),
            _ => fs::write(&path, b"{\"defaultAction\":\"SCMP_ACT_ALLOW\"}").expect("edit"),
        }
        slowest = slowest.max(time_until_bytes(&path, want, REPAIR_WITHIN));
        // Someone else's file: left alone, outage or not (checked once the agent converged).
        fs::write(node_dir().join(planted(round)), b"{}").expect("plant");
        for (name, want) in names.iter().zip(&wants) {
            assert_eq!(
                fs::read(node_profile_path(name)).ok().as_deref(),
                Some(&want.bytes[..]),
                "{name} must stay during the outage"
            );
        }
        round += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "API server down {:?}: {round} tamperings, each repaired, slowest in {slowest:?}",
        down_since.elapsed()
    );
    server.restart();
    let back = Instant::now();
    wait_for_readyz("the API server to serve again", &[]).await;
    println!("API server serving again after {:?}", back.elapsed());
    // The agent reaches the API through the `kubernetes` Service, as every in-cluster client
    // does, so it can only catch up once kube-proxy routes the Service to the restarted server
    // again (the server took its endpoint out when it shut down, and kube-proxy's own watches
    // back off for up to a minute). That wait is the cluster's; the agent's starts after it.
    let via_service = format!("--server=https://{service_ip}:443");
    wait_for_readyz(
        "the API server to serve through the kubernetes Service",
        &[&via_service],
    )
    .await;
    println!(
        "API server reachable through the kubernetes Service after {:?}",
        back.elapsed()
    );

    // After the outage: one profile deleted, one created. The others never disappear while
    // the agent catches up, and the directory comes to match the API exactly.
    let client = cluster::client().await;
    delete_profile(&client, &names[2]).await;
    let late = unique("after-outage");
    let late_want = create_profile(&client, &late, &denylist(&["rmdir"])).await;
    let converge = Instant::now();
    loop {
        for (name, want) in names.iter().zip(&wants).take(2) {
            assert_eq!(
                fs::read(node_profile_path(name)).ok().as_deref(),
                Some(&want.bytes[..]),
                "{name} still exists in the API and must never be removed"
            );
        }
        let matches = match expected_dir(&client).await {
            Ok(expected) => expected.check_except(&node_dir(), |n| n.starts_with(PLANTED_PREFIX)),
            Err(e) => Err(e),
        };
        match matches {
            Ok(()) => break,
            Err(e) => assert!(
                converge.elapsed() < CONVERGE_WITHIN,
                "no convergence after the outage: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "converged to the API {:?} after the changes",
        converge.elapsed()
    );
    assert_eq!(
        fs::read(node_profile_path(&late)).expect("created after"),
        late_want.bytes.to_vec()
    );
    wait_for_absence(&node_profile_path(&names[2]), Duration::from_secs(5)).await;
    for r in 0..round {
        let path = node_dir().join(planted(r));
        assert_eq!(
            fs::read(&path).ok().as_deref(),
            Some(&b"{}"[..]),
            "{} was not seccompd's to remove",
            path.display()
        );
        fs::remove_file(&path).expect("the test removes what it planted");
    }

    // The status pipeline (node report, the controller's elected status writer) has caught up: the
    // profile created after the outage is reported Installed. Later tests start from a
    // cluster that has fully recovered.
    let profiles: Api<SeccompProfile> = Api::all(client.clone());
    eventually(
        "the status of the profile created after the outage",
        Duration::from_secs(180),
        || async {
            let p = profiles.get(&late).await.map_err(|e| e.to_string())?;
            match p.status.and_then(|s| s.phase) {
                Some(Phase::Installed) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    println!(
        "status Installed {:?} after the changes",
        converge.elapsed()
    );

    for name in names.iter().take(2).chain([&late]) {
        delete_profile(&client, name).await;
    }
}
