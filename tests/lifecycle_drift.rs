//! Drift repair on the real node: a profile file deleted, truncated or edited behind the
//! agent's back is restored within a second, a foreign file is removed within a second, and
//! each repair is logged and counted in the agent's metrics.

mod common;
mod lifecycle_support;

use std::fs::{self, OpenOptions};
use std::time::Duration;

use common::{client, node_profile_path, unique};
use lifecycle_support::{
    agent_logs, agent_metrics, create_profile, delete_profile, denylist, node_dir,
    time_until_absent, time_until_bytes, wait_for_bytes,
};

const REPAIR_WITHIN: Duration = Duration::from_secs(1);
const RESTORED: &str = "seccompd_drift_repairs_total{kind=\"restored\"}";
const FOREIGN: &str = "seccompd_drift_repairs_total{kind=\"foreign_removed\"}";

#[tokio::test]
async fn deleted_truncated_and_edited_files_are_restored_and_foreign_files_removed_within_a_second()
{
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

    let mut edited = want.bytes.clone();
    edited.truncate(edited.len() / 2);
    edited.extend_from_slice(b"\"SCMP_ACT_ALLOW\"}\n");
    fs::write(&path, &edited).expect("edit in place");
    let edit = time_until_bytes(&path, &want.bytes, REPAIR_WITHIN);

    let foreign = node_dir().join(format!("{}.json", unique("foreign")));
    fs::write(&foreign, br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).expect("plant a foreign file");
    let removed = time_until_absent(&foreign, REPAIR_WITHIN);
    let note = node_dir().join("notes.txt");
    fs::write(&note, b"not a profile").expect("plant a foreign non-profile file");
    let removed_note = time_until_absent(&note, REPAIR_WITHIN);

    println!(
        "repaired: deleted in {deleted:?}, truncated in {truncated:?}, edited in {edit:?}; \
         foreign profile-named file removed in {removed:?}, foreign other file in {removed_note:?}"
    );

    // Counted: three restores; the foreign non-profile file is drift too. (A file named like a
    // profile that does not exist counts as the removal of a deleted profile's file.)
    let after = agent_metrics();
    let delta = |series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };
    assert!(
        delta(RESTORED) >= 3.0,
        "restores counted: {}",
        delta(RESTORED)
    );
    assert!(
        delta(FOREIGN) >= 1.0,
        "foreign removals counted: {}",
        delta(FOREIGN)
    );

    // Logged, naming the profile.
    let logs = agent_logs("2m");
    let repairs = logs
        .lines()
        .filter(|l| l.contains("repaired drift: restored profile file") && l.contains(&profile))
        .count();
    assert!(repairs >= 3, "three restores logged:\n{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("repaired drift: removed an entry") && l.contains("notes.txt")),
        "the foreign removal is logged:\n{logs}"
    );

    delete_profile(&client, &profile).await;
}
