//! The `seccompd-agent` executable: the node agent alone, as the DaemonSet runs it.
//!
//! It is apart from `seccompd` (the controller, the recorder and the commands for users)
//! because an agent runs, privileged, on every node: an executable without the other roles'
//! code maps about a quarter less code (resident memory on every node, docs/scale.md) and carries
//! nothing the agent does not run.

use std::process::ExitCode;

use clap::Parser;

/// The seccompd node agent: installs every SeccompProfile as a file under this node's
/// kubelet root and reports what it installed.
#[derive(Parser)]
#[command(name = "seccompd-agent", version, about)]
struct Cli {
    #[command(flatten)]
    agent: seccompd_agent::AgentArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    seccompd::run_async(seccompd_agent::run(cli.agent, release_freed_heap))
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
