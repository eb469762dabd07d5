//! A hostile process in the agent's directory: symlinks pointing outside (at files, at
//! directories, at profile names), directories with links inside, fifos, huge sparse files,
//! hard links to outside files, symlink loops, planted over and over while the agent works.
//! Nothing outside the directory is ever written or removed, nothing planted is removed (the
//! agent removes only what it wrote) but each is reported, the profile file swapped for a link
//! is restored, and the agent keeps working.
//!
//! The agent runs as a host process here (its own kubelet root in a temp directory), where a
//! followed symlink could reach any file; inside the DaemonSet's container only its own
//! directory is mounted at all.

use std::fs::{self, File};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use seccompd_e2e::cluster::{client, eventually, kubeconfig_path, unique};
use seccompd_e2e::lifecycle::host_agent::HostRoot;
use seccompd_e2e::lifecycle::{
    create_profile, delete_profile, denylist, expected_dir, snapshot, wait_for_bytes,
};

/// Whether `name` is one [`plant`] uses (other than the profile's own).
fn planted(name: &str) -> bool {
    ["evil-", "dir-link-", "nested-", "fifo-", "huge-", "hard-"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || ["outside-link", "loop.json", "not-a-profile.txt"].contains(&name)
}

/// Plants one round of hostile entries in `dir`, aimed at `outside` and at `profile`'s file.
fn plant(dir: &Path, outside: &Path, profile: &str, round: usize) {
    let at = |name: &str| dir.join(name);
    let _ = symlink(
        outside.join("victim.json"),
        at(&format!("evil-{round}.json")),
    );
    let _ = symlink(
        outside.join("victim-dir"),
        at(&format!("dir-link-{round}.json")),
    );
    let _ = symlink(outside, at("outside-link"));
    let _ = symlink(at("loop.json"), at("loop.json"));
    // The profile's own name swapped for a link to an outside file.
    let _ = fs::remove_file(at(&format!("{profile}.json")));
    let _ = symlink(outside.join("victim.json"), at(&format!("{profile}.json")));
    // A directory at a profile-shaped name, with links to the outside inside.
    let planted_dir = at(&format!("nested-{round}.json"));
    if fs::create_dir(&planted_dir).is_ok() {
        let _ = symlink(outside, planted_dir.join("up"));
        let _ = symlink(outside.join("victim.json"), planted_dir.join("victim.json"));
        let _ = fs::create_dir_all(planted_dir.join("a/b/c"));
    }
    let _ = Command::new("mkfifo")
        .arg(at(&format!("fifo-{round}.json")))
        .status();
    if let Ok(f) = File::create(at(&format!("huge-{round}.json"))) {
        let _ = f.set_len(64 * 1024 * 1024 * 1024);
    }
    let _ = fs::hard_link(
        outside.join("hard-victim.json"),
        at(&format!("hard-{round}.json")),
    );
    let _ = fs::write(at("not-a-profile.txt"), b"junk");
}

#[tokio::test]
async fn hostile_entries_never_reach_outside_and_the_agent_keeps_working() {
    let client = client().await;
    let work = tempfile::tempdir().expect("scratch");
    let outside = work.path().join("outside");
    fs::create_dir_all(outside.join("victim-dir/sub")).expect("outside tree");
    fs::write(outside.join("victim.json"), b"precious").expect("victim");
    fs::write(outside.join("hard-victim.json"), b"hard-linked precious").expect("victim");
    fs::write(outside.join("victim-dir/sub/keep"), b"keep me").expect("victim");
    let before = snapshot(&outside);

    let root = HostRoot::new(work.path());
    let agent = root.spawn(
        Path::new(env!("CARGO_BIN_EXE_seccompd-agent")),
        &kubeconfig_path(),
    );
    let profile = unique("hostile");
    let want = create_profile(&client, &profile, &denylist(&["mkdir"])).await;
    let dir = root.dir();
    wait_for_bytes(
        &dir.join(format!("{profile}.json")),
        &want.bytes,
        Duration::from_secs(60),
    )
    .await;

    // The hostile process: plants everything, again and again, for a few seconds.
    let stop = Arc::new(AtomicBool::new(false));
    let hostile = {
        let (dir, outside, profile, stop) =
            (dir.clone(), outside.clone(), profile.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut round = 0;
            while !stop.load(Ordering::Acquire) {
                plant(&dir, &outside, &profile, round % 5);
                round += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            round
        })
    };
    // Meanwhile the agent still installs what the API asks for.
    let during = unique("hostile-during");
    let during_want = create_profile(&client, &during, &denylist(&["rmdir"])).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Release);
    let rounds = hostile.join().expect("the hostile thread");
    println!("hostile rounds: {rounds}");

    // The agent's own files hold exactly what the API says, whatever is planted beside them.
    let start = Instant::now();
    eventually(
        "the agent's files to match the API",
        Duration::from_secs(30),
        || async { expected_dir(&client).await?.check_except(&dir, planted) },
    )
    .await;
    println!("files right {:?} after the last round", start.elapsed());
    assert_eq!(
        fs::read(dir.join(format!("{during}.json"))).expect("installed meanwhile"),
        during_want.bytes.to_vec()
    );

    // Nothing planted was removed, and the agent reported every kind of hostile entry (a
    // bounded number a pass, so the last may come a few passes after the storm).
    assert_eq!(
        fs::read(dir.join("not-a-profile.txt")).expect("left in place"),
        b"junk"
    );
    assert!(dir.join("nested-0.json/a/b/c").is_dir(), "left in place");
    assert!(
        fs::symlink_metadata(dir.join("evil-0.json")).is_ok_and(|m| m.file_type().is_symlink()),
        "left in place"
    );
    let reports = eventually(
        "every kind of hostile entry to be reported",
        Duration::from_secs(30),
        || async {
            let log = fs::read_to_string(&root.log).map_err(|e| e.to_string())?;
            let reports: Vec<String> = log
                .lines()
                .filter(|l| l.contains("left in place an entry seccompd did not write"))
                .map(str::to_string)
                .collect();
            let kinds = [
                "NotAFile(Symlink)",
                "NotAFile(Directory)",
                "NotAFile(Special)",
                "Oversized",
                "Some(File {",
            ];
            let missing: Vec<&str> = kinds
                .into_iter()
                .filter(|kind| !reports.iter().any(|l| l.contains(kind)))
                .collect();
            if missing.is_empty() {
                Ok(reports)
            } else {
                Err(format!("not reported yet: {missing:?}"))
            }
        },
    )
    .await;
    println!("hostile entries reported: {}", reports.len());
    let log = fs::read_to_string(&root.log).expect("the agent's log");
    assert!(
        log.contains("repaired drift: restored profile file"),
        "the profile's file, swapped for a symlink, was restored"
    );

    // Nothing outside was written, removed or even touched. The hard links the test planted
    // stay (they are not the agent's to remove) and count as links of the outside file: the
    // test removes them first.
    for round in 0..5 {
        let _ = fs::remove_file(dir.join(format!("hard-{round}.json")));
    }
    assert_eq!(snapshot(&outside), before, "the outside tree changed");

    // Still working: a new profile is installed, and the process never died.
    let after = unique("hostile-after");
    let after_want = create_profile(&client, &after, &denylist(&["chmod"])).await;
    wait_for_bytes(
        &dir.join(format!("{after}.json")),
        &after_want.bytes,
        Duration::from_secs(30),
    )
    .await;
    let mut agent = agent;
    assert!(agent.alive(), "the agent survived");
    agent.kill9();
    for name in [&profile, &during, &after] {
        delete_profile(&client, name).await;
    }
}
