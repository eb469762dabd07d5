//! The recorder's audit source on this host (needs root: `CAP_AUDIT_READ` and
//! `CAP_AUDIT_CONTROL` in the host's namespaces): `ls /` run by `seccompd run` under the
//! built-in recording profile (SCMP_ACT_LOG) sends one record per call to the audit
//! multicast group, and the calls they name are exactly those `seccompd record` (seccomp user
//! notification) records for the same command. The recorder's reading thread attributes the
//! records of a process in a pod-shaped cgroup to that pod and container, with the action each
//! record's code names, and counts a record whose process is gone as lost. The kernel's audit
//! status (`audit_lost`) is readable.

mod cli_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cli_support::seccompd;
use prometheus_client::metrics::counter::Counter;
use seccompd_agent::decide::builtin::record_spec;
use seccompd_profile::compile::native_arch;
use seccompd_profile::decode::{Document, decode};
use seccompd_profile::model::Action;
use seccompd_profile::render::render;
use seccompd_profile::resolve::resolve;
use seccompd_recorder::audit_socket::{AuditReader, Received, audit_status};
use seccompd_recorder::probe::{self, PROBE_WAIT};
use seccompd_recorder::reader::{self, Seen};
use seccompd_recording::audit::{HostPid, SeccompRecord};
use seccompd_recording::cgroup::{ContainerId, PodUid};

/// How long the records of a finished command may take to arrive.
const ARRIVAL: Duration = Duration::from_secs(5);

/// Starts a thread that forwards every seccomp record of the multicast group.
fn listen() -> mpsc::Receiver<SeccompRecord> {
    let mut reader = AuditReader::subscribe().expect("joining the audit multicast group");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        loop {
            match reader.receive().expect("receiving audit records") {
                Received::Seccomp(text) => {
                    let record = SeccompRecord::parse(&text).expect("a seccomp record");
                    if tx.send(record).is_err() {
                        return;
                    }
                }
                Received::Overflow => panic!("the audit socket overflowed"),
                Received::Other => {}
            }
        }
    });
    rx
}

/// The built-in recording profile for `arch`, written as `record.json` in `dir`.
fn record_profile_in(dir: &Path, arch: seccompd_profile::model::Arch) -> std::path::PathBuf {
    let profile = dir.join("record.json");
    let oci = resolve("record", &record_spec(arch), |_| None).unwrap();
    std::fs::write(&profile, render(&oci).bytes).unwrap();
    profile
}

