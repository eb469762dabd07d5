//! The `seccompd` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Run the node agent (as the DaemonSet does).
    Agent(seccompd_agent::AgentArgs),
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
        Command::Agent(args) => run_async(seccompd_agent::run(args, release_freed_heap)),
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

/// The agent's [`seccompd_agent::run::ReleaseFreedHeap`]: `malloc_trim(0)` hands every whole
/// free page in every glibc arena back to the kernel (not only the top of the heap, which is
/// all that glibc's own trimming and its tunables reach; they left the agent's resident memory
/// at its peak, docs/scale.md).
fn release_freed_heap() {
    // SAFETY: malloc_trim takes no pointers and only walks the allocator's own free lists,
    // under the allocator's locks; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs an async entry point on a small runtime; two worker threads are plenty for one node.
///
/// `fut` runs on this thread, not on a worker: the agent's loop does its passes (file I/O and
/// the libseccomp check, up to seconds for a profile at the size bound) right there, so a long
/// pass never holds up the watches, the health endpoint or reporting, which are spawned tasks.
fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("seccompd: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("seccompd: {err:#}");
            ExitCode::FAILURE
        }
    }
}
