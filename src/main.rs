//! The `seccompd` executable: the controller, the recorder and the commands for users (the node
//! agent is `seccompd-agent`, src/bin/seccompd-agent.rs). Parses the command line and hands over
//! to the crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use seccompd::run_async;

/// Installs SeccompProfile objects as seccomp profile files on every Kubernetes node.
#[derive(Parser)]
#[command(name = "seccompd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML (what crds/ holds).
    Crd,
    /// Run the recorder (as its opt-in DaemonSet does): records the calls of the pods that
    /// SeccompProfileRecordings select on this node, from the kernel's audit records.
    Recorder(seccompd_recorder::RecorderArgs),
    /// Run the controller (as its Deployment does): the elected replica writes statuses.
    Controller(seccompd_controller::ControllerArgs),
    /// Check seccomp profiles offline (exit 0 valid, 1 invalid, 2 bad usage).
    Validate(seccompd_cli::validate::ValidateArgs),
    /// Convert an OCI/Docker JSON profile into a SeccompProfile (YAML on stdout).
    Import(seccompd_cli::import::ImportArgs),
    /// Run a command on this machine under a seccomp profile.
    ///
    /// The command's exit status passes through; 125 when it could not be started.
    Run(seccompd_cli::run::RunArgs),
    /// Run a command and write a SeccompProfile allowing the system calls it made.
    ///
    /// Records the calls of the command and of all its threads and descendants. The command's
    /// exit status passes through; 125 when it could not be started.
    Record(seccompd_cli::record::RecordArgs),
    /// Print an Audit SeccompProfile with the calls it would have denied allowed (from its
    /// status.denials), for review; --apply writes it.
    AllowDenied(seccompd_cli::allow_denied::AllowDeniedArgs),
    /// Started by `record`: runs the command under the recording filter.
    #[command(name = seccompd_cli::host::recorder::HELPER_SUBCOMMAND, hide = true)]
    RecordExec(seccompd_cli::record::RecordExecArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match seccompd_api::crd::all_crds_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("seccompd crd: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Controller(args) => run_async(seccompd_controller::run(args)),
        Command::Recorder(args) => run_async(seccompd_recorder::run(args)),
        Command::Validate(args) => seccompd_cli::validate::run(args),
        Command::Import(args) => seccompd_cli::import::run(args),
        Command::Run(args) => seccompd_cli::run::run(args),
        Command::Record(args) => seccompd_cli::record::run(args),
        Command::RecordExec(args) => seccompd_cli::record::run_helper(args),
        Command::AllowDenied(args) => run_async(seccompd_cli::allow_denied::run(args)),
    }
}
