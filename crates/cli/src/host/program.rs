//! The command to run, resolved to the file to execute before anything is loaded, so that a
//! missing command is reported as such rather than as a failed exec under a filter.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use thiserror::Error;

use super::exec::{EXIT_NOT_FOUND, EXIT_NOT_STARTED};

/// Why a command cannot be run.
#[derive(Debug, Error)]
pub enum ProgramError {
    /// No command was given.
    #[error("no command given: put it after `--`")]
    Missing,
    /// The command is not an executable file here or on `PATH`.
    #[error("{name}: command not found ({source})")]
    NotFound {
        /// The command as given.
        name: String,
        /// What the search found.
        source: which::Error,
    },
    /// An argument holds a NUL byte, which exec cannot pass.
    #[error("argument {index} holds a NUL byte, which a command line cannot carry")]
    Nul {
        /// Position of the argument (0 is the command).
        index: usize,
    },
}

impl ProgramError {
    /// The exit status for this failure: [`EXIT_NOT_FOUND`] for a command not found,
    /// [`EXIT_NOT_STARTED`] otherwise.
    pub fn exit_status(&self) -> u8 {
        match self {
            ProgramError::NotFound { .. } => EXIT_NOT_FOUND,
            _ => EXIT_NOT_STARTED,
        }
    }
}

/// A command resolved to the file to execute, with its argument vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The file to execute (found on `PATH` when the command has no `/`).
    pub path: CString,
    /// The arguments, the first being the command as given (as a shell passes it).
    pub argv: Vec<CString>,
}

impl Program {
    /// Resolves `command` (the program followed by its arguments) the way `execvp` would.
    pub fn resolve(command: &[OsString]) -> Result<Self, ProgramError> {
        let first = command.first().ok_or(ProgramError::Missing)?;
        let path: PathBuf = which::which(first).map_err(|source| ProgramError::NotFound {
            name: first.to_string_lossy().into_owned(),
            source,
        })?;
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| ProgramError::Nul { index: 0 })?;
        let argv = command
            .iter()
            .enumerate()
            .map(|(index, arg)| {
                CString::new(arg.as_bytes()).map_err(|_| ProgramError::Nul { index })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { path, argv })
    }

    /// The command as given, for messages.
    pub fn name(&self) -> String {
        self.argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_name_is_found_on_path_and_argv_keeps_it() {
        let p = Program::resolve(&args(&["sh", "-c", "exit 3"])).unwrap();
        assert!(p.path.to_bytes().ends_with(b"/sh"), "{:?}", p.path);
        assert!(p.path.to_bytes().starts_with(b"/"), "{:?}", p.path);
        assert_eq!(p.argv, [c"sh", c"-c", c"exit 3"]);
        assert_eq!(p.name(), "sh");
    }

    #[test]
    fn missing_commands_and_nul_bytes_are_refused() {
        assert!(matches!(Program::resolve(&[]), Err(ProgramError::Missing)));
        let err = Program::resolve(&args(&["no-such-command-seccompd"])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no-such-command-seccompd: command not found"),
            "{err}"
        );
        let nul = vec![OsString::from("sh"), OsString::from("a\0b")];
        assert!(matches!(
            Program::resolve(&nul),
            Err(ProgramError::Nul { index: 1 })
        ));
    }
}
