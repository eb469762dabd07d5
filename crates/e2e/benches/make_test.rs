//! How long `make test` takes from a fresh clone, phase by phase; or, with
//! `-- --k8s-version vX.Y.Z`, whether the cluster tests pass on another Kubernetes release.
//!
//! Default: clones this checkout's HEAD into a temporary directory (beside a link to
//! `../shared`, which the tests read), with no Cargo build directory (so every crate compiles,
//! as in CI), and runs the phases `make test` runs, each as its own `make` target, timing
//! each. `--k8s-version`: in such a clone too (so that editing this checkout meanwhile changes
//! nothing), but building into this checkout's Cargo directory, brings the cluster up on that
//! release (`K8S_VERSION`), runs the cluster tests and takes it down. Either way the cluster phases
//! use the one local cluster: no other may be up on this machine meanwhile. Prints a table
//! with the cluster tests' counts, one `make-test:` (or `cluster-tests:`) line, and writes
//! `docs/results/<that name>-<UTC time>.json` in this checkout.
//!
//! Not part of `make test` (it runs `make test`): `cargo bench -p seccompd-e2e --bench make_test`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use seccompd_e2e::cargo_output::TestCounts;
use seccompd_e2e::repo_root;
use seccompd_e2e::results::{ResultsFile, figures_from_line};

/// The phases of `make test`, in its order (the Makefile's `test` target: its prerequisites,
/// then cluster-up, the cluster tests and cluster-down).
const PHASES: &[&str] = &[
    "deps",
    "lint",
    "unit",
    "check-cases",
    "arm64",
    "cluster-up",
    "integration",
];

/// The phases that need the cluster (all that `--k8s-version` runs).
const CLUSTER_PHASES: &[&str] = &["cluster-up", "integration"];

/// The phase whose test counts the report gives.
const COUNTED: &str = "integration";

/// Taken down whatever happened before, as `make test` does.
const TEARDOWN: &str = "cluster-down";

/// The cluster tests that need MutatingAdmissionPolicy v1 (Kubernetes 1.36 or later, as the
/// README says of SeccompProfileBinding): a run on an older release leaves them out by this
/// filter, and its report and results file say so.
const NEEDS_1_36: &str = "binding::";

/// The cluster-test filter for `k8s_version` (`vX.Y.Z`): what the release cannot run.
fn left_out_on(k8s_version: &str) -> Result<Option<&'static str>> {
    let minor: u32 = k8s_version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("--k8s-version {k8s_version}: expected vX.Y.Z"))?;
    Ok((minor < 36).then_some(NEEDS_1_36))
}

/// How a fault test's figure line starts (`fault NAME: key=value ...`, tests/cluster/fault_*.rs):
/// the report lists these lines and the results file keeps their figures as
/// `fault_<NAME>_<key>`, which the docs' table of faults quotes.
const FAULT_LINE: &str = "fault ";

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("make_test: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether every phase passed.
fn run() -> Result<bool> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let k8s_version = args
        .iter()
        .position(|a| a == "--k8s-version")
        .map(|i| {
            args.get(i + 1)
                .cloned()
                .context("--k8s-version needs a release, e.g. v1.35.4")
        })
        .transpose()?;
    let (results, phases) = match &k8s_version {
        Some(_) => (ResultsFile::new("cluster-tests"), CLUSTER_PHASES),
        None => (ResultsFile::new("make-test"), PHASES),
    };
    let repo = repo_root();
    // The fresh clone lives as long as this guard.
    let work = tempfile::tempdir().context("a temporary directory for the clone")?;
    let left_out = match &k8s_version {
        Some(v) => left_out_on(v)?,
        None => None,
    };
    let runner = Runner {
        checkout: fresh_clone(&repo, work.path())?,
        k8s_version: k8s_version.clone(),
        warm_target: repo.join("target"),
        left_out,
    };

    let mut timed: Vec<(&str, f64, bool)> = Vec::new();
    let mut counts = TestCounts::default();
    let mut fault_lines = Vec::new();
    let mut passed = true;
    for phase in phases {
        let (seconds, ok, phase_counts, phase_faults) = runner.make(phase)?;
        if *phase == COUNTED {
            counts = phase_counts;
            fault_lines = phase_faults;
        }
        timed.push((phase, seconds, ok));
        if !ok {
            passed = false;
            break;
        }
    }
    // After cluster-up started, whatever it left is taken down (make test does the same).
    if timed.iter().any(|(p, _, _)| *p == "cluster-up") {
        let (seconds, ok, _, _) = runner.make(TEARDOWN)?;
        timed.push((TEARDOWN, seconds, ok));
        passed &= ok;
    }

    let total: f64 = timed.iter().map(|(_, s, _)| s).sum();
    let mut report = String::new();
    let mut summary = match &k8s_version {
        Some(v) => format!("cluster-tests: k8s_version={v} passed={passed}"),
        None => format!("make-test: passed={passed}"),
    };
    summary.push_str(&format!(
        " tests_passed={} tests_failed={} total_s={total:.0}",
        counts.passed, counts.failed
    ));
    if let Some(v) = &k8s_version {
        report.push_str(&format!("Kubernetes {v}\n"));
    }
    if let Some(filter) = left_out {
        summary.push_str(&format!(" left_out={filter}"));
        report.push_str(&format!(
            "left out: the cluster tests matching `{filter}` (they need Kubernetes 1.36 or later)\n"
        ));
    }
    report.push_str("phase          time     result\n");
    for (phase, seconds, ok) in &timed {
        report.push_str(&format!(
            "{phase:<14} {:>6.0} s  {}\n",
            seconds,
            if *ok { "ok" } else { "FAILED" }
        ));
        summary.push_str(&format!(" {}_s={seconds:.0}", phase.replace('-', "_")));
    }
    report.push_str(&format!(
        "{:<14} {total:>6.0} s  {}\ncluster tests: {} passed, {} failed\n",
        "total",
        if passed { "passed" } else { "FAILED" },
        counts.passed,
        counts.failed
    ));
    let mut figures = figures_from_line(&summary);
    if !fault_lines.is_empty() {
        report.push_str("fault tests:\n");
    }
    for line in &fault_lines {
        report.push_str(&format!("  {line}\n"));
        if let Some((name, rest)) = line
            .strip_prefix(FAULT_LINE)
            .and_then(|l| l.split_once(':'))
        {
            let prefix = format!("fault_{}_", name.replace('-', "_"));
            for (key, value) in figures_from_line(rest) {
                figures.insert(format!("{prefix}{key}"), value);
            }
        }
    }
    println!("\n{report}\n{summary}");
    let path = results
        .write(figures, &summary, &report, &[])
        .context("write the results file")?;
    println!("results: {}", path.display());
    Ok(passed)
}

