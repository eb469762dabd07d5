//! The last steps of starting a command under a filter, shared by `run` and `record`.

use std::convert::Infallible;

use libseccomp::ScmpFilterContext;
use libseccomp::error::SeccompError;
use thiserror::Error;

use super::program::Program;

/// Why the command was not started. Returned by [`exec_filtered`], which otherwise does not
/// return.
#[derive(Debug, Error)]
pub enum ExecError {
    /// prctl(PR_SET_NO_NEW_PRIVS) failed.
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(#[source] std::io::Error),
    /// The signals the recorder blocks could not be unblocked for the command.
    #[error("cannot unblock SIGINT and SIGQUIT: {0}")]
    Signals(#[source] nix::errno::Errno),
    /// libseccomp could not build the filter.
    #[error("cannot build the seccomp filter: {0}")]
    Build(#[source] SeccompError),
    /// libseccomp refused to load the filter.
    #[error("cannot load the seccomp filter: {0}")]
    Load(#[source] SeccompError),
    /// The exec failed (after the filter was loaded).
    #[error("{path}: cannot execute: {errno}")]
    Exec {
        /// The file.
        path: String,
        /// Why.
        errno: nix::errno::Errno,
    },
}

/// Exit status when `run` or `record` fails before the command starts (bad profile, usage,
/// filter): 125, as `docker run` and `env` use, apart from any status the command itself
/// returns.
pub const EXIT_NOT_STARTED: u8 = 125;

/// Exit status when the command's file exists but cannot be executed, as a shell gives it.
pub const EXIT_CANNOT_EXECUTE: u8 = 126;

/// Exit status when the command is not found, as a shell gives it.
pub const EXIT_NOT_FOUND: u8 = 127;

impl ExecError {
    /// The exit status for this failure: [`EXIT_NOT_FOUND`] or [`EXIT_CANNOT_EXECUTE`] when
    /// the exec fails, [`EXIT_NOT_STARTED`] otherwise.
    pub fn exit_status(&self) -> u8 {
        match self {
            ExecError::Exec {
                errno: nix::errno::Errno::ENOENT,
                ..
            } => EXIT_NOT_FOUND,
            ExecError::Exec { .. } => EXIT_CANNOT_EXECUTE,
            _ => EXIT_NOT_STARTED,
        }
    }
}

/// Replaces this process by `program` running under `filter`: sets `no_new_privs` (as runc
/// does for a container with `allowPrivilegeEscalation: false`), loads `filter` with
/// libseccomp, and execs. Returns only when one of these fails.
///
/// Nothing but the exec runs after the load (the argument vector is built by `execv` from
/// strings made before), so a profile needs `execve` and nothing else to start a command.
pub fn exec_filtered(mut filter: ScmpFilterContext, program: &Program) -> ExecError {
    if let Err(e) = rustix::thread::set_no_new_privs(true) {
        return ExecError::NoNewPrivs(e.into());
    }
    // Set above, as the runtime does; libseccomp need not set it again.
    if let Err(e) = filter.set_ctl_nnp(false) {
        return ExecError::Load(e);
    }
    if let Err(e) = filter.load() {
        return ExecError::Load(e);
    }
    let result: Result<Infallible, nix::errno::Errno> =
        nix::unistd::execv(&program.path, &program.argv);
    match result {
        Ok(never) => match never {},
        Err(errno) => ExecError::Exec {
            path: program.path.to_string_lossy().into_owned(),
            errno,
        },
    }
}
