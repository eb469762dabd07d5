//! In-use protection on the real node: deleting a SeccompProfile that running pods use keeps
//! its file (repaired if tampered with) until the last of those pods is gone, says so in a
//! Warning Event naming the pods and in the node's report, and never holds up the deletion.

use std::fs;
use std::time::{Duration, Instant};

use kube::Api;
use seccompd_api::{NodeProfileState, SeccompNodeReport, SeccompProfile};
use seccompd_e2e::cluster::{client, eventually, node_profile_path, unique};
use seccompd_e2e::lifecycle::{
    create_pod, create_profile, delete_pod, delete_profile, denylist, events, sleeper,
    time_until_bytes, wait_for_absence, wait_for_agent_passes, wait_for_bytes, wait_running,
};

const WAIT: Duration = Duration::from_secs(60);

async fn report_entry(client: &kube::Client, profile: &str) -> Option<seccompd_api::ProfileReport> {
    let reports: Api<SeccompNodeReport> = Api::all(client.clone());
    let report = reports.get("node1").await.ok()?;
    report
        .spec
        .exceptions
        .into_iter()
        .find(|p| p.name == profile)
}

#[tokio::test]
async fn deleted_profile_stays_while_pods_use_it_and_goes_with_the_last_one() {
    let client = client().await;
    let profile = unique("in-use");
    let path = node_profile_path(&profile);
    let want = create_profile(&client, &profile, &denylist(&["mkdir", "mkdirat"])).await;
    wait_for_bytes(&path, &want.bytes, WAIT).await;

    // One pod uses it at pod level, one in its container.
    let localhost = format!("seccompd/{profile}.json");
    let (pod_a, pod_b) = (unique("user-a"), unique("user-b"));
    create_pod(&client, &sleeper(&pod_a, Some(&localhost), None)).await;
    create_pod(&client, &sleeper(&pod_b, None, Some(&localhost))).await;
    wait_running(&client, &pod_a).await;
    wait_running(&client, &pod_b).await;

    // The deletion completes at once: no finalizer anywhere.
    let profiles: Api<SeccompProfile> = Api::all(client.clone());
    let finalizers = profiles
        .get(&profile)
        .await
        .expect("get")
        .metadata
        .finalizers;
    assert!(finalizers.unwrap_or_default().is_empty(), "no finalizers");
    let deleted_at = Instant::now();
    delete_profile(&client, &profile).await;
    eventually(
        "the SeccompProfile to be gone",
        Duration::from_secs(5),
        || async {
            match profiles.get_opt(&profile).await {
                Ok(None) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    println!("deletion completed in {:?}", deleted_at.elapsed());

    // The node says so: report state Retained naming both pods, and a Warning Event.
    let entry = eventually("the report to show Retained", WAIT, || async {
        match report_entry(&client, &profile).await {
            Some(e) if e.state == NodeProfileState::Retained => Ok(e),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let reason = entry.reason.expect("a reason");
    assert!(reason.contains(&format!("default/{pod_a}")), "{reason}");
    assert!(reason.contains(&format!("default/{pod_b}")), "{reason}");
    assert_eq!(entry.content_hash, Some(want.hash.clone()));
    let warning = eventually("a Warning Event on node1 naming the pods", WAIT, || async {
        let found = events(&client, "default", "node1", "SeccompProfileRetained").await;
        found
            .into_iter()
            .find(|e| {
                e.note
                    .as_deref()
                    .is_some_and(|n| n.contains(&profile) && n.contains(&pod_b))
            })
            .ok_or_else(|| "none yet".to_string())
    })
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(
        warning.regarding.as_ref().and_then(|r| r.kind.as_deref()),
        Some("Node")
    );

    // The file stays, and is repaired like any other.
    wait_for_agent_passes(&client, 2).await;
    assert_eq!(
        fs::read(&path).expect("the file stays"),
        want.bytes.to_vec()
    );
    fs::remove_file(&path).expect("delete the kept file behind the agent's back");
    let took = time_until_bytes(&path, &want.bytes, Duration::from_secs(1));
    println!("kept file restored in {took:?}");

    // One user left: still kept.
    delete_pod(&client, &pod_a).await;
    wait_for_agent_passes(&client, 2).await;
    assert_eq!(
        fs::read(&path).expect("kept for the second pod"),
        want.bytes.to_vec()
    );
    eventually(
        "the report to name only the remaining pod",
        WAIT,
        || async {
            match report_entry(&client, &profile).await.and_then(|e| e.reason) {
                Some(r) if !r.contains(&pod_a) && r.contains(&pod_b) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // The last user goes: so does the file, with a Normal event, and the report entry.
    delete_pod(&client, &pod_b).await;
    wait_for_absence(&path, WAIT).await;
    eventually("the report entry to go", WAIT, || async {
        match report_entry(&client, &profile).await {
            None => Ok(()),
            Some(e) => Err(format!("{e:?}")),
        }
    })
    .await;
    eventually("a Normal SeccompProfileReleased event", WAIT, || async {
        let found = events(&client, "default", "node1", "SeccompProfileReleased").await;
        found
            .iter()
            .any(|e| e.note.as_deref().is_some_and(|n| n.contains(&profile)))
            .then_some(())
            .ok_or_else(|| "none yet".to_string())
    })
    .await;
}

#[tokio::test]
async fn finished_pods_do_not_keep_a_deleted_profile() {
    let client = client().await;
    let profile = unique("done");
    let path = node_profile_path(&profile);
    let want = create_profile(&client, &profile, &denylist(&["mkdir"])).await;
    wait_for_bytes(&path, &want.bytes, WAIT).await;
    let pod = unique("done-pod");
    let mut spec = sleeper(&pod, None, Some(&format!("seccompd/{profile}.json")));
    if let Some(c) = spec.spec.as_mut().and_then(|s| s.containers.first_mut()) {
        c.command = Some(vec!["true".into()]);
    }
    create_pod(&client, &spec).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "default");
    eventually("the pod to succeed", Duration::from_secs(120), || async {
        let p = pods.get(&pod).await.map_err(|e| e.to_string())?;
        match p.status.and_then(|s| s.phase).as_deref() {
            Some("Succeeded") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    delete_profile(&client, &profile).await;
    wait_for_absence(&path, WAIT).await;
    delete_pod(&client, &pod).await;
}
