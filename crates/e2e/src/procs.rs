//! Processes seen from /proc: resident memory, CPU time, and the host PIDs of a pod's
//! processes (found by their cgroup).

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::task::AbortOnDropHandle;

/// Where the test cluster records its control plane's PIDs.
const PID_DIR: &str = "/run/seccompd-e2e/pids";

/// The process names of seccompd's executables: the agent's and the one of every other role.
const SECCOMPD_COMMS: [&str; 2] = ["seccompd-agent", "seccompd"];

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The part of `pid`'s resident memory that maps files (its executable's code and data,
/// shared libraries), in KiB: the kernel can drop and reread it, and it does not grow with
/// what the process holds.
pub fn rss_file_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "RssFile:")
}

/// A `field:` line of `/proc/<pid>/status` given in kB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// User plus system CPU seconds `pid` has used.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised name; utime and stime are fields 14 and 15 of stat(5).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// The PID of a control plane component (`kube-apiserver`, `etcd`).
pub fn control_plane_pid(name: &str) -> Option<u32> {
    fs::read_to_string(Path::new(PID_DIR).join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The host PID of the seccompd process (agent, controller or recorder) in the pod with uid
/// `pod_uid`.
pub fn pod_process_pid(pod_uid: &str) -> Option<u32> {
    pod_pids(pod_uid).into_iter().find(|pid| {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| SECCOMPD_COMMS.contains(&comm.trim()))
    })
}

/// The host PIDs of the processes of the pod with uid `pod_uid`, its sandbox's `pause` left
/// out (cgroupfs names a pod's cgroup `pod<uid>`).
pub fn pod_pids(pod_uid: &str) -> Vec<u32> {
    let needle = format!("/pod{pod_uid}/");
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            comm.trim() != "pause"
                && fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .is_ok_and(|cgroup| cgroup.contains(&needle))
        })
        .collect()
}

/// One control plane process over a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// CPU seconds used during the run.
    pub cpu_s: f64,
    /// Resident memory at the start, the end and the highest seen (KiB).
    pub rss_start_kib: u64,
    pub rss_end_kib: u64,
    pub rss_peak_kib: u64,
}

/// Samples a process's resident memory every 250 ms until finished.
pub struct Sampler {
    pid: Option<u32>,
    cpu_start: f64,
    usage: Arc<Mutex<Usage>>,
    _task: AbortOnDropHandle<()>,
}

impl Sampler {
    /// Starts sampling `pid` (nothing when the PID is unknown: the figures stay 0).
    pub fn start(pid: Option<u32>) -> Self {
        let rss = pid.and_then(rss_kib).unwrap_or(0);
        let usage = Arc::new(Mutex::new(Usage {
            rss_start_kib: rss,
            rss_peak_kib: rss,
            ..Usage::default()
        }));
        let shared = usage.clone();
        let task = tokio::spawn(async move {
            let Some(pid) = pid else { return };
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let (Some(rss), Ok(mut u)) = (rss_kib(pid), shared.lock()) {
                    u.rss_peak_kib = u.rss_peak_kib.max(rss);
                }
            }
        });
        Self {
            pid,
            cpu_start: pid.and_then(cpu_seconds).unwrap_or(0.0),
            usage,
            _task: AbortOnDropHandle::new(task),
        }
    }

    /// The usage from the start until now.
    pub fn finish(self) -> Usage {
        let mut usage = self.usage.lock().map(|u| *u).unwrap_or_default();
        if let Some(pid) = self.pid {
            usage.cpu_s = cpu_seconds(pid).unwrap_or(0.0) - self.cpu_start;
            usage.rss_end_kib = rss_kib(pid).unwrap_or(0);
            usage.rss_peak_kib = usage.rss_peak_kib.max(usage.rss_end_kib);
        }
        usage
    }
}
