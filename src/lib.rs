//! What the `seccompd` and `seccompd-agent` executables share: the async runtime they run a
//! daemon on.

use std::process::ExitCode;

/// Runs an async entry point on a small runtime; two worker threads are plenty for one node.
///
/// `fut` runs on this thread, not on a worker: the agent's loop does its passes (file I/O and
/// the libseccomp check, up to seconds for a profile at the size bound) right there, so a long
/// pass never holds up the watches, the health endpoint or reporting, which are spawned tasks.
pub fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
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
