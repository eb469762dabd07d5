//! The agent binary run as a host process beside the DaemonSet: its own kubelet root (a temp
//! directory), a node name no real node has (so it never touches node1's report, taint or
//! pods) and no part in the status writer election. It reads the admin kubeconfig.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Node name of host-run agents: no Node has it, so the agent owns no report and no taint.
pub const HOST_NODE: &str = "seccompd-host-agent";

/// A kubelet root for a host-run agent, with the directory the agent owns.
pub struct HostRoot {
    /// `<root>`; the agent owns `<root>/seccomp/seccompd`.
    pub root: PathBuf,
    /// The agent's log (stderr of every run, appended).
    pub log: PathBuf,
}

impl HostRoot {
    /// Prepares `<base>/kubelet/seccomp` (the agent creates `seccompd` in it).
    pub fn new(base: &Path) -> Self {
        let root = base.join("kubelet");
        fs::create_dir_all(root.join("seccomp")).expect("creating the kubelet root");
        Self {
            root,
            log: base.join("agent.log"),
        }
    }

    /// The directory the agent owns.
    pub fn dir(&self) -> PathBuf {
        self.root.join("seccomp/seccompd")
    }

    /// Starts one agent process.
    pub fn spawn(&self, binary: &Path, kubeconfig: &Path) -> HostAgent {
        self.spawn_with(binary, kubeconfig, &HostOptions::default())
    }

    /// Starts one agent process as the DaemonSet runs it (every capability dropped) with its
    /// health endpoint on a fresh local port (a port used before may linger in TIME_WAIT);
    /// returns the agent and that port.
    pub fn spawn_as_in_the_daemonset(&self, binary: &Path, kubeconfig: &Path) -> (HostAgent, u16) {
        let port = free_port();
        let options = HostOptions {
            health_port: Some(port),
            drop_capabilities: true,
        };
        (self.spawn_with(binary, kubeconfig, &options), port)
    }

    /// Starts one agent process as `options` say.
    pub fn spawn_with(&self, binary: &Path, kubeconfig: &Path, options: &HostOptions) -> HostAgent {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening the agent log");
        let mut command = if options.drop_capabilities {
            // As in the DaemonSet: root, with every capability dropped (so root cannot read a
            // mode-000 file of another user).
            let mut c = Command::new("setpriv");
            c.args([
                "--bounding-set=-all",
                "--inh-caps=-all",
                "--ambient-caps=-all",
                "--",
            ])
            .arg(binary);
            c
        } else {
            Command::new(binary)
        };
        let health = match options.health_port {
            Some(port) => format!("127.0.0.1:{port}"),
            None => "127.0.0.1:0".to_string(),
        };
        let child = command
            .env("KUBECONFIG", kubeconfig)
            .env("NODE_NAME", HOST_NODE)
            .env("KUBELET_ROOT", &self.root)
            .env("HEALTH_ADDR", health)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        HostAgent { child }
    }
}

/// How to start a host agent.
#[derive(Clone, Debug, Default)]
pub struct HostOptions {
    /// Serve /healthz, /readyz and /metrics on this local port (default: any free port).
    pub health_port: Option<u16>,
    /// Run with every capability dropped, as the DaemonSet does.
    pub drop_capabilities: bool,
}

/// A local port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free local port");
    listener.local_addr().expect("its address").port()
}

/// A running host agent; killed with SIGKILL when dropped.
pub struct HostAgent {
    child: Child,
}

impl HostAgent {
    /// kill -9, then reap.
    pub fn kill9(mut self) {
        self.reap();
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit on its own (as when it refuses its directory) and
    /// returns its status; panics if it still runs after `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the agent process") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "the agent still runs after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn reap(&mut self) {
        // Child::kill sends SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostAgent {
    fn drop(&mut self) {
        self.reap();
    }
}
