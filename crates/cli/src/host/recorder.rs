//! Recording every system call of a command and all its threads and descendants, with
//! seccomp user notification.
//!
//! seccompd starts a copy of itself (the hidden [`HELPER_SUBCOMMAND`]) that loads a filter
//! sending every call of every ABI to a listener ([`recording_filter`]) and then execs the
//! command, exactly as `seccompd run` execs it. A filter is inherited by every thread and
//! child and kept across exec, so nothing the command starts escapes it, however briefly it
//! lives. Each call waits until the recorder, holding the listener, has noted it and let it
//! continue; so when the last task using the filter is gone, every call has been seen.
//!
//! Kernel features used: `SECCOMP_USER_NOTIF_FLAG_CONTINUE`, `pidfd_getfd` (to take the
//! helper's listener, found as `/proc/PID/fd/N`), and the listener's hang-up once no task
//! uses the filter (tested on Linux 6.18).

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use libseccomp::error::SeccompError;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpFilterContext, ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags,
};
use nix::sys::signal::{SigSet, Signal};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
use thiserror::Error;

use super::exec::{ExecError, exec_filtered};
use super::notify_failure::{NotifyFailure, classify, kernel_errno};
use super::program::Program;
use seccompd_profile::compile::scmp_arch;
use seccompd_profile::model::Arch;
use seccompd_profile::recording::{RecordedCalls, syscall_name};

/// The hidden subcommand `seccompd record` starts itself with: load [`recording_filter`],
/// then exec the command given after `--`.
pub const HELPER_SUBCOMMAND: &str = "record-exec";

/// How long the helper may take to load its filter; it does nothing else before.
const LISTENER_WAIT: Duration = Duration::from_secs(10);

/// How often the recorder looks for the helper's listener.
const LISTENER_POLL: Duration = Duration::from_millis(1);

/// How often, while no call is pending, the recorder checks whether the command has ended.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// What `/proc/PID/fd/N` points to for a seccomp listener.
const LISTENER_LINK: &str = "anon_inode:seccomp notify";

/// Why a recording failed.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The helper could not be started.
    #[error("cannot start {exe}: {source}")]
    Spawn {
        /// The executable.
        exe: String,
        /// Why.
        source: io::Error,
    },
    /// The helper ended before loading its filter (it printed why).
    #[error("the recording helper ended before recording started ({0})")]
    HelperEnded(ExitStatus),
    /// The helper did not load its filter in time.
    #[error(
        "the recording helper loaded no seccomp listener within {}s",
        LISTENER_WAIT.as_secs()
    )]
    NoListener,
    /// Taking over the listener, polling it, or waiting for the command failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// A notification could not be read (not because its task was gone).
    #[error("cannot receive a system call notification: {0}")]
    Receive(#[source] io::Error),
    /// A call could not be let continue (not because its task was gone).
    #[error("cannot let a recorded system call continue: {0}")]
    Respond(#[source] io::Error),
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> RecordError {
    move |source| RecordError::Io { what, source }
}

/// A call libseccomp cannot name, so that no profile can allow it by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnnamedCall {
    /// The ABI it was made through, as libseccomp calls it.
    pub arch: String,
    /// Its number in that ABI.
    pub number: i32,
}

/// What a recording saw.
#[derive(Debug)]
pub struct Recording {
    /// The calls, by name and ABI.
    pub calls: RecordedCalls,
    /// Calls libseccomp could not name (newer than it, or of an ABI seccompd does not know).
    pub unnamed: BTreeSet<UnnamedCall>,
    /// How many calls were made in all.
    pub total_calls: u64,
    /// How many tasks (processes and threads) made them.
    pub tasks: usize,
    /// How the command ended.
    pub status: ExitStatus,
}

/// The filter the recorded command runs under: every call through every ABI this host can
/// run waits for the recorder (`SCMP_ACT_NOTIFY`), which notes it and lets it continue.
pub fn recording_filter() -> Result<ScmpFilterContext, SeccompError> {
    let mut filter = ScmpFilterContext::new(ScmpAction::Notify)?;
    for arch in Arch::ALL {
        // libseccomp refuses the ABIs a filter for this host cannot hold (other byte
        // order); no call can come through those.
        let _ = filter.add_arch(scmp_arch(*arch));
    }
    Ok(filter)
}

/// The terminal's stop signals, which the recorder blocks and the command must not.
fn stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGQUIT);
    set
}

/// The helper's work: unblocks the signals the recorder blocked (a blocked mask is inherited
/// across exec), then loads [`recording_filter`] and execs `program` as `seccompd run` does.
/// Returns only when that fails.
pub fn exec_recorded(program: &Program) -> ExecError {
    if let Err(e) = stop_signals().thread_unblock() {
        return ExecError::Signals(e);
    }
    match recording_filter() {
        Ok(filter) => exec_filtered(filter, program),
        Err(e) => ExecError::Build(e),
    }
}

