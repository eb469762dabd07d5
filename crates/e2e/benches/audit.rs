//! Benchmark: what an Audit profile costs a workload that keeps making calls it would deny,
//! and what the recorder makes of the kernel's records, at 1,000, 10,000 and 100,000 calls per
//! second. Runs against the test cluster (`make cluster-up`) as root on node1 (node2 of the
//! local cluster hears no audit records); prints figures, asserts nothing.
//!
//! `cargo bench -p seccompd-e2e --bench audit [-- --rates 1000,10000,100000 --seconds 60]`
//!
//! It deploys the recorder (removed again at the end), creates a profile that allows every
//! call but getppid, in Audit mode, and two sleeping pods on node1: one under that profile and
//! one `Unconfined`. Into both it copies `tests/programs/callrate.c` (compiled static here), a
//! CPU-bound job that also calls getppid RATE times a second; for each rate it runs the job in
//! the unconfined pod and then in the audited one (`kubectl exec`: the process runs under its
//! container's filter) and reports:
//! - the workload's slowdown: how many fewer work units the audited job finished than the
//!   unconfined one in the same time, and the mean and longest getppid call in each;
//! - records: calls made, calls the recorder counted for the profile
//!   (`seccompd_recorder_denials_total`), the difference (lost), and the recorder's own lost
//!   records by cause and the kernel's `audit_lost`, with the highest backlog of the kernel's
//!   audit queue seen meanwhile (sampled with AUDIT_GET);
//! - the recorder on node1: CPU (percent of one core over the run) and peak resident memory;
//! - API writes per minute to SeccompDenialReports and Events, from the API server's counters,
//!   over the run and until the recorder has reported everything it counted.
//!
//! Ends with one `audit:` line and writes a results file (`docs/results/audit-*.json`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use kube::Client;
use seccompd_e2e::apimetrics::{Resource, Scrape};
use seccompd_e2e::cluster::recorder::{Recorder, recorder_metric, recorder_metrics, recorder_pod};
use seccompd_e2e::cluster::{self, kubectl, kubectl_ok, repo_path, unique};
use seccompd_e2e::lifecycle::{self, create_pod, sleeper, wait_running, wait_status};
use seccompd_e2e::procs::{Sampler, pod_process_pid};
use seccompd_e2e::results::{ResultsFile, figures_from_line};
use seccompd_profile::limits::DENIAL_REPORT_INTERVAL;
use seccompd_profile::model::Mode;
use seccompd_recorder::audit_socket::{AuditStatus, audit_status};
use serde::Deserialize;
use serde_json::json;
use tokio_util::task::AbortOnDropHandle;

/// The call the profile denies and the job makes.
const CALL: &str = "getppid";
/// The node whose kernel records reach its recorder.
const NODE: &str = "node1";
/// How long to wait for the profile, the pods and the recorder to settle.
const WAIT: Duration = Duration::from_secs(180);

/// What `callrate` prints.
#[derive(Debug, Deserialize)]
struct Job {
    calls: u64,
    work_units: u64,
    call_ns: u64,
    max_call_ns: u64,
}

impl Job {
    fn mean_call_us(&self) -> f64 {
        self.call_ns as f64 / self.calls.max(1) as f64 / 1000.0
    }
}

/// The figures of one rate.
struct RateRun {
    rate: u64,
    unconfined: Job,
    audited: Job,
    /// Calls the recorder counted for the profile.
    counted: u64,
    /// The recorder's own lost records over the run, by cause.
    recorder_lost: BTreeMap<String, f64>,
    /// The kernel's `audit_lost` over the run.
    kernel_lost: u64,
    /// The highest backlog of the kernel's audit queue seen.
    backlog_peak: u32,
    recorder_cpu_pct: f64,
    recorder_rss_peak_kib: u64,
    report_writes_per_min: f64,
    event_writes_per_min: f64,
}

impl RateRun {
    fn slowdown_pct(&self) -> f64 {
        100.0 * (1.0 - self.audited.work_units as f64 / self.unconfined.work_units.max(1) as f64)
    }

    fn lost(&self) -> u64 {
        self.audited.calls.saturating_sub(self.counted)
    }

