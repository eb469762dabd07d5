//! How long `make test` takes from a fresh clone, phase by phase.
//!
//! Clones this checkout's HEAD into a temporary directory (beside a link to `../shared`, which
//! the tests read), with no Cargo build directory (so every crate compiles, as in CI), and
//! runs the phases `make test` runs, each as its own `make` target, timing each. The cluster
//! phases bring up and take down the same local cluster as `make test`: no other cluster may
//! be up on this machine meanwhile. Prints a table, one `make-test:` line, and writes
//! `docs/results/make-test-<UTC time>.json` in this checkout.
//!
//! Not part of `make test` (it runs `make test`): `cargo bench -p seccompd-e2e --bench make_test`.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};
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

/// Taken down whatever happened before, as `make test` does.
const TEARDOWN: &str = "cluster-down";

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
    let results = ResultsFile::new("make-test");
    let repo = repo_root();
    let work = tempfile::tempdir().context("a temporary directory for the clone")?;
    let clone = work.path().join("seccompd");
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(&repo)
        .arg(&clone)
        .status()
        .context("git clone")?;
    if !status.success() {
        bail!("git clone {} failed: {status}", repo.display());
    }
    if let Some(shared) = repo.parent().map(|p| p.join("shared")) {
        std::os::unix::fs::symlink(&shared, work.path().join("shared"))
            .with_context(|| format!("link {}", shared.display()))?;
    }

    let mut timed: Vec<(&str, f64, bool)> = Vec::new();
    let mut passed = true;
    for phase in PHASES {
        let (seconds, ok) = make(&clone, phase)?;
        timed.push((phase, seconds, ok));
        if !ok {
            passed = false;
            break;
        }
    }
    // After cluster-up started, whatever it left is taken down (make test does the same).
    if timed.iter().any(|(p, _, _)| *p == "cluster-up") {
        let (seconds, ok) = make(&clone, TEARDOWN)?;
        timed.push((TEARDOWN, seconds, ok));
        passed &= ok;
    }

    let total: f64 = timed.iter().map(|(_, s, _)| s).sum();
    let mut report = String::from("phase          time     result\n");
    let mut summary = format!("make-test: passed={passed} total_s={total:.0}");
    for (phase, seconds, ok) in &timed {
        report.push_str(&format!(
            "{phase:<14} {:>6.0} s  {}\n",
            seconds,
            if *ok { "ok" } else { "FAILED" }
        ));
        summary.push_str(&format!(" {}_s={seconds:.0}", phase.replace('-', "_")));
    }
    report.push_str(&format!(
        "{:<14} {total:>6.0} s  {}\n",
        "total",
        if passed { "passed" } else { "FAILED" }
    ));
    println!("\n{report}\n{summary}");
    let path = results
        .write(figures_from_line(&summary), &summary, &report, &[])
        .context("write the results file")?;
    println!("results: {}", path.display());
    Ok(passed)
}

/// Runs `make <target>` in `clone` with a cold build directory; its time in seconds and whether
/// it passed.
fn make(clone: &Path, target: &str) -> Result<(f64, bool)> {
    eprintln!("make_test: make {target}");
    let started = Instant::now();
    let status = Command::new("make")
        .arg(target)
        .current_dir(clone)
        // The clone's own target/, empty: what a fresh clone compiles.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("SECCOMPD_KUBECONFIG")
        .env_remove("SECCOMPD_BIN")
        .status()
        .with_context(|| format!("run make {target}"))?;
    Ok((started.elapsed().as_secs_f64(), status.success()))
}
