//! `seccompd record [-o FILE] [--name NAME] -- CMD [ARGS...]`: runs a command on this machine,
//! records every system call it and all its threads and descendants make, and writes the
//! SeccompProfile allowing exactly those (YAML, as `seccompd import` writes it). The command's
//! exit status is `record`'s; 125 when it could not be started.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::host::exec::EXIT_NOT_STARTED;
use crate::host::program::Program;
use crate::host::recorder::{self, Recording};
use seccompd_api::{SeccompProfile, SeccompProfileSpec};
use seccompd_profile::compile::native_arch;
use seccompd_profile::recording::profile_name_for;

/// Arguments of `seccompd record`.
#[derive(Args, Debug)]
pub struct RecordArgs {
    /// Write the profile to FILE instead of standard output (where the command writes too).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// metadata.name of the SeccompProfile (default: the command's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Arguments of the hidden helper `record` starts: the command, after `--`.
#[derive(Args, Debug)]
pub struct RecordExecArgs {
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

fn not_started(message: &str) -> ExitCode {
    eprintln!("seccompd record: {message}");
    ExitCode::from(EXIT_NOT_STARTED)
}

/// Runs `seccompd record`.
pub fn run(args: RecordArgs) -> ExitCode {
    let Some(arch) = native_arch() else {
        return not_started("this machine's architecture is not one seccompd knows");
    };
    let program = match Program::resolve(&args.command) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("seccompd record: {e}");
            return ExitCode::from(e.exit_status());
        }
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| profile_name_for(&program.name()));
    if let Some(problem) = seccompd_profile::validate::validate_profile_name(&name)
        .errors
        .first()
    {
        return not_started(&format!("--name {name:?}: {problem}"));
    }
    // The helper is this very binary, whatever has become of its file since.
    let recording = match recorder::record(Path::new("/proc/self/exe"), &program) {
        Ok(r) => r,
        Err(e) => return not_started(&e.to_string()),
    };
    if let Err(message) = write_profile(&args, &name, &recording, arch) {
        eprintln!("seccompd record: {message}");
        return ExitCode::FAILURE;
    }
    exit_status(&recording)
}

/// Writes the profile and reports what was recorded on standard error.
fn write_profile(
    args: &RecordArgs,
    name: &str,
    recording: &Recording,
    arch: seccompd_profile::model::Arch,
) -> Result<(), String> {
    for call in &recording.unnamed {
        eprintln!(
            "seccompd record: warning: system call {} of {} has no name in this libseccomp; no profile can allow it, so the command fails where it makes it",
            call.number, call.arch
        );
    }
    let spec = recording.calls.to_spec(arch);
    let findings = super::check_new_profile(name, &spec, arch);
    for w in &findings.warnings {
        eprintln!("seccompd record: warning: {w}");
    }
    for e in &findings.errors {
        eprintln!("seccompd record: error: {e}");
    }
    let object = SeccompProfile::new(name, SeccompProfileSpec(spec));
    let yaml = serde_saphyr::to_string(&object).map_err(|e| format!("cannot print YAML: {e}"))?;
    let written_to = match &args.output {
        Some(path) => {
            std::fs::write(path, &yaml).map_err(|e| format!("{}: {e}", path.display()))?;
            path.display().to_string()
        }
        None => {
            print!("{yaml}");
            "standard output".to_string()
        }
    };
    let by = match recording.tasks {
        1 => "1 process or thread".to_string(),
        n => format!("{n} processes and threads"),
    };
    eprintln!(
        "seccompd record: {} distinct system calls ({} calls by {by}); profile {name:?} written to {written_to}",
        recording.calls.names().len(),
        recording.total_calls,
    );
    Ok(())
}

/// The command's exit status, or 128 + the signal that ended it (as a shell reports it).
fn exit_status(recording: &Recording) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let status = &recording.status;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Runs the hidden helper: loads the recording filter and execs the command, as `run` does.
pub fn run_helper(args: RecordExecArgs) -> ExitCode {
    let program = match Program::resolve(&args.command) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("seccompd record: {e}");
            return ExitCode::from(e.exit_status());
        }
    };
    let failure = recorder::exec_recorded(&program);
    eprintln!("seccompd record: {failure}");
    ExitCode::from(failure.exit_status())
}
