//! An entry the agent cannot read, on a real cluster (issue 8, item 2): a file with mode 000
//! owned by another user at a profile's name (the agent runs as root with every capability
//! dropped, as in the DaemonSet, so it cannot read it) is replaced by the profile's file, other
//! profiles keep installing meanwhile, and an agent started with such a file in place completes
//! its first sync and repairs it. The agent is a host process with its own directory.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::time::Duration;

use seccompd_e2e::cluster::{client, kubeconfig_path, unique};
use seccompd_e2e::lifecycle::host_agent::HostRoot;
use seccompd_e2e::lifecycle::{
    create_profile, delete_profile, denylist, wait_for_bytes, wait_host_synced,
};

/// The uid of `nobody`: another user than the agent's.
const OTHER_UID: u32 = 65534;

/// Puts a mode-000 file of another user holding `{}` at `target`, in one step (a rename), so
/// that the agent never sees it half made.
fn plant_unreadable(scratch: &Path, target: &Path) {
    let staged = scratch.join("unreadable.json");
    fs::write(&staged, b"{}").expect("write the planted file");
    chown(&staged, Some(OTHER_UID), Some(OTHER_UID)).expect("chown to nobody");
    fs::set_permissions(&staged, fs::Permissions::from_mode(0o000)).expect("chmod 000");
    fs::rename(&staged, target).expect("move it into the agent's directory");
}

/// Waits until `path` holds `want` as the agent writes it: root's, mode 0644.
async fn wait_for_repair(path: &Path, want: &[u8]) {
    wait_for_bytes(path, want, Duration::from_secs(30)).await;
    let meta = fs::metadata(path).expect("the repaired file");
    assert_eq!(meta.uid(), 0, "the agent's file, not the planted one");
    assert_eq!(meta.mode() & 0o777, 0o644);
}

#[tokio::test]
async fn an_unreadable_file_of_another_user_is_repaired_and_other_profiles_keep_installing() {
    let client = client().await;
    let work = tempfile::tempdir().expect("a scratch directory");
    let root = HostRoot::new(work.path());
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_seccompd-agent"));
    let (agent, _) = root.spawn_as_in_the_daemonset(&binary, &kubeconfig_path());
    let file = |name: &str| root.dir().join(format!("{name}.json"));

    let first = unique("unreadable");
    let want = create_profile(&client, &first, &denylist(&["mkdir"])).await;
    wait_for_bytes(&file(&first), &want.bytes, Duration::from_secs(60)).await;

    // Planted while the agent runs: replaced, and a new profile still installs.
    plant_unreadable(work.path(), &file(&first));
    wait_for_repair(&file(&first), &want.bytes).await;
    let second = unique("after");
    let want_second = create_profile(&client, &second, &denylist(&["rmdir"])).await;
    wait_for_bytes(&file(&second), &want_second.bytes, Duration::from_secs(30)).await;

    // Planted while the agent is down: the next agent completes its first sync, repairs the
    // file and installs profiles created meanwhile.
    agent.kill9();
    plant_unreadable(work.path(), &file(&first));
    let third = unique("meanwhile");
    let want_third = create_profile(&client, &third, &denylist(&["chroot"])).await;
    let (_agent, port) = root.spawn_as_in_the_daemonset(&binary, &kubeconfig_path());
    wait_host_synced(port).await;
    wait_for_repair(&file(&first), &want.bytes).await;
    wait_for_bytes(&file(&third), &want_third.bytes, Duration::from_secs(30)).await;

    for name in [&first, &second, &third] {
        delete_profile(&client, name).await;
    }
}
