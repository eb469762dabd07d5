//! `seccompd run --profile PROFILE -- CMD [ARGS...]`: runs a command on this machine under a
//! profile, to try the profile before applying it. The profile is checked as `seccompd
//! validate` and a node check it; the command then runs with `no_new_privs` and the filter
//! the node's runtime would build, and its exit status is `run`'s. A denied call fails with
//! the profile's errno, which the command reports as its own error.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::host::exec::{EXIT_NOT_STARTED, exec_filtered};
use crate::host::program::Program;
use seccompd_profile::check::NodeRuntime;
use seccompd_profile::compile::{build_filter, native_arch};
use seccompd_profile::decode::{self, Document};
use seccompd_profile::render::OciProfile;
use seccompd_profile::resolve::resolve;

use super::validate::check_inputs;

/// Arguments of `seccompd run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The profile: OCI/Docker seccomp JSON, or one SeccompProfile (YAML) without a base.
    #[arg(long)]
    pub profile: PathBuf,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// The reason the command was not started, and the exit status saying so.
struct NotStarted {
    message: String,
    status: u8,
}

impl NotStarted {
    fn profile(message: String) -> Self {
        Self {
            message,
            status: EXIT_NOT_STARTED,
        }
    }
}

/// Runs `seccompd run`: on success the command replaces this process, so this returns only
/// when the command could not be started.
pub fn run(args: RunArgs) -> ExitCode {
    let failure = match start(&args) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    eprintln!("seccompd run: {}", failure.message);
    ExitCode::from(failure.status)
}

fn start(args: &RunArgs) -> Result<std::convert::Infallible, NotStarted> {
    let Some(arch) = native_arch() else {
        return Err(NotStarted::profile(format!(
            "this machine's architecture ({}) is not one seccompd knows",
            std::env::consts::ARCH
        )));
    };
    let program = Program::resolve(&args.command).map_err(|e| NotStarted {
        message: e.to_string(),
        status: e.exit_status(),
    })?;
    let label = args.profile.display().to_string();
    let bytes = super::read_input(&args.profile).map_err(NotStarted::profile)?;
    let verdicts = check_inputs(
        &[(label.clone(), bytes.clone())],
        arch,
        &NodeRuntime::default(),
    );
    let [verdict] = verdicts.as_slice() else {
        return Err(NotStarted::profile(format!(
            "{label}: holds {} documents; run takes one profile",
            verdicts.len()
        )));
    };
    // Warnings concern nodes (what the container runtime needs), not this command: one line
    // says where to read them.
    if !verdict.findings.warnings.is_empty() {
        eprintln!(
            "seccompd run: {}: {} warning(s) for nodes; `seccompd validate {label}` shows them",
            verdict.label,
            verdict.findings.warnings.len()
        );
    }
    if !verdict.findings.is_valid() {
        let errors: Vec<String> = verdict
            .findings
            .errors
            .iter()
            .map(|e| format!("\n  error: {e}"))
            .collect();
        return Err(NotStarted::profile(format!(
            "{}: INVALID, not run:{}",
            verdict.label,
            errors.concat()
        )));
    }
    let profile = self_contained(&label, &bytes).map_err(NotStarted::profile)?;
    // Its warnings are the check's, counted above.
    let (filter, _warnings) =
        build_filter(&profile, arch).map_err(|e| NotStarted::profile(format!("{label}: {e}")))?;
    let failure = exec_filtered(filter, &program);
    Err(NotStarted {
        message: failure.to_string(),
        status: failure.exit_status(),
    })
}

/// The profile of a file that [`check_inputs`] found valid, as the runtime would get it.
fn self_contained(label: &str, bytes: &[u8]) -> Result<OciProfile, String> {
    let mut docs = decode::decode(bytes).map_err(|e| format!("{label}: {e}"))?;
    match docs.pop() {
        Some(Document::Json(profile)) => Ok(decode::to_oci(&profile, "").0),
        Some(Document::Resource(res)) => {
            if let Some(base) = &res.spec.base_profile_name {
                return Err(format!(
                    "{label}: spec.baseProfileName: names {base:?}, which run cannot look up: run the resolved profile (the node's file seccompd/<name>.json) instead"
                ));
            }
            let name = res.name.unwrap_or_default();
            resolve(&name, &res.spec, |_| None).map_err(|e| format!("{label}: {e}"))
        }
        None => Err(format!("{label}: holds no profile")),
    }
}