/// Clones `repo`'s HEAD into `dir/seccompd`, beside a link `dir/shared` to the `shared`
/// directory beside `repo` (the tests read `../shared`).
fn fresh_clone(repo: &Path, dir: &Path) -> Result<PathBuf> {
    let clone = dir.join("seccompd");
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(repo)
        .arg(&clone)
        .status()
        .context("git clone")?;
    if !status.success() {
        bail!("git clone {} failed: {status}", repo.display());
    }
    if let Some(shared) = repo.parent().map(|p| p.join("shared")) {
        std::os::unix::fs::symlink(&shared, dir.join("shared"))
            .with_context(|| format!("link {}", shared.display()))?;
    }
    Ok(clone)
}

/// Runs make targets in one checkout.
struct Runner {
    checkout: PathBuf,
    /// `K8S_VERSION` for the cluster phases; None: the pinned release, and a cold build.
    k8s_version: Option<String>,
    /// The Cargo directory a run with `k8s_version` builds into (only the clone's own
    /// crates compile again).
    warm_target: PathBuf,
    /// The cluster tests left out (`--skip`), if any.
    left_out: Option<&'static str>,
}

impl Runner {
    /// Runs `make <target>`, its output passed through (and read for test counts); its time
    /// in seconds, whether it passed, the counts of its cargo tests and the fault tests'
    /// figure lines it printed.
    fn make(&self, target: &str) -> Result<(f64, bool, TestCounts, Vec<String>)> {
        eprintln!("make_test: make {target}");
        let started = Instant::now();
        let mut command = Command::new("make");
        command
            .arg(target)
            .current_dir(&self.checkout)
            .env_remove("SECCOMPD_KUBECONFIG")
            .env_remove("SECCOMPD_AGENT_BIN")
            .stdout(Stdio::piped());
        if let Some(filter) = self.left_out {
            command.env("CLUSTER_TEST_ARGS", format!("--skip {filter}"));
        }
        if let Some(v) = &self.k8s_version {
            command.env("K8S_VERSION", v);
            if std::env::var_os("CARGO_TARGET_DIR").is_none() {
                command.env("CARGO_TARGET_DIR", &self.warm_target);
            }
        } else {
            // The clone's own target/, empty: what a fresh clone compiles.
            command
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("K8S_VERSION");
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("run make {target}"))?;
        let mut counts = TestCounts::default();
        let mut fault_lines = Vec::new();
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line.context("read make's output")?;
                println!("{line}");
                counts.add(&line);
                if line.starts_with(FAULT_LINE) {
                    fault_lines.push(line);
                }
            }
        }
        let status = child
            .wait()
            .with_context(|| format!("wait for make {target}"))?;
        Ok((
            started.elapsed().as_secs_f64(),
            status.success(),
            counts,
            fault_lines,
        ))
    }
}