    fn recorder_lost_total(&self) -> f64 {
        self.recorder_lost.values().sum()
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let (rates, seconds) = args()?;
    let results = ResultsFile::new("audit");
    let client = cluster::client().await;
    let binary = callrate()?;

    let _recorder = Recorder::deploy();
    let profile = unique("audit-bench");
    let _cleanup = Cleanup(vec![vec![
        "delete".into(),
        "seccompprofile".into(),
        profile.clone(),
        "--ignore-not-found".into(),
    ]]);
    let mut spec = lifecycle::denylist(&[CALL]);
    spec.mode = Mode::Audit;
    lifecycle::create_profile(&client, &profile, &spec).await;
    wait_status(&profile, "Installed", "2/2", WAIT).await;

    let audited = unique("audited");
    let unconfined = unique("unconfined");
    let _pods = Cleanup(
        [&audited, &unconfined]
            .iter()
            .map(|p| {
                [
                    "delete",
                    "pod",
                    "-n",
                    "default",
                    p,
                    "--grace-period=0",
                    "--ignore-not-found",
                ]
                .map(String::from)
                .to_vec()
            })
            .collect(),
    );
    create_pod(
        &client,
        &sleeper(&audited, Some(&format!("seccompd/{profile}.json")), None),
    )
    .await;
    let mut open = sleeper(&unconfined, None, None);
    if let Some(spec) = open.spec.as_mut() {
        spec.security_context = Some(serde_json::from_value(
            json!({"seccompProfile": {"type": "Unconfined"}}),
        )?);
    }
    create_pod(&client, &open).await;
    for pod in [&audited, &unconfined] {
        wait_running(&client, pod).await;
        kubectl_ok(&[
            "cp",
            binary.to_str().context("utf-8 path")?,
            &format!("default/{pod}:/callrate"),
        ]);
    }
    let recorder_pid = pod_process_pid(&recorder_pod(NODE).1)
        .context("the recorder's process on node1 (run as root on the node)")?;
    let kernel = audit_status().context("the kernel's audit status (needs root)")?;

    let mut runs = Vec::new();
    for &rate in &rates {
        eprintln!("audit: {rate} calls/s for {seconds} s, unconfined then audited");
        let unconfined_job = run_job(&unconfined, rate, seconds)?;
        runs.push(
            audited_run(
                &client,
                &profile,
                &audited,
                rate,
                seconds,
                recorder_pid,
                unconfined_job,
            )
            .await?,
        );
    }
    let (report, summary) = print(&runs, seconds, &kernel);
    println!("{report}");
    println!("{summary}");
    let path = results.write(figures_from_line(&summary), &summary, &report, &[])?;
    println!("results: {}", path.display());
    Ok(())
}

/// `--rates A,B,C` and `--seconds S`.
fn args() -> Result<(Vec<u64>, u64)> {
    let mut rates = vec![1_000, 10_000, 100_000];
    let mut seconds = 60;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rates" => {
                rates = args
                    .next()
                    .context("--rates needs a list, e.g. 1000,10000")?
                    .split(',')
                    .map(|r| {
                        r.parse()
                            .context("a rate is a whole number of calls per second")
                    })
                    .collect::<Result<_>>()?;
            }
            "--seconds" => {
                seconds = args
                    .next()
                    .context("--seconds needs a number")?
                    .parse()
                    .context("--seconds is a whole number")?;
            }
            // cargo bench passes --bench.
            "--bench" => {}
            other => bail!("unknown argument {other:?} (--rates A,B,C --seconds S)"),
        }
    }
    Ok((rates, seconds))
}

