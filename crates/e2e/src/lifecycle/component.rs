//! Stops or kills one of the test cluster's host processes (etcd, kube-apiserver, kubelet,
//! node2-kubelet) and starts it again exactly as hack/cluster-up.sh did: same binary and arguments (read
//! from /proc), same log file, the new PID in the PID file that hack/cluster-down.sh reads,
//! and for node2's components the same namespaces (hack/node2.sh). The guard restarts it when
//! dropped, also on a panic.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::kubeconfig_path;

/// Where hack/cluster-up.sh records each component's PID.
const PID_DIR: &str = "/run/seccompd-e2e/pids";

/// The PID files of node2's components start with this; they run in the namespaces the
/// process in `node2-launcher` holds.
const NODE2_PREFIX: &str = "node2-";

/// A stopped component; dropping it starts it again.
pub struct StoppedComponent {
    name: &'static str,
    /// For node2's components: `nsenter` into node2's namespaces, then the component's own.
    argv: Vec<String>,
    cwd: PathBuf,
    log: PathBuf,
    restarted: bool,
}

impl StoppedComponent {
    /// Stops the running `name` (SIGTERM, SIGKILL after 5 s) and waits until it is gone.
    pub fn stop(name: &'static str) -> Self {
        let (stopped, pid) = Self::capture(name);
        // A graceful shutdown may drain for up to a minute; an outage need not wait.
        signal(pid, "-TERM");
        if !wait_gone(pid, Duration::from_secs(5)) {
            signal(pid, "-KILL");
            assert!(
                wait_gone(pid, Duration::from_secs(30)),
                "{name} {pid} did not stop"
            );
        }
        stopped
    }

    /// Kills the running `name` with SIGKILL, as a crash or the OOM killer would (no
    /// shutdown of its own), and waits until it is gone.
    pub fn kill(name: &'static str) -> Self {
        let (stopped, pid) = Self::capture(name);
        signal(pid, "-KILL");
        assert!(
            wait_gone(pid, Duration::from_secs(30)),
            "{name} {pid} did not die"
        );
        stopped
    }

    /// What it takes to start the running `name` again, and its PID.
    fn capture(name: &'static str) -> (Self, u32) {
        let pid = recorded_pid(name);
        let binary = name.strip_prefix(NODE2_PREFIX).unwrap_or(name);
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let exe = fs::read_link(proc_dir.join("exe")).expect("the component's process runs");
        assert!(
            exe.file_name().is_some_and(|n| n == binary),
            "PID {pid} is {}, not {binary}",
            exe.display()
        );
        let mut argv: Vec<String> = Vec::new();
        if name.starts_with(NODE2_PREFIX) {
            let launcher = recorded_pid("node2-launcher").to_string();
            argv.extend(["nsenter", "-t", &launcher, "-m", "-n", "--"].map(String::from));
        }
        argv.extend(
            fs::read(proc_dir.join("cmdline"))
                .expect("reading its command line")
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned()),
        );
        let cwd = fs::read_link(proc_dir.join("cwd")).unwrap_or_else(|_| "/".into());
        // cluster-up.sh appends each component's output to logs/NAME.log in the .cluster
        // directory that also holds the admin kubeconfig.
        let log = kubeconfig_path()
            .parent()
            .map(|cluster| cluster.join("logs").join(format!("{name}.log")))
            .unwrap_or_else(|| std::env::temp_dir().join(format!("{name}.log")));
        // From here on a failure restarts it (Drop).
        let stopped = Self {
            name,
            argv,
            cwd,
            log,
            restarted: false,
        };
        (stopped, pid)
    }

    /// Starts the component again and records its PID; returns at once (the caller waits for
    /// it to serve).
    pub fn restart(mut self) {
        self.start();
    }

    fn start(&mut self) {
        if self.restarted {
            return;
        }
        self.restarted = true;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.log.display()));
        let err = log.try_clone().expect("cloning the log handle");
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            // Its own process group: outlives the test process and ignores its Ctrl-C, as a
            // component started by cluster-up.sh does.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.argv[0]));
        fs::write(
            PathBuf::from(PID_DIR).join(self.name),
            format!("{}\n", child.id()),
        )
        .expect("writing the PID file");
        // Reap it should it exit while this process still runs; otherwise it is adopted by
        // init when the tests end, like every server cluster-up.sh started.
        std::thread::spawn(move || child.wait());
    }
}

/// The PID hack/cluster-up.sh recorded for `name`.
fn recorded_pid(name: &str) -> u32 {
    let pid_file = PathBuf::from(PID_DIR).join(name);
    fs::read_to_string(&pid_file)
        .unwrap_or_else(|e| {
            panic!(
                "reading {}: {e}: is the test cluster up?",
                pid_file.display()
            )
        })
        .trim()
        .parse()
        .expect("a PID in the PID file")
}

/// Sends `sig` (as `kill` spells it) to `pid`.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

/// Waits until `pid` has exited (a zombie counts as exited); false on timeout.
fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    false
}

impl Drop for StoppedComponent {
    fn drop(&mut self) {
        self.start();
    }
}
