//! seccompd and the Security Profiles Operator (SPO) side by side (issue 11): the same
//! workload through each system on the running test cluster, one after the other.
//! `make bench-spo` (hack/bench-spo.sh) deploys and removes SPO around it and calls:
//!
//! ```sh
//! cargo bench --bench vs_spo -- measure --system seccompd|spo --out DIR --node-root node1=/var/lib/kubelet ...
//! cargo bench --bench vs_spo -- report --out DIR
//! ```
//! `measure` runs the workload through the system deployed now and writes DIR/<system>.json
//! after every phase; `report` prints both systems side by side with the ratio per figure
//! and the `vs-spo:` line, and writes them as a results file
//! (`docs/results/vs-spo-<UTC time>.json`, `../shared/results.rs`). Needs root (reads the nodes' kubelet directories and /proc).
//!
//! **The workload.** (1) The two profiles of `../shared/profiles/` and `--generated` more (the
//! first one allowing one more call each) are created one at a time, then updated twice (one
//! more rule each time), then deleted; every change is followed until done before the next
//! one starts: the file with a complete JSON document on every node (create), different bytes
//! on every node (update), no file on any node (delete), and for creates the profile's status
//! saying installed (seccompd: `Installed` on every node; SPO: `Installed`). The first round
//! of updates goes back to back (the next is sent while the system may still be reporting the
//! one before); in the second each update is also followed until the system says it is done
//! with it (seccompd: the status describes the new generation and says `Installed`; SPO, whose
//! status does not follow updates: its `SavedSeccompProfile` Event from every node). The API
//! server's write counters around this phase, over its 4 x P changes, give the writes per
//! change. (2) Three bad profiles: whether the API server takes them, the status each system
//! gives them, and what a pod using one sees. (3) `--bulk` profiles created 8 at a time; the
//! time from the last create to every file on every node and every status installed; the
//! daemons' memory and the objects of the system's API group (and Events about them) per
//! profile then; their deletion. Daemon memory is also read before the workload (idle); CPU
//! seconds cover phases 1 to 3.
//! (4) With `--rejoin`, a new node joining (join.rs): the node is taken down and brought back
//! as a node the cluster never saw, while a pod with Docker's default profile waits for it.
//!
//! Each system gets the shared files the way its users apply them: seccompd's `import`
//! (Docker's conditional rules evaluated for this node), SPO the JSON as it is.

mod figures;
mod join;
mod node;
mod system;
mod watch;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use seccompd_e2e::{apimetrics, cluster, interrupt, procs, results, stats};

use crate::node::Node;
use crate::system::System;
use crate::workload::{Run, Settings};

#[derive(Parser, Debug)]
#[command(about = "seccompd and the Security Profiles Operator side by side")]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the workload through the system deployed now.
    Measure {
        #[arg(long, value_enum)]
        system: System,
        /// Directory of the results.
        #[arg(long)]
        out: PathBuf,
        /// NODE=KUBELET_ROOT as seen from this host, one per node.
        #[arg(long = "node-root", value_parser = parse_pair, required = true)]
        nodes: Vec<(String, PathBuf)>,
        /// NODE=DIR: where the node's /var/lib is on this host (default: /var/lib).
        #[arg(long = "node-var-lib", value_parser = parse_pair)]
        var_libs: Vec<(String, PathBuf)>,
        /// Takes this node down and brings it back as a new node with SCRIPT (hack/node2.sh
        /// down, network, up), timing a pod with a profile there (omitted: not measured).
        #[arg(long)]
        rejoin: Option<String>,
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../hack/node2.sh"))]
        node_script: PathBuf,
        /// The shared profiles.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/profiles"))]
        profiles: PathBuf,
        /// Generated profiles besides the two shared ones (one at a time).
        #[arg(long, default_value_t = 100)]
        generated: usize,
        /// Profiles applied at once (0: no bulk phase).
        #[arg(long, default_value_t = 1000)]
        bulk: usize,
        /// Longest wait for one change (seconds).
        #[arg(long, default_value_t = 60)]
        limit: u64,
        /// Longest wait for a step of the bulk phase (seconds).
        #[arg(long, default_value_t = 300)]
        bulk_limit: u64,
    },
    /// Prints both systems' figures side by side.
    Report {
        #[arg(long)]
        out: PathBuf,
    },
}

/// Prints the side-by-side report of the runs in `out` and writes it as a results file.
fn report(out: &std::path::Path) -> anyhow::Result<()> {
    // The results file is dated by the report: the measured runs came just before it.
    let results = results::ResultsFile::new("vs-spo");
    let report = figures::report(out)?;
    let text = report.lines.join("\n");
    println!("\n{text}");
    let summary = report.lines.last().map_or("", String::as_str);
    let mut figures = results::figures_from_line(summary);
    figures.extend(report.figures);
    let path = results
        .write(figures, summary, &text, &[])
        .map_err(|e| anyhow::anyhow!("writing the results file: {e}"))?;
    println!("results: {}", path.display());
    Ok(())
}

fn parse_pair(s: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NODE=DIR"))?;
    Ok((name.into(), dir.into()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Report { out } => match report(&out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("vs-spo: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Measure {
            system,
            out,
            nodes,
            var_libs,
            rejoin,
            node_script,
            profiles,
            generated,
            bulk,
            limit,
            bulk_limit,
        } => {
            let nodes = nodes
                .into_iter()
                .map(|(name, root)| Node {
                    var_lib: var_libs
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map_or_else(|| "/var/lib".into(), |(_, dir)| dir.clone()),
                    name,
                    root,
                })
                .collect();
            let client = cluster::client().await;
            let mut run = Run::new(
                client,
                Settings {
                    system,
                    nodes,
                    profiles_dir: profiles,
                    generated,
                    bulk,
                    limit: Duration::from_secs(limit),
                    bulk_limit: Duration::from_secs(bulk_limit),
                    out,
                    rejoin: rejoin.map(|node| (node, node_script)),
                },
            );
            let outcome = tokio::select! {
                done = run.run() => done,
                _ = interrupt::interrupted() => Err(anyhow::anyhow!("interrupted")),
            };
            if let Err(e) = &outcome {
                run.figures().failed.get_or_insert_with(|| format!("{e:#}"));
                run.save().ok();
            }
            run.cleanup().await;
            match outcome {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vs-spo ({}): {e:#}", system.name());
                    ExitCode::FAILURE
                }
            }
        }
    }
}
