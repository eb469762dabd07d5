//! `seccompd run` and `seccompd record` on this host, as a user runs them: a program that
//! starts a thread, a child and a short-lived grandchild that execs (`programs/family.c`,
//! compiled here with `cc`) is recorded, its marker calls are all in the profile, the
//! recorded profile validates and runs it, and a call outside it fails with EPERM, shown as
//! the program's own error. Runs offline; needs `cc`.

mod cli_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::seccompd;
use seccompd_profile::decode::{Document, decode};
use seccompd_profile::model::{Action, ProfileSpec};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Compiles `programs/family.c` into `dir`.
fn family(dir: &Path) -> PathBuf {
    cli_support::compile_program(dir, "family.c", &["-O1", "-pthread"])
}

/// The spec of the one SeccompProfile in a YAML file.
fn recorded_spec(path: &Path) -> ProfileSpec {
    let bytes = std::fs::read(path).expect("reading the recorded profile");
    match decode(&bytes).expect("decoding the recorded profile").pop() {
        Some(Document::Resource(res)) => res.spec,
        other => panic!("a SeccompProfile expected in {}: {other:?}", path.display()),
    }
}

fn allowed_names(spec: &ProfileSpec) -> BTreeSet<String> {
    assert_eq!(spec.syscalls.len(), 1, "{spec:?}");
    assert_eq!(spec.syscalls[0].action, Action::Allow);
    spec.syscalls[0]
        .names
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A copy of the recorded profile at `from` without the allow-list entry `name`.
fn without(from: &Path, name: &str, to: &Path) {
    let text = std::fs::read_to_string(from).expect("reading the profile");
    let entry = format!("    - {name}\n");
    assert!(text.contains(&entry), "{name} not listed in:\n{text}");
    std::fs::write(to, text.replace(&entry, "")).expect("writing the profile");
}

fn native_arch_name() -> &'static str {
    seccompd_profile::compile::native_arch()
        .expect("a known architecture")
        .as_str()
}

#[test]
fn record_sees_the_thread_child_and_exec_and_run_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let prog = family(dir.path());
    // Without any profile the program runs, and can create a directory.
    let control = dir.path().join("control");
    let direct = Command::new(&prog)
        .args(["mkdir", s(&control)])
        .output()
        .unwrap();
    assert_eq!(direct.status.code(), Some(7));
    assert!(control.is_dir());

    let profile = dir.path().join("family.yaml");
    let rec = seccompd(&[
        "record",
        "-o",
        s(&profile),
        "--name",
        "family-test",
        "--",
        s(&prog),
    ]);
    assert_eq!(rec.code, 7, "{}", rec.stderr);
    assert_eq!(
        rec.stdout, "family: done\n",
        "only the command writes to stdout"
    );
    rec.assert_stderr_has(&format!(
        "profile \"family-test\" written to {}",
        profile.display()
    ));
    rec.assert_stderr_has("by 4 processes and threads");

    let spec = recorded_spec(&profile);
    assert_eq!(spec.default_action, Action::Errno);
    assert_eq!(spec.default_errno_ret, None);
    let arches: Vec<&str> = spec.architectures.iter().map(|a| a.as_str()).collect();
    assert_eq!(arches, [native_arch_name()]);
    let names = allowed_names(&spec);
    let listed: Vec<String> = spec.syscalls[0]
        .names
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        listed,
        names.iter().cloned().collect::<Vec<_>>(),
        "sorted, once each"
    );
    for marker in [
        "getpriority",            // only the thread
        "sched_get_priority_max", // only the grandchild, before its exec
        "sched_get_priority_min", // only the grandchild, after its exec
        "execve",                 // run's own exec and the grandchild's
        "write",
    ] {
        assert!(names.contains(marker), "{marker} missing from {names:?}");
    }
    assert!(!names.contains("mkdir") && !names.contains("mkdirat"));

    let validated = seccompd(&["validate", s(&profile)]);
    assert_eq!(validated.code, 0, "{}", validated.stdout);
    validated.assert_stdout_has("(family-test): valid");

    let replay = seccompd(&["run", "--profile", s(&profile), "--", s(&prog)]);
    assert_eq!(replay.code, 7, "{}", replay.stderr);
    assert_eq!(replay.stdout, "family: done\n");

    let denied_dir = dir.path().join("denied");
    let denied = seccompd(&[
        "run",
        "--profile",
        s(&profile),
        "--",
        s(&prog),
        "mkdir",
        s(&denied_dir),
    ]);
    assert_eq!(denied.code, 3, "{}", denied.stderr);
    denied.assert_stderr_has(&format!(
        "mkdir: {}: Operation not permitted",
        denied_dir.display()
    ));
    assert!(!denied_dir.exists());
}