/// `tests/programs/callrate.c`, compiled static (the test image has no C library).
fn callrate() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(unique("callrate"));
    std::fs::create_dir_all(&dir)?;
    let binary = dir.join("callrate");
    let source = repo_path("tests/programs/callrate.c");
    let status = Command::new("cc")
        .args(["-O2", "-static", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .context("running cc (Debian: gcc, libc6-dev)")?;
    if !status.success() {
        bail!("cc failed on {}", source.display());
    }
    Ok(binary)
}

/// Runs the job in `pod` and reads what it printed.
fn run_job(pod: &str, rate: u64, seconds: u64) -> Result<Job> {
    let out = kubectl_ok(&[
        "exec",
        "-n",
        "default",
        pod,
        "--",
        "/callrate",
        &rate.to_string(),
        &seconds.to_string(),
    ]);
    serde_json::from_str(out.trim()).with_context(|| format!("callrate's output: {out:?}"))
}

/// The recorder's count for the profile and its lost records by cause.
fn recorder_counts(profile: &str) -> (u64, BTreeMap<String, f64>) {
    let metrics = recorder_metrics(NODE);
    let series = format!(
        "seccompd_recorder_denials_total{{profile=\"{profile}\",syscall=\"{CALL}\",action=\"SCMP_ACT_LOG\"}}"
    );
    let counted = metrics.get(&series).copied().unwrap_or(0.0) as u64;
    let lost = metrics
        .iter()
        .filter_map(|(k, v)| {
            let cause = k
                .strip_prefix("seccompd_recorder_records_lost_total{cause=\"")?
                .strip_suffix("\"}")?;
            Some((cause.to_string(), *v))
        })
        .collect();
    (counted, lost)
}

/// The report writes of the recorder on the workload's node (its own counter: the goal is per
/// node, and the API server counts every node's writes together).
fn own_report_writes() -> f64 {
    recorder_metric(NODE, "seccompd_recorder_denial_report_writes_total").unwrap_or(0.0)
}

/// Samples the kernel's audit backlog every 50 ms; the highest seen.
fn backlog_sampler() -> (Arc<AtomicU32>, AbortOnDropHandle<()>) {
    let peak = Arc::new(AtomicU32::new(0));
    let shared = peak.clone();
    let task = tokio::spawn(async move {
        loop {
            if let Ok(s) = audit_status() {
                shared.fetch_max(s.backlog, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (peak, AbortOnDropHandle::new(task))
}

/// One rate under the Audit profile, with what it cost the recorder and the API server.
async fn audited_run(
    client: &Client,
    profile: &str,
    pod: &str,
    rate: u64,
    seconds: u64,
    recorder_pid: u32,
    unconfined: Job,
) -> Result<RateRun> {
    let (counted_before, lost_before) = recorder_counts(profile);
    let kernel_before = audit_status()?.lost;
    let reports_before = own_report_writes();
    let api_before = Scrape::read(client).await?;
    let started = Instant::now();
    let usage = Sampler::start(Some(recorder_pid));
    let (backlog_peak, _sampling) = backlog_sampler();
    let job = {
        let pod = pod.to_string();
        tokio::task::spawn_blocking(move || run_job(&pod, rate, seconds)).await??
    };
    let usage = usage.finish();
    // The recorder is done when its count has stopped moving and it has had one report
    // interval to send what it counted.
    let counted = drained(profile).await;
    tokio::time::sleep(DENIAL_REPORT_INTERVAL * 2).await;
    let api = Scrape::read(client).await?.since(&api_before);
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let (_, lost_after) = recorder_counts(profile);
    let recorder_lost = lost_after
        .iter()
        .map(|(cause, v)| (cause.clone(), v - lost_before.get(cause).unwrap_or(&0.0)))
        .collect();
    Ok(RateRun {
        rate,
        unconfined,
        audited: job,
        counted: counted.saturating_sub(counted_before),
        recorder_lost,
        kernel_lost: u64::from(audit_status()?.lost.wrapping_sub(kernel_before)),
        backlog_peak: backlog_peak.load(Ordering::Relaxed),
        recorder_cpu_pct: 100.0 * usage.cpu_s / seconds as f64,
        recorder_rss_peak_kib: usage.rss_peak_kib,
        report_writes_per_min: (own_report_writes() - reports_before).max(0.0) / minutes,
        event_writes_per_min: (api.writes_where(|r: &Resource| r.resource == "events") / minutes)
            .max(0.0),
    })
}

/// The recorder's count for the profile once two reads a second apart agree (it has read
/// what the kernel queued), or after WAIT.
async fn drained(profile: &str) -> u64 {
    let deadline = Instant::now() + WAIT;
    let mut last = recorder_counts(profile).0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = recorder_counts(profile).0;
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// One rate's figures: the summary key (`r{rate}_` prefixed), the table's column head and the
/// value as printed, so that the table and the `audit:` line cannot disagree.
fn columns(r: &RateRun) -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("calls", "calls", r.audited.calls.to_string()),
        ("counted", "counted", r.counted.to_string()),
        ("lost", "lost", r.lost().to_string()),
        (
            "recorder_lost",
            "rec_lost",
            r.recorder_lost_total().to_string(),
        ),
        ("kernel_lost", "krn_lost", r.kernel_lost.to_string()),
        ("backlog_peak", "backlog^", r.backlog_peak.to_string()),
        (
            "slowdown_pct",
            "slowdown%",
            format!("{:.1}", r.slowdown_pct()),
        ),
        (
            "call_us",
            "call_us",
            format!("{:.2}", r.audited.mean_call_us()),
        ),
        (
            "unconfined_call_us",
            "open_us",
            format!("{:.2}", r.unconfined.mean_call_us()),
        ),
        (
            "max_call_ms",
            "max_ms",
            format!("{:.2}", r.audited.max_call_ns as f64 / 1e6),
        ),
        (
            "recorder_cpu_pct",
            "rec_cpu%",
            format!("{:.1}", r.recorder_cpu_pct),
        ),
        (
            "recorder_rss_kib",
            "rec_rss_K",
            r.recorder_rss_peak_kib.to_string(),
        ),
        (
            "report_writes_per_min",
            "node_rep/min",
            format!("{:.1}", r.report_writes_per_min),
        ),
        (
            "event_writes_per_min",
            "evt/min",
            format!("{:.1}", r.event_writes_per_min),
        ),
    ]
}

/// The table for people and the `audit:` line.
fn print(runs: &[RateRun], seconds: u64, kernel: &AuditStatus) -> (String, String) {
    let mut report = format!(
        "audit bench: {seconds} s per rate on {NODE}; kernel audit backlog_limit={} backlog_wait_time={} jiffies rate_limit={}\n",
        kernel.backlog_limit, kernel.backlog_wait_time, kernel.rate_limit
    );
    let mut summary = format!("audit: seconds={seconds}");
    let mut highest_no_loss = 0;
    for (i, r) in runs.iter().enumerate() {
        let cols = columns(r);
        if i == 0 {
            report.push_str(&format!("{:>8}", "rate/s"));
            for (_, head, _) in &cols {
                report.push_str(&format!(" {head:>10}"));
            }
            report.push('\n');
        }
        report.push_str(&format!("{:>8}", r.rate));
        for (key, _, value) in &cols {
            report.push_str(&format!(" {value:>10}"));
            summary.push_str(&format!(" r{}_{key}={value}", r.rate));
        }
        report.push('\n');
        if !r.recorder_lost.is_empty() {
            let causes: Vec<String> = r
                .recorder_lost
                .iter()
                .map(|(c, v)| format!("{c}={v}"))
                .collect();
            report.push_str(&format!(
                "         recorder lost by cause: {}\n",
                causes.join(" ")
            ));
        }
        // No loss: every call of the workload counted, and neither the kernel nor the
        // recorder's socket dropped a record (an unresolved or unmapped record is another
        // process's: the workload's are all in `counted`).
        let overflows = r.recorder_lost.get("overflow").copied().unwrap_or_default();
        if r.lost() == 0 && r.kernel_lost == 0 && overflows == 0.0 {
            highest_no_loss = highest_no_loss.max(r.rate);
        }
    }
    summary.push_str(&format!(
        " highest_rate_no_loss={highest_no_loss} report_interval_s={} backlog_limit={} backlog_wait_time_jiffies={}",
        DENIAL_REPORT_INTERVAL.as_secs(),
        kernel.backlog_limit,
        kernel.backlog_wait_time
    ));
    (report, summary)
}

/// kubectl commands run when dropped (at the end, on failure and on panic).
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = kubectl(&args);
        }
    }
}
