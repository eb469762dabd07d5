//! A hostile process in the agent's directory: symlinks pointing outside (at files, at
//! directories, at profile names), directories with links inside, fifos, huge sparse files,
//! hard links to outside files, symlink loops, planted over and over while the agent works.
//! Nothing outside the directory is ever written or removed, and the agent keeps working.
//!
//! The agent runs as a host process here (its own kubelet root in a temp directory), where a
//! followed symlink could reach any file; inside the DaemonSet's container only its own
//! directory is mounted at all.

mod common;
mod lifecycle_support;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{client, eventually, kubeconfig_path, unique};
use lifecycle_support::host_agent::HostRoot;
use lifecycle_support::{create_profile, delete_profile, denylist, expected_dir, wait_for_bytes};

/// Path, kind, size, mtime and content of everything below `root` (symlinks not followed).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = fs::symlink_metadata(&path).expect("stat");
        let what = if meta.file_type().is_symlink() {
            format!("link -> {:?}", fs::read_link(&path).expect("readlink"))
        } else if meta.is_dir() {
            for e in fs::read_dir(&path).expect("list") {
                todo.push(e.expect("entry").path());
            }
            "dir".to_string()
        } else {
            let content = fs::read(&path).expect("read");
            format!(
                "file {} bytes mtime {} ino {} nlink {} {:?}",
                meta.len(),
                meta.mtime_nsec(),
                meta.ino(),
                meta.nlink(),
                content
            )
        };
        out.insert(path, what);
    }
    out
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
        Path::new(env!("CARGO_BIN_EXE_seccompd")),
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

    // Every planted thing goes; the directory holds exactly what the API says.
    let start = Instant::now();
    eventually(
        "the directory to match the API",
        Duration::from_secs(30),
        || async { expected_dir(&client).await?.check(&dir) },
    )
    .await;
    println!("directory clean {:?} after the last round", start.elapsed());
    assert_eq!(
        fs::read(dir.join(format!("{during}.json"))).expect("installed meanwhile"),
        during_want.bytes
    );

    // The agent did see and remove every kind of hostile entry, and restored its file.
    let log = fs::read_to_string(&root.log).expect("the agent's log");
    let removals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("repaired drift: removed an entry"))
        .collect();
    for kind in ["Symlink", "Directory", "Special", "Oversized", "File"] {
        assert!(
            removals.iter().any(|l| l.contains(kind)),
            "no removal of a {kind} logged"
        );
    }
    assert!(
        log.contains("repaired drift: restored profile file"),
        "the profile's file, swapped for a symlink, was restored"
    );
    println!("hostile entries removed: {}", removals.len());

    // Nothing outside was written, removed or even touched.
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