/// The names `seccompd record` records for `ls /`.
fn recorded_by_notification(dir: &Path) -> BTreeSet<String> {
    let out = dir.join("ls.yaml");
    let rec = seccompd(&["record", "-o", out.to_str().unwrap(), "--", "ls", "/"]);
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    rec.assert_stdout_has("usr");
    let bytes = std::fs::read(&out).unwrap();
    let Some(Document::Resource(res)) = decode(&bytes).unwrap().pop() else {
        panic!("a SeccompProfile expected")
    };
    res.spec.syscalls[0]
        .names
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_command_under_the_recording_profile_sends_every_call_to_the_multicast_group() {
    let arch = native_arch().expect("a known architecture");
    let dir = tempfile::tempdir().unwrap();
    let profile = record_profile_in(dir.path(), arch);
    let before = audit_status().expect("AUDIT_GET (run as root)");
    eprintln!("kernel audit status: {before:?}");

    let records = listen();
    let child = Command::new(env!("CARGO_BIN_EXE_seccompd"))
        .args([
            "run",
            "--profile",
            profile.to_str().unwrap(),
            "--",
            "ls",
            "/",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting seccompd run");
    let pid = HostPid(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "usr")
    );

    // `seccompd run` execs `ls` in its own process, so every record of the command has its
    // PID; the last call is exit_group.
    let mut audited = BTreeSet::new();
    let deadline = Instant::now() + ARRIVAL;
    while !audited.contains("exit_group") {
        let left = deadline.saturating_duration_since(Instant::now());
        let record = records
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no exit_group within {ARRIVAL:?}; got {audited:?}"));
        if record.pid == pid {
            let call = record.call().expect("a call libseccomp names");
            assert_eq!(call.arch, arch);
            assert!(
                record.comm == "ls" || record.comm == "seccompd",
                "{record:?}"
            );
            audited.insert(call.name);
        }
    }
    assert_eq!(
        audited,
        recorded_by_notification(dir.path()),
        "the audit records name exactly the calls seccompd record sees"
    );
    let after = audit_status().expect("AUDIT_GET");
    assert!(after.lost >= before.lost);
}

/// A cgroup shaped as the kubelet's cgroupfs driver shapes a container's
/// (`.../pod<uid>/<container id>`), below a root of its own (not `kubepods`, which the
/// kubelet manages); removed when dropped.
struct PodCgroup {
    dirs: Vec<std::path::PathBuf>,
}

const UID: &str = "0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9";
const CONTAINER: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

impl PodCgroup {
    fn create() -> Self {
        // cgroup v2 alone, or v1's pids hierarchy (this machine's hybrid layout).
        let base = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            Path::new("/sys/fs/cgroup").to_path_buf()
        } else {
            Path::new("/sys/fs/cgroup/pids").to_path_buf()
        };
        let root = base.join(format!("seccompd-test-{}", std::process::id()));
        let pod = root.join(format!("pod{UID}"));
        let container = pod.join(CONTAINER);
        std::fs::create_dir_all(&container).expect("creating a test cgroup (run as root)");
        PodCgroup {
            dirs: vec![container, pod, root],
        }
    }

    fn procs(&self) -> std::path::PathBuf {
        self.dirs[0].join("cgroup.procs")
    }
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn the_reader_attributes_records_to_the_pod_and_container_of_the_cgroup() {
    let arch = native_arch().expect("a known architecture");
    let dir = tempfile::tempdir().unwrap();
    let profile = record_profile_in(dir.path(), arch);
    let cgroup = PodCgroup::create();

    let (tx, mut seen) = tokio::sync::mpsc::channel(1 << 16);
    reader::spawn("/proc".into(), own_pid(), Counter::default(), tx)
        .expect("joining the audit multicast group");
    // The shell moves itself into the container's cgroup, then becomes `seccompd run`.
    let script = format!(
        "echo $$ > {} && exec {} run --profile {} -- ls /",
        cgroup.procs().display(),
        env!("CARGO_BIN_EXE_seccompd"),
        profile.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut names = BTreeSet::new();
    let deadline = Instant::now() + ARRIVAL;
    while !names.contains("exit_group") {
        assert!(
            Instant::now() < deadline,
            "no exit_group within {ARRIVAL:?}: {names:?}"
        );
        match seen.try_recv() {
            Ok(Seen::Call(at, call, action)) if at.pod == PodUid(UID.to_string()) => {
                assert_eq!(at.container, ContainerId(CONTAINER.to_string()));
                // The recording profile logs: each record's code says SCMP_ACT_LOG.
                assert_eq!(action, Some(Action::Log), "{}", call.name);
                names.insert(call.name);
            }
            Ok(Seen::Overflow) => panic!("the audit socket overflowed"),
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    for name in ["execve", "getdents64", "write"] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
}

/// This process in the host's PID namespace (the test runs on the host).
fn own_pid() -> HostPid {
    HostPid(std::process::id())
}

/// A reading thread started from a thread of its own: in the host's network namespace, or in
/// a new one (as node2's recorder is on this machine); its findings and its read counter.
fn reader_in(new_netns: bool) -> (tokio::sync::mpsc::Receiver<Seen>, Counter) {
    let (tx, rx) = tokio::sync::mpsc::channel(1 << 16);
    let read = Counter::default();
    let counter = read.clone();
    std::thread::spawn(move || {
        if new_netns {
            // This thread alone moves: a socket is in the namespace of the thread creating it.
            // SAFETY: unshare(2) with CLONE_NEWNET affects only the calling thread.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        }
        reader::spawn("/proc".into(), own_pid(), counter, tx)
            .expect("joining the audit multicast group");
    })
    .join()
    .expect("the reader started");
    (rx, read)
}

/// Waits up to `limit` for the probe's record on `seen`.
fn heard_probe(seen: &mut tokio::sync::mpsc::Receiver<Seen>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match seen.try_recv() {
            Ok(Seen::Probe) => return true,
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

/// The recorder's probe (a thread of its own logging one call) is heard by a reader in the
/// host's network namespace, and not by one in another namespace of the same kernel (where
/// node2's recorder runs on the local cluster), which therefore says it cannot hear records.
#[test]
fn the_probe_is_heard_in_the_hosts_network_namespace_only() {
    let (mut host, host_read) = reader_in(false);
    let (mut other, other_read) = reader_in(true);
    probe::fire().expect("the probe's filter loads");
    assert!(
        heard_probe(&mut host, PROBE_WAIT),
        "a reader in the host's network namespace hears the probe"
    );
    assert!(host_read.get() >= 1, "the record was counted as read");
    // The host's reader has it: whatever reached the other namespace has arrived too.
    assert!(
        !heard_probe(&mut other, Duration::from_millis(200)),
        "a reader in another network namespace hears nothing"
    );
    assert_eq!(other_read.get(), 0);
}

/// A record whose process is gone before the reader reads its `/proc/PID/cgroup` (here: a
/// `/proc` that holds no process at all, so every process has vanished) is a lost record,
/// `Seen::Unmapped`, never dropped in silence; the recorder counts it in its node's report
/// (`lost.unattributed`) and in `records_lost_total{cause="unmapped"}`.
#[test]
fn a_record_of_a_process_gone_before_attribution_is_counted_lost() {
    let arch = native_arch().expect("a known architecture");
    let dir = tempfile::tempdir().unwrap();
    let profile = record_profile_in(dir.path(), arch);
    let empty_proc = tempfile::tempdir().unwrap();

    let (tx, mut seen) = tokio::sync::mpsc::channel(1 << 16);
    reader::spawn(empty_proc.path().into(), own_pid(), Counter::default(), tx)
        .expect("joining the audit multicast group");
    let run = seccompd(&["run", "--profile", profile.to_str().unwrap(), "--", "true"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let deadline = Instant::now() + ARRIVAL;
    loop {
        assert!(
            Instant::now() < deadline,
            "no record counted lost within {ARRIVAL:?}"
        );
        match seen.try_recv() {
            Ok(Seen::Unmapped) => break,
            Ok(Seen::Call(at, call, _)) => panic!("{call:?} attributed to {at:?} without /proc"),
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
