//! Drift repair on the real node: a profile file deleted, truncated or edited behind the
//! agent's back is restored within a second, and each repair is logged and counted in the
//! agent's metrics. A foreign file is left in place (the agent removes only what it wrote) and
//! reported in its log.

use std::fs::{self, OpenOptions};
use std::time::Duration;

use seccompd_e2e::cluster::{client, eventually, node_profile_path, unique};
use seccompd_e2e::lifecycle::{
    agent_logs, agent_metrics, create_profile, delete_profile, denylist, node_dir,
    time_until_bytes, wait_for_bytes,
};

const REPAIR_WITHIN: Duration = Duration::from_secs(1);
const RESTORED: &str = "seccompd_drift_repairs_total{kind=\"restored\"}";

#[tokio::test]
async fn deleted_truncated_and_edited_files_are_restored_within_a_second_and_foreign_files_left() {
    let client = client().await;
    let profile = unique("drift");
    let path = node_profile_path(&profile);
    let want = create_profile(&client, &profile, &denylist(&["mkdir"])).await;
    wait_for_bytes(&path, &want.bytes, Duration::from_secs(60)).await;
    let before = agent_metrics();

    fs::remove_file(&path).expect("delete");
    let deleted = time_until_bytes(&path, &want.bytes, REPAIR_WITHIN);

    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .expect("truncate");
    let truncated = time_until_bytes(&path, &want.bytes, REPAIR_WITHIN);

    let mut edited = want.bytes.to_vec();
    edited.truncate(edited.len() / 2);
    edited.extend_from_slice(b"\"SCMP_ACT_ALLOW\"}\n");
    fs::write(&path, &edited).expect("edit in place");
    let edit = time_until_bytes(&path, &want.bytes, REPAIR_WITHIN);

    println!("repaired: deleted in {deleted:?}, truncated in {truncated:?}, edited in {edit:?}");

    // Counted: three restores.
    let after = agent_metrics();
    let delta = |series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };
    assert!(
        delta(RESTORED) >= 3.0,
        "restores counted: {}",
        delta(RESTORED)
    );

    // Foreign files, one named like a profile: reported, and still there once reported.
    let foreign = node_dir().join(format!("{}.json", unique("foreign")));
    let note = node_dir().join(format!("{}.txt", unique("notes")));
    fs::write(&foreign, br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).expect("plant a foreign file");
    fs::write(&note, b"not a profile").expect("plant a foreign non-profile file");
    for planted in [&foreign, &note] {
        let name = planted
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        eventually(
            &format!("{name} to be reported"),
            Duration::from_secs(30),
            || async {
                agent_logs("2m")
                    .lines()
                    .any(|l| {
                        l.contains("left in place an entry seccompd did not write")
                            && l.contains(&name)
                    })
                    .then_some(())
                    .ok_or_else(|| "not in the log yet".to_string())
            },
        )
        .await;
    }
    assert_eq!(
        fs::read(&foreign).expect("left in place"),
        br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#
    );
    assert_eq!(fs::read(&note).expect("left in place"), b"not a profile");
    for planted in [&foreign, &note] {
        fs::remove_file(planted).expect("the test removes what it planted");
    }

    // Logged, naming the profile.
    let logs = agent_logs("2m");
    let repairs = logs
        .lines()
        .filter(|l| l.contains("repaired drift: restored profile file") && l.contains(&profile))
        .count();
    assert!(repairs >= 3, "three restores logged:\n{logs}");

    delete_profile(&client, &profile).await;
}
