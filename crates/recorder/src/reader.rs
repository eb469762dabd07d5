//! The recorder's reading thread: every seccomp record of the audit multicast group,
//! attributed at once to its container through the host's `/proc/PID/cgroup` (a process may
//! end any moment after its call), handed to the loop.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::audit_socket::{AuditReader, AuditSocketError, Received};
use seccompd_profile::model::Action;
use seccompd_recording::audit::{HostPid, NamedCall, SeccompRecord};
use seccompd_recording::cgroup::{Attribution, attribute};

/// How long a process's container is remembered without being looked at again. A process
/// keeps its cgroup (containers cannot move their processes); the bound only keeps a reused
/// PID from inheriting a dead process's container for long.
const PID_MEMORY: Duration = Duration::from_secs(10);

/// What the reading thread saw.
#[derive(Debug)]
pub enum Seen {
    /// A call of a container's process, and the action the filter took (when the record
    /// says).
    Call(Attribution, NamedCall, Option<Action>),
    /// A record of a process that had ended before its cgroup could be read.
    Unmapped,
    /// The socket overflowed: records were dropped.
    Overflow,
    /// The record of this recorder's own probe (see [`super::probe`]).
    Probe,
}

/// Joins the multicast group (so that missing privileges fail at once), then reads on a
/// thread of its own until `to` is closed, counting every seccomp record in `read`. Records
/// naming `own_pid` (this process, in the host's PID namespace) are its probe's.
pub fn spawn(
    proc_root: PathBuf,
    own_pid: HostPid,
    read: Counter,
    to: mpsc::Sender<Seen>,
) -> Result<(), AuditSocketError> {
    let mut reader = AuditReader::subscribe()?;
    std::thread::Builder::new()
        .name("audit-reader".to_string())
        .spawn(move || {
            let mut pids = PidMemory::new(proc_root);
            let mut unnamed = HashSet::new();
            loop {
                let seen = match reader.receive() {
                    Ok(Received::Seccomp(text)) => {
                        read.inc();
                        match pids.see(&text, own_pid, &mut unnamed) {
                            Some(seen) => seen,
                            None => continue,
                        }
                    }
                    Ok(Received::Overflow) => Seen::Overflow,
                    Ok(Received::Other) => continue,
                    Err(err) => {
                        warn!(%err, "reading audit records failed; retrying");
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                // Blocks while the loop is behind: the socket then overflows, which is counted.
                if to.blocking_send(seen).is_err() {
                    return;
                }
            }
        })
        .map_err(|source| AuditSocketError::Io {
            what: "starting the audit reading thread",
            source,
        })?;
    Ok(())
}

/// The containers of the processes seen lately.
struct PidMemory {
    proc_root: PathBuf,
    known: HashMap<HostPid, (Option<Attribution>, Instant)>,
    last_sweep: Instant,
}

impl PidMemory {
    fn new(proc_root: PathBuf) -> Self {
        Self {
            proc_root,
            known: HashMap::new(),
            last_sweep: Instant::now(),
        }
    }

    /// What a record's text comes to; `None` for a record to skip (a process outside any
    /// container, or a call no name is known for).
    fn see(
        &mut self,
        text: &str,
        own_pid: HostPid,
        unnamed: &mut HashSet<(u32, u32)>,
    ) -> Option<Seen> {
        let record = match SeccompRecord::parse(text) {
            Ok(r) => r,
            Err(err) => {
                debug!(%err, text, "unreadable seccomp record");
                return None;
            }
        };
        if record.pid == own_pid {
            return Some(Seen::Probe);
        }
        let Some(call) = record.call() else {
            if unnamed.insert((record.audit_arch, record.syscall)) {
                warn!(
                    arch = format!("{:x}", record.audit_arch),
                    syscall = record.syscall,
                    "a call libseccomp cannot name; no profile can allow it by name"
                );
            }
            return None;
        };
        match self.container_of(record.pid) {
            Some(Some(at)) => Some(Seen::Call(at, call, record.action())),
            // A host process under a logging filter: not a pod's.
            Some(None) => None,
            None => Some(Seen::Unmapped),
        }
    }

    /// `Some(Some(container))`, `Some(None)` for a process outside any container, `None` when
    /// the process is gone and unknown.
    fn container_of(&mut self, pid: HostPid) -> Option<Option<Attribution>> {
        let now = Instant::now();
        if let Some((at, when)) = self.known.get(&pid)
            && now.duration_since(*when) < PID_MEMORY
        {
            return Some(at.clone());
        }
        let path = self.proc_root.join(pid.0.to_string()).join("cgroup");
        let found = match std::fs::read_to_string(&path) {
            Ok(text) => attribute(&text),
            // Gone: the last known container, if any, is still the best answer.
            Err(_) => return self.known.get(&pid).map(|(at, _)| at.clone()),
        };
        self.known.insert(pid, (found.clone(), now));
        if now.duration_since(self.last_sweep) > PID_MEMORY {
            self.known
                .retain(|_, (_, when)| now.duration_since(*when) < PID_MEMORY);
            self.last_sweep = now;
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccompd_recording::cgroup::{ContainerId, PodUid};

    const UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    const ID: &str = "3b8c5a5e1d0f4e2a9c7b6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a";

    fn record(pid: u32) -> String {
        format!(
            "audit(1.2:3): pid={pid} comm=\"mkdir\" exe=\"/bin/mkdir\" arch=c000003e syscall=83 code=0x50000"
        )
    }

    /// A process still there is attributed with its call and action; one that ended before
    /// its cgroup could be read (its `/proc` entry gone mid-way) is a lost record, and one
    /// seen before it ended keeps its container.
    #[test]
    fn a_process_gone_before_its_cgroup_is_read_is_unmapped() {
        let proc_root = tempfile::tempdir().unwrap();
        let mut pids = PidMemory::new(proc_root.path().to_path_buf());
        let mut unnamed = HashSet::new();
        let own = HostPid(1);

        let live = proc_root.path().join("42");
        std::fs::create_dir(&live).unwrap();
        std::fs::write(
            live.join("cgroup"),
            format!("0::/kubepods/besteffort/pod{UID}/{ID}\n"),
        )
        .unwrap();
        let want = Attribution {
            pod: PodUid(UID.to_string()),
            container: ContainerId(ID.to_string()),
        };
        match pids.see(&record(42), own, &mut unnamed) {
            Some(Seen::Call(at, call, action)) => {
                assert_eq!(at, want);
                assert_eq!(call.name, "mkdir");
                assert_eq!(action, Some(Action::Errno));
            }
            other => panic!("{other:?}"),
        }
        // It ends: the container seen a moment ago is still the answer.
        std::fs::remove_dir_all(&live).unwrap();
        assert!(matches!(
            pids.see(&record(42), own, &mut unnamed),
            Some(Seen::Call(at, _, _)) if at == want
        ));
        // A process never seen, gone before its record was read.
        assert!(matches!(
            pids.see(&record(43), own, &mut unnamed),
            Some(Seen::Unmapped)
        ));
    }
}