#[test]
fn each_marker_is_needed_under_run() {
    let dir = tempfile::tempdir().unwrap();
    let prog = family(dir.path());
    let profile = dir.path().join("family.yaml");
    let rec = seccompd(&["record", "-o", s(&profile), "--", s(&prog)]);
    assert_eq!(rec.code, 7, "{}", rec.stderr);
    // Each marker, taken out of the profile, fails where the program makes it: the calls were
    // recorded because they were made, in the thread and in the exec'd grandchild.
    for (marker, code) in [("getpriority", 4), ("sched_get_priority_min", 5)] {
        let cut = dir.path().join(format!("without-{marker}.yaml"));
        without(&profile, marker, &cut);
        let run = seccompd(&["run", "--profile", s(&cut), "--", s(&prog)]);
        assert_eq!(run.code, code, "{marker}: {}", run.stderr);
        run.assert_stderr_has(&format!("{marker}: Operation not permitted"));
    }
}

#[test]
fn an_orphan_outliving_the_command_is_recorded_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let prog = family(dir.path());
    let profile = dir.path().join("orphan.yaml");
    // The shell exits at once; its background child runs the marker 0.3 s later.
    let script = format!("(sleep 0.3; exec {} exec) & exit 0", s(&prog));
    let rec = seccompd(&["record", "-o", s(&profile), "--", "sh", "-c", &script]);
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    let names = allowed_names(&recorded_spec(&profile));
    assert!(names.contains("sched_get_priority_min"), "{names:?}");
    assert!(!names.contains("getpriority"), "{names:?}");
}