/// Runs `command` (resolved beforehand by the caller) under [`recording_filter`] through
/// `seccompd_exe`'s [`HELPER_SUBCOMMAND`], and records its calls until it and every task it
/// started have ended.
pub fn record(seccompd_exe: &Path, program: &Program) -> Result<Recording, RecordError> {
    // Ctrl-C (or Ctrl-\) reaches the command too: it is the command that should stop, and the
    // recorder that should stay to write what it saw. The helper unblocks them again.
    stop_signals()
        .thread_block()
        .map_err(|e| io_err("blocking SIGINT and SIGQUIT")(e.into()))?;
    let mut child = Command::new(seccompd_exe)
        .arg0("seccompd")
        .arg(HELPER_SUBCOMMAND)
        .arg("--")
        .args(program.argv.iter().map(|a| OsStr::from_bytes(a.to_bytes())))
        .spawn()
        .map_err(|source| RecordError::Spawn {
            exe: seccompd_exe.display().to_string(),
            source,
        })?;
    let listener = take_listener(&mut child)?;
    let tick = Timespec::try_from(EXIT_POLL)
        .map_err(|e| io_err("the poll interval")(io::Error::other(e)))?;
    let mut notes = Notes::default();
    let mut status = None;
    loop {
        let mut fds = [PollFd::new(&listener, PollFlags::IN)];
        match poll(&mut fds, Some(&tick)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(io_err("polling the listener")(e.into())),
        }
        let ready = fds[0].revents();
        if ready.contains(PollFlags::IN) {
            receive_one(&listener, &mut notes)?;
            continue;
        }
        // The command's own exit is collected here; the listener hangs up only once every
        // task that used the filter is gone, the command included.
        if status.is_none() {
            status = child
                .try_wait()
                .map_err(io_err("waiting for the command"))?;
        }
        if ready.intersects(PollFlags::HUP | PollFlags::ERR) {
            break;
        }
    }
    let status = match status {
        Some(s) => s,
        None => child.wait().map_err(io_err("waiting for the command"))?,
    };
    Ok(Recording {
        calls: notes.calls,
        unnamed: notes.unnamed,
        total_calls: notes.total,
        tasks: notes.tasks.len(),
        status,
    })
}

/// What the notifications said so far.
#[derive(Default)]
struct Notes {
    calls: RecordedCalls,
    unnamed: BTreeSet<UnnamedCall>,
    /// (ABI, number) pairs already looked up, to name each only once.
    seen: HashSet<(ScmpArch, i32)>,
    tasks: HashSet<u32>,
    total: u64,
}

/// Receives one notification, notes the call, and lets it continue. A call whose task is gone
/// before it was received never ran; one whose task is gone after was noted all the same.
fn receive_one(listener: &OwnedFd, notes: &mut Notes) -> Result<(), RecordError> {
    let fd = listener.as_raw_fd();
    let req = match ScmpNotifReq::receive(fd) {
        Ok(req) => req,
        Err(e) => {
            // The thread's errno, read first, before anything can change it.
            let thread_errno = io::Error::last_os_error().raw_os_error();
            return match failed_call(e, thread_errno) {
                // The next poll says whether anything else is waiting.
                (NotifyFailure::TaskGone | NotifyFailure::Interrupted, _) => Ok(()),
                (NotifyFailure::Failed, error) => Err(RecordError::Receive(error)),
            };
        }
    };
    notes.total += 1;
    notes.tasks.insert(req.pid);
    let (arch, number) = (req.data.arch, i32::from(req.data.syscall));
    if notes.seen.insert((arch, number)) {
        let known = Arch::ALL.iter().copied().find(|a| scmp_arch(*a) == arch);
        match known.and_then(|a| Some((a, syscall_name(a, number)?))) {
            Some((a, name)) => notes.calls.insert(a, &name),
            None => {
                notes.unnamed.insert(UnnamedCall {
                    arch: known.map_or_else(|| format!("{arch:?}"), |a| a.as_str().to_string()),
                    number,
                });
            }
        }
    }
    let resp = ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::CONTINUE);
    loop {
        let Err(e) = resp.respond(fd) else {
            return Ok(());
        };
        // Read first, as after the receive.
        let thread_errno = io::Error::last_os_error().raw_os_error();
        match failed_call(e, thread_errno) {
            (NotifyFailure::TaskGone, _) => return Ok(()),
            // Unanswered, the task would wait for ever.
            (NotifyFailure::Interrupted, _) => continue,
            (NotifyFailure::Failed, error) => return Err(RecordError::Respond(error)),
        }
    }
}

/// What a failed receive or respond means, and the error to report if it is a failure:
/// the kernel's errno when there was one (see [`kernel_errno`]), else libseccomp's error.
fn failed_call(e: SeccompError, thread_errno: Option<i32>) -> (NotifyFailure, io::Error) {
    match e.sysrawrc() {
        Some(rc) => {
            let errno = kernel_errno(rc, thread_errno);
            (classify(errno), io::Error::from_raw_os_error(errno))
        }
        None => (NotifyFailure::Failed, io::Error::other(e)),
    }
}

/// Waits for the helper to load its filter and takes a copy of its listener.
fn take_listener(child: &mut Child) -> Result<OwnedFd, RecordError> {
    let deadline = Instant::now() + LISTENER_WAIT;
    loop {
        if let Some(target) = listener_fd(child.id()) {
            let pidfd = pidfd_open(Pid::from_child(child), PidfdFlags::empty()).map_err(|e| {
                RecordError::Io {
                    what: "pidfd_open on the recording helper",
                    source: e.into(),
                }
            })?;
            return pidfd_getfd(&pidfd, target, PidfdGetfdFlags::empty()).map_err(|e| {
                RecordError::Io {
                    what: "pidfd_getfd of the recording helper's listener",
                    source: e.into(),
                }
            });
        }
        if let Some(status) = child.try_wait().map_err(io_err("waiting for the helper"))? {
            return Err(RecordError::HelperEnded(status));
        }
        if Instant::now() > deadline {
            // The helper is stuck before its exec; it has not started the command.
            let _ = child.kill();
            let _ = child.wait();
            return Err(RecordError::NoListener);
        }
        std::thread::sleep(LISTENER_POLL);
    }
}

/// The number of the seccomp listener among `pid`'s open files, once it has one.
fn listener_fd(pid: u32) -> Option<i32> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    entries.flatten().find_map(|entry| {
        let target = std::fs::read_link(entry.path()).ok()?;
        if target.as_os_str() == LISTENER_LINK {
            entry.file_name().to_str()?.parse().ok()
        } else {
            None
        }
    })
}
