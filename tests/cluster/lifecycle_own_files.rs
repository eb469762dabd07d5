//! The agent removes only what it wrote, against the test cluster with the agent binary run as
//! a host process (its own kubelet root in a temp directory): a directory that already holds
//! another tool's files and a sub-directory is refused and left exactly as it was, and so is
//! one that is a symlink; a profile file of its own whose profile was deleted while no agent
//! ran is still removed by the next agent, which leaves a file it did not write beside it.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, SystemTime};

use seccompd_agent::node::manifest::MANIFEST_NAME;
use seccompd_e2e::cluster::{client, eventually, kubeconfig_path, unique};
use seccompd_e2e::lifecycle::host_agent::HostRoot;
use seccompd_e2e::lifecycle::{
    create_profile, delete_profile, denylist, snapshot, wait_for_absence, wait_for_bytes,
};

/// How long an agent may take to list the cluster's profiles and refuse (or finish) its pass.
const AGENT_WITHIN: Duration = Duration::from_secs(60);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_seccompd-agent"))
}

/// The directory's own modification time: it changes when any entry is created, renamed or
/// removed in it, even one removed again at once.
fn mtime(dir: &Path) -> SystemTime {
    fs::symlink_metadata(dir)
        .and_then(|m| m.modified())
        .expect("the directory's mtime")
}

/// Another tool's profiles, notes and a sub-directory in `dir`.
fn fill_with_another_tools_files(dir: &Path) {
    fs::create_dir_all(dir.join("other-tool/profiles")).expect("a sub-directory");
    fs::write(
        dir.join("other-tool/profiles/web.json"),
        br#"{"defaultAction":"SCMP_ACT_ERRNO"}"#,
    )
    .expect("a nested file");
    fs::write(
        dir.join("audit.json"),
        br#"{"defaultAction":"SCMP_ACT_LOG"}"#,
    )
    .expect("a file");
    fs::write(dir.join("README"), b"profiles of another tool\n").expect("a file");
}

#[tokio::test]
async fn a_directory_holding_another_tools_files_is_refused_and_left_exactly_as_it_was() {
    let client = client().await;
    let work = tempfile::tempdir().expect("scratch");
    let root = HostRoot::new(work.path());
    let dir = root.dir();
    fill_with_another_tools_files(&dir);
    // The other tool's file at the name of one of the cluster's profiles, with its own content.
    let profile = unique("other-tools");
    create_profile(&client, &profile, &denylist(&["mkdir"])).await;
    let clash = format!("{profile}.json");
    fs::write(dir.join(&clash), b"another tool's version").expect("a clashing file");
    let before = snapshot(&dir);
    let dir_mtime = mtime(&dir);

    let mut agent = root.spawn(binary(), &kubeconfig_path());
    let status = agent.wait_exit(AGENT_WITHIN).await;
    assert!(!status.success(), "the agent must refuse: {status}");

    let log = fs::read_to_string(&root.log).expect("the agent's log");
    let said = format!("{} holds entries seccompd did not write", dir.display());
    assert!(log.contains(&said), "no refusal saying {said:?}:\n{log}");
    for name in ["README", "audit.json", "other-tool", clash.as_str()] {
        assert!(
            log.contains(&format!("\"{name}\"")),
            "{name} not named:\n{log}"
        );
    }
    assert!(log.contains("empty this directory"), "no fix given:\n{log}");
    assert_eq!(snapshot(&dir), before, "the directory's content changed");
    assert_eq!(mtime(&dir), dir_mtime, "an entry was created or removed");
    delete_profile(&client, &profile).await;
}

#[tokio::test]
async fn a_directory_that_is_a_symlink_is_refused_and_its_target_left_as_it_was() {
    let work = tempfile::tempdir().expect("scratch");
    let root = HostRoot::new(work.path());
    let target = work.path().join("other-tool");
    fs::create_dir(&target).expect("the link's target");
    fill_with_another_tools_files(&target);
    symlink(&target, root.dir()).expect("the agent's directory as a link");
    let before = snapshot(&target);
    let target_mtime = mtime(&target);

    let mut agent = root.spawn(binary(), &kubeconfig_path());
    let status = agent.wait_exit(AGENT_WITHIN).await;
    assert!(!status.success(), "the agent must refuse: {status}");

    let log = fs::read_to_string(&root.log).expect("the agent's log");
    let said = format!("{} is a symlink", root.dir().display());
    assert!(log.contains(&said), "no refusal saying {said:?}:\n{log}");
    assert!(log.contains("hostPath"), "no fix given:\n{log}");
    assert_eq!(snapshot(&target), before, "the link's target changed");
    assert_eq!(
        mtime(&target),
        target_mtime,
        "an entry was created or removed"
    );
}

#[tokio::test]
async fn a_stale_profile_file_of_its_own_from_before_a_restart_is_removed() {
    let client = client().await;
    let work = tempfile::tempdir().expect("scratch");
    let root = HostRoot::new(work.path());
    let dir = root.dir();
    let file = |name: &str| dir.join(format!("{name}.json"));

    let agent = root.spawn(binary(), &kubeconfig_path());
    let stale = unique("stale");
    let kept = unique("kept");
    let stale_want = create_profile(&client, &stale, &denylist(&["mkdir"])).await;
    let kept_want = create_profile(&client, &kept, &denylist(&["rmdir"])).await;
    wait_for_bytes(&file(&stale), &stale_want.bytes, AGENT_WITHIN).await;
    wait_for_bytes(&file(&kept), &kept_want.bytes, AGENT_WITHIN).await;
    let theirs = dir.join("theirs.json");
    fs::write(&theirs, br#"{"defaultAction":"SCMP_ACT_LOG"}"#).expect("someone else's file");

    // Stopped; its profile deleted while no agent runs; started again.
    agent.kill9();
    delete_profile(&client, &stale).await;
    let mut agent = root.spawn(binary(), &kubeconfig_path());
    wait_for_absence(&file(&stale), AGENT_WITHIN).await;

    let manifest = dir.join(MANIFEST_NAME);
    let stale_file = format!("{stale}.json");
    eventually(
        "the removed file to be dropped from the manifest",
        Duration::from_secs(10),
        || async {
            let listed = fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
            if listed.lines().any(|l| l == stale_file) {
                Err(listed)
            } else {
                Ok(())
            }
        },
    )
    .await;
    assert_eq!(
        fs::read(file(&kept)).expect("its profile still exists"),
        kept_want.bytes.to_vec()
    );
    assert_eq!(
        fs::read(&theirs).expect("not the agent's to remove"),
        br#"{"defaultAction":"SCMP_ACT_LOG"}"#
    );
    let log = fs::read_to_string(&root.log).expect("the agent's log");
    assert!(
        log.lines()
            .any(|l| l.contains("removed the file of a deleted profile") && l.contains(&stale)),
        "the removal is logged:\n{log}"
    );
    assert!(agent.alive(), "the agent keeps running");
    agent.kill9();
    delete_profile(&client, &kept).await;
}