#[test]
fn record_passes_the_exit_status_through_and_prints_to_stdout_without_o() {
    let rec = seccompd(&["record", "--", "sh", "-c", "exit 42"]);
    assert_eq!(rec.code, 42, "{}", rec.stderr);
    assert!(
        rec.stdout.starts_with(
            "apiVersion: seccompd.dev/v1alpha1\nkind: SeccompProfile\nmetadata:\n  name: sh\n"
        ),
        "{}",
        rec.stdout
    );
    rec.assert_stderr_has("written to standard output");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("killed.yaml");
    let killed = seccompd(&["record", "-o", s(&out), "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(killed.code, 128 + 15, "{}", killed.stderr);
    assert!(allowed_names(&recorded_spec(&out)).contains("kill"));

    let missing = seccompd(&["record", "--", "no-such-command-seccompd"]);
    assert_eq!(missing.code, 127);
    missing.assert_stderr_has("no-such-command-seccompd: command not found");

    let bad_name = seccompd(&["record", "--name", "Not_A_Name", "--", "true"]);
    assert_eq!(bad_name.code, 125);
    bad_name.assert_stderr_has("--name \"Not_A_Name\": metadata.name");
}

#[test]
fn a_call_libseccomp_cannot_name_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let prog = family(dir.path());
    let profile = dir.path().join("raw.yaml");
    let rec = seccompd(&["record", "-o", s(&profile), "--", s(&prog), "raw", "999"]);
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    rec.assert_stderr_has(&format!(
        "warning: system call 999 of {} has no name in this libseccomp",
        native_arch_name()
    ));
    assert!(profile.is_file());
}

#[test]
fn ctrl_c_stops_the_command_and_the_profile_is_still_written() {
    use nix::sys::signal::{SigHandler, Signal, killpg, signal};
    use nix::unistd::Pid;
    use std::os::unix::process::CommandExt;

    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("sleep.yaml");
    // Its own process group, as a shell gives a foreground job: Ctrl-C signals the group.
    let mut command = Command::new(env!("CARGO_BIN_EXE_seccompd"));
    command
        .args([
            "record",
            "-o",
            s(&profile),
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 30",
        ])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A shell without job control starts background jobs with SIGINT ignored, and an ignored
    // disposition is inherited across exec: the command would never see Ctrl-C. Give it the
    // default, as a terminal's foreground job has.
    // SAFETY: between fork and exec the closure makes one async-signal-safe call.
    unsafe {
        command.pre_exec(|| {
            signal(Signal::SIGINT, SigHandler::SigDfl)
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "started\n");
    let started = Instant::now();
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "record did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(128 + 2));
    // What happened before the signal is there: the shell's echo at least.
    let names = allowed_names(&recorded_spec(&profile));
    assert!(
        names.contains("write") && names.contains("execve"),
        "{names:?}"
    );
}

/// Tasks ending at about the same time, some while the recorder is between receiving a call
/// and letting it continue: a pipeline and a delayed `uname` in the background, and Python
/// starting a thread that lists `/` (the workload of the issue), with a bash loop of command
/// substitutions beside them. Each substitution's child, ending, sends bash a SIGCHLD whose
/// handler interrupts the call bash is waiting in, and the kernel drops that notification: on
/// a host where `python3` is a plain binary that is what makes the workload hit the race
/// (without the loop, 0 runs in 40 failed here with Debian's python3; the issue's failures
/// came from pyenv's bash shim for `python3`).
const FORKING_WORKLOAD: &str = r#"(cat /etc/hostname | wc -c) & (sleep 0.05; uname -a) & bash -c 'for i in $(seq 40); do v=$(echo $i); done' & python3 -c 'import threading,os; t=threading.Thread(target=lambda: os.listdir("/")); t.start(); t.join()'; wait"#;

/// Before tasks that vanished mid-call were told apart, half of the runs of
/// [`FORKING_WORKLOAD`] failed; this many in a row would not all have passed.
const FORKING_RUNS: usize = 120;

#[test]
fn recording_a_forking_workload_never_fails_because_a_task_ended() {
    // The workload's shell would carry on without Python; its profile would then lack the
    // thread, and this test would say so less clearly.
    let python = Command::new("python3")
        .args(["-c", "import threading"])
        .status();
    assert!(
        matches!(python, Ok(status) if status.success()),
        "python3 with threading is needed (hack/deps.sh installs it): {python:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("forking.yaml");
    let started = Instant::now();
    for run in 1..=FORKING_RUNS {
        if profile.exists() {
            std::fs::remove_file(&profile).unwrap();
        }
        let rec = seccompd(&[
            "record",
            "-o",
            s(&profile),
            "--",
            "sh",
            "-c",
            FORKING_WORKLOAD,
        ]);
        assert_eq!(rec.code, 0, "run {run} of {FORKING_RUNS}: {}", rec.stderr);
        rec.assert_stdout_has("Linux ");
        let names = allowed_names(&recorded_spec(&profile));
        for call in [
            "uname",        // the delayed background job
            "clone3",       // Python's thread (glibc creates threads with clone3)
            "getdents64",   // listing a directory
            "wait4",        // the shell waiting for its jobs
            "rt_sigreturn", // bash's SIGCHLD handler returning
            "execve",
        ] {
            assert!(
                names.contains(call),
                "run {run}: {call} missing from {names:?}"
            );
        }
    }
    eprintln!(
        "{FORKING_RUNS} recordings of the forking workload in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

const DENY_MKDIR: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#;

#[test]
fn run_applies_a_json_profile_with_no_new_privs() {
    let dir = tempfile::tempdir().unwrap();
    let deny = dir.path().join("deny-mkdir.json");
    std::fs::write(&deny, DENY_MKDIR).unwrap();
    let target = dir.path().join("d");
    let mkdir = seccompd(&["run", "--profile", s(&deny), "--", "mkdir", s(&target)]);
    assert_eq!(mkdir.code, 1, "{}", mkdir.stderr);
    mkdir.assert_stderr_has("mkdir: cannot create directory");
    mkdir.assert_stderr_has("Operation not permitted");
    assert!(!target.exists());

    let status = seccompd(&[
        "run",
        "--profile",
        s(&deny),
        "--",
        "grep",
        "-E",
        "^(NoNewPrivs|Seccomp):",
        "/proc/self/status",
    ]);
    assert_eq!(
        status.stdout, "NoNewPrivs:\t1\nSeccomp:\t2\n",
        "{}",
        status.stderr
    );

    let exit = seccompd(&["run", "--profile", s(&deny), "--", "sh", "-c", "exit 42"]);
    assert_eq!(exit.code, 42);
}

#[test]
fn run_refuses_what_the_node_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let bad_errno = write(
        "errno.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":4095}]}"#,
    );
    let r = seccompd(&["run", "--profile", s(&bad_errno), "--", "true"]);
    assert_eq!(r.code, 125);
    r.assert_stderr_has("INVALID, not run");
    r.assert_stderr_has("error: syscalls[0].errnoRet");

    let with_base = write(
        "base.yaml",
        "apiVersion: seccompd.dev/v1alpha1\nkind: SeccompProfile\nmetadata:\n  name: child\nspec:\n  baseProfileName: parent\n  defaultAction: SCMP_ACT_ALLOW\n",
    );
    let r = seccompd(&["run", "--profile", s(&with_base), "--", "true"]);
    assert_eq!(r.code, 125);
    r.assert_stderr_has("spec.baseProfileName");

    let two = write(
        "two.yaml",
        "apiVersion: seccompd.dev/v1alpha1\nkind: SeccompProfile\nmetadata:\n  name: a\nspec:\n  defaultAction: SCMP_ACT_ALLOW\n---\napiVersion: seccompd.dev/v1alpha1\nkind: SeccompProfile\nmetadata:\n  name: b\nspec:\n  defaultAction: SCMP_ACT_ALLOW\n",
    );
    let r = seccompd(&["run", "--profile", s(&two), "--", "true"]);
    assert_eq!(r.code, 125);
    r.assert_stderr_has("holds 2 documents; run takes one profile");

    let missing_file = dir.path().join("absent.json");
    let r = seccompd(&["run", "--profile", s(&missing_file), "--", "true"]);
    assert_eq!(r.code, 125);
    r.assert_stderr_has("absent.json: No such file");

    let fine = write("allow.json", r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
    let r = seccompd(&[
        "run",
        "--profile",
        s(&fine),
        "--",
        "no-such-command-seccompd",
    ]);
    assert_eq!(r.code, 127);
    r.assert_stderr_has("no-such-command-seccompd: command not found");

    let r = seccompd(&["run", "--profile", s(&fine)]);
    assert_eq!(r.code, 2, "clap's usage error: {}", r.stderr);
}
