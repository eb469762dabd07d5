//! Scale benchmark (issue 12, sections 3 and 4): N simulated nodes against the real control
//! plane of the test cluster (`make cluster-up`), next to its real nodes. Prints figures,
//! asserts nothing about them.
//!
//! ```sh
//! cargo bench --bench scale -- --nodes N --profiles P   # one run
//! cargo bench --bench scale -- --sweep --profiles P     # N = 1 to 500: table, plots, projection
//! cargo bench --bench scale -- --bulk --nodes 1 --profiles 1000   # section 4
//! cargo bench --bench scale -- --floor --nodes 100 --profiles 1000 # issue 21: a floor
//! ```
//! Needs root (it runs processes that write under /tmp, reads other processes' /proc, may raise
//! `fs.inotify.max_user_instances`) and the cluster's admin kubeconfig
//! (`SECCOMPD_KUBECONFIG`, default `.cluster/kubeconfig`) and kubectl (`SECCOMPD_KUBECTL`,
//! default `.cluster/bin/kubectl`). The agent is this checkout's release build
//! (`target/release/seccompd-agent`, which the bench has cargo bring up to date) unless `--agent
//! PATH` or `SECCOMPD_AGENT_BIN` says otherwise. Each run writes its results file
//! (`docs/results/scale[-sweep|-bulk|-floor]-<UTC time>.json`, `crates/e2e/src/results.rs`); a sweep
//! draws its plots into a directory of the same name. After its table a sweep fits `a + b·N` by
//! least squares to each figure that grows by about as much with every node (`projected` in
//! `figures.rs`) and prints the fit and its value at N = 5,000; its `scale-projection:` line
//! keeps them in the results file (docs/scale.md, "Projection to 5,000 nodes").
//!
//! **A simulated node** is a Node object created through the API and a real `seccompd-agent`
//! process on the host with that node name, a kubelet root of its own under /tmp, its own
//! health port. The status writer is the controller replica (`seccompd controller`) that
//! holds the Lease. Nothing else runs behind the Node: no kubelet, no containers.
//!
//! **A run** creates P profiles one at a time, then updates each, then deletes each; every
//! change is followed until it is done (the file with the exact rendered bytes in every
//! simulated node's directory; the status `Installed n/n` with n = N + the real nodes, at the
//! change's generation) before the next starts, so that its latency is its own and the API
//! server's counters between two quiet points hold exactly the traffic of those changes.
//! Between the update and delete phases every simulated agent is stopped with SIGSTOP, one
//! profile is changed, and the largest status seen until the real nodes have it is recorded
//! (then SIGCONT). The traffic figures come from the differences of the API server's
//! `apiserver_request_total`, `apiserver_watch_events_total`, `apiserver_watch_events_sizes` and
//! `apiserver_request_body_size_bytes`; "writes" and "watch" figures count seccompd.dev
//! resources only, because the rest is the control plane's own background (printed in the
//! by-verb table, which is all of it). The bench's own watch on its profiles is one of the N+3
//! watchers of SeccompProfiles: the events it received are taken out (their bytes as
//! re-serialized JSON, near what the server sent).
//!
//! **The DaemonSet and fake Nodes.** The agent's DaemonSet tolerates every taint and selects
//! only `kubernetes.io/os: linux`, which the simulated Nodes carry (the status counts only the
//! nodes the DaemonSet selects), so it wants a pod on every simulated Node, and nothing can stop it without
//! changing the deployed DaemonSet (which would restart the real agents). Left alone this
//! happens: the DaemonSet controller creates N pods; without capacity on the Node the
//! scheduler could not bind them and would retry them on every Node event, writing
//! `FailedScheduling` events throughout the run; and 60 s after registration the node
//! lifecycle controller finds that no kubelet ever posted a status, writes every Node's
//! conditions, swaps its taints and queues it for tainting. All of that is control-plane work
//! unrelated to seccompd, landing in the middle of the measurements on a two-core machine. So
//! the bench registers each Node the way a node whose kubelet has gone silent looks: every
//! condition `Unknown`, tainted `node.kubernetes.io/unreachable:NoSchedule`, with capacity.
//! The DaemonSet's pods are then bound at once and stay Pending (no kubelet ever runs them;
//! they tolerate every taint, so nothing evicts them), the node lifecycle controller has no
//! condition to change, and the Nodes carry the label `node.kubernetes.io/exclude-disruption`
//! so that hundreds of silent nodes do not put the real nodes' zone into "partial
//! disruption". Before measuring, the bench waits until every DaemonSet pod is bound, the
//! `not-ready` taint the API server adds at registration has been replaced and the node lifecycle controller has
//! registered every Node (its `RegisteredNode` event). What remains is that controller's
//! rate-limited NoExecute pass, which taints one silent Node every 10 s: a trickle visible
//! as `GET`/`PATCH nodes` in the by-verb table. Real DaemonSet pods for the simulated agents were not an option: the node's
//! kubelet is the thing being simulated away.
//!
//! **A floor run** (`--floor`, `floor.rs`) applies the P profiles at once as `--bulk` does,
//! waits until all are Installed, then creates one SeccompFloor (socket(AF_ALG) -> EPERM) and
//! follows it until every profile file on every simulated node holds the exact rendering with
//! it merged and its status says `Installed n/n`, then deletes it and follows that until every
//! file is as before; for both it prints the report applies per node and the other writes
//! between quiet points, and each simulated agent's sync passes. A floor reaches every profile
//! in the cluster and the real nodes' files too, only for the run.
//!
//! **Clean-up**, also on failure, panic and Ctrl-C/SIGTERM: the agents are killed, the
//! bench's SeccompFloor, SeccompProfiles and Nodes (label `seccompd.dev/scale-bench`) deleted, the
//! DaemonSet's pods on those Nodes force-deleted, their reports deleted, the directories
//! removed and the inotify limit restored. A run killed with SIGKILL leaves a state file
//! (`/run/seccompd-scale-bench.state`) from which the next run removes the same things first.

mod bulk;
mod figures;
mod fleet;
mod floor;
mod plot;
mod profiles;
mod run;
mod tracker;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use futures::FutureExt as _;
use kube::Client;
use seccompd_e2e::{
    agent_binary, apimetrics, cluster, interrupt, procs, projection, results, stats,
};

use crate::figures::{FIGURES, sweep_projection, sweep_table};
use crate::fleet::Fleet;
use crate::results::{ResultsFile, figures_from_line};

/// The node counts of `--sweep`.
const SWEEP: [usize; 5] = [1, 50, 100, 200, 500];

#[derive(Parser, Debug)]
#[command(about = "seccompd scale benchmark against the test cluster")]
struct Args {
    /// Simulated nodes.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Profiles created, updated and deleted (or applied at once with --bulk).
    #[arg(long, default_value_t = 10)]
    profiles: usize,
    /// One run for each N of 1, 50, 100, 200, 500 (ignores --nodes); prints a table, draws
    /// a plot per figure and projects the per-node costs to N = 5,000 (a + b·N, least squares).
    #[arg(long, conflicts_with = "bulk")]
    sweep: bool,
    /// Section 4: apply all profiles at once, then cold start and idle memory.
    #[arg(long)]
    bulk: bool,
    /// Issue 21: apply all profiles at once, then one SeccompFloor and its deletion: the
    /// time to every file carrying it, and the writes per node.
    #[arg(long, conflicts_with_all = ["sweep", "bulk"])]
    floor: bool,
    /// The agent executable the simulated agents run (default: the release build, see above).
    #[arg(long)]
    agent: Option<PathBuf>,
    /// Where --sweep draws its pictures (default: beside its results file, in a directory
    /// named like it).
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let agent = match args.agent.clone().map_or_else(agent_binary, Ok) {
        Ok(agent) => agent,
        Err(e) => {
            eprintln!("scale: no agent executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = cluster::client().await;
    let kubeconfig = cluster::kubeconfig_path();
    let mut fleet = match Fleet::new(client.clone(), agent.clone(), kubeconfig).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("scale: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("scale: agent binary {}", agent.display());
    let outcome = {
        let work = AssertUnwindSafe(bench(&args, &agent, &client, &mut fleet)).catch_unwind();
        tokio::select! {
            done = work => match done {
                Ok(result) => result,
                Err(_) => Err(anyhow::anyhow!("the bench panicked")),
            },
            _ = interrupt::interrupted() => Err(anyhow::anyhow!("interrupted")),
        }
    };
    fleet.cleanup().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(
    args: &Args,
    agent: &Path,
    client: &Client,
    fleet: &mut Fleet,
) -> anyhow::Result<()> {
    let agent = agent.display().to_string();
    if args.profiles == 0 || (args.nodes == 0 && !args.sweep) {
        anyhow::bail!("--nodes and --profiles must be at least 1");
    }
    if args.bulk || args.floor {
        let results = ResultsFile::new(if args.floor {
            "scale-floor"
        } else {
            "scale-bulk"
        });
        let kubectl = kubectl_command();
        let lines = if args.floor {
            floor::run(client, fleet, &kubectl, args.nodes, args.profiles)
                .await?
                .report()
        } else {
            bulk::run(client, fleet, &kubectl, args.nodes, args.profiles).await?
        };
        let report = lines.join("\n");
        println!("\n{report}");
        let summary = lines.last().map_or("", String::as_str);
        return save(&results, figures_from_line(summary), summary, &report, &[]);
    }
    if !args.sweep {
        let results = ResultsFile::new("scale");
        let fig = run::run(client, fleet, args.nodes, args.profiles).await?;
        let report = fig.report(&agent);
        println!("\n{report}");
        let summary = fig.line();
        return save(
            &results,
            figures_from_line(&summary),
            &summary,
            &report,
            &[],
        );
    }
    let results = ResultsFile::new("scale-sweep");
    let mut runs = Vec::new();
    for nodes in SWEEP {
        let fig = run::run(client, fleet, nodes, args.profiles).await?;
        println!("\n{}", fig.report(&agent));
        runs.push(fig);
    }
    let table = sweep_table(&runs);
    let (projection, projection_line) = sweep_projection(&runs);
    println!("\n{table}\n\n{projection}\n{projection_line}");
    let plots = args
        .plots
        .clone()
        .unwrap_or_else(|| results.dir().join(results.stem()));
    let drawn = plot::draw_all(&plots, &runs)?;
    for path in &drawn {
        println!("drew {}", path.display());
    }
    // Every figure of every run, as `<figure key>@N=<nodes>`.
    let mut figures = serde_json::Map::new();
    for run in &runs {
        for f in FIGURES {
            let key = format!("{}@N={}", f.key, run.nodes);
            figures.insert(key, serde_json::json!((f.value)(run)));
        }
    }
    // The projection's fits and values under their own keys (`fit_<key>_a`, `proj5000_<key>`).
    figures.extend(figures_from_line(&projection_line));
    let mut summary: Vec<String> = runs.iter().map(|r| r.line()).collect();
    summary.push(projection_line);
    let report = format!("{table}\n\n{projection}");
    save(&results, figures, &summary.join("\n"), &report, &drawn)
}

/// Writes the run's results file and says where.
fn save(
    results: &ResultsFile,
    figures: serde_json::Map<String, serde_json::Value>,
    summary: &str,
    report: &str,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let path = results
        .write(figures, summary, report, files)
        .map_err(|e| anyhow::anyhow!("writing the results file: {e}"))?;
    println!("results: {}", path.display());
    Ok(())
}

/// kubectl with the admin kubeconfig.
fn kubectl_command() -> Vec<String> {
    let bin = std::env::var("SECCOMPD_KUBECTL").unwrap_or_else(|_| {
        cluster::repo_path(".cluster/bin/kubectl")
            .to_string_lossy()
            .into_owned()
    });
    vec![
        bin,
        "--kubeconfig".into(),
        cluster::kubeconfig_path().to_string_lossy().into_owned(),
    ]
}
