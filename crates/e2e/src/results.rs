//! Results files: what one bench run measured, written as `docs/results/<bench>-<UTC start>.json`
//! with the provenance a reader needs to trust or redo it (date, commit, machine, command).
//! The docs quote measured figures only from these files: `hack/check-doc-figures.py`
//! renders a doc's `<!-- results:<stem> -->` block from the file and fails when the block
//! differs or a figure appears outside such a block.
//!
//! The file holds `bench`, `date` (the run's start, UTC), `duration_s`, `commit`, `dirty`
//! (tracked files changed), `machine` (`nproc`, `mem_kib`, `kernel`, `cpu`, `loadavg` when it
//! ended), `command`, `figures` (name -> number, string or object), `summary` (the
//! machine-readable line the bench printed), `report` (the text it printed for people) and
//! `files` (what else the run wrote, relative to the results directory).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// Overrides where results files go (default: `docs/results/` of the repository).
const DIR_ENV: &str = "SECCOMPD_RESULTS_DIR";
/// Overrides the command recorded (a script that runs the bench sets what a person typed).
const COMMAND_ENV: &str = "SECCOMPD_BENCH_COMMAND";

/// The results file of one run, named when the run starts.
pub struct ResultsFile {
    bench: String,
    /// `YYYYMMDDTHHMMSSZ`, in the file name.
    stamp: String,
    /// RFC 3339, in the file.
    date: String,
    started: Instant,
    /// HEAD and whether tracked files differed from it, when the run started (what it
    /// measured, even if the checkout moves on meanwhile).
    commit: String,
    dirty: bool,
    dir: PathBuf,
}

impl ResultsFile {
    /// The results file of a run of `bench` (lowercase words joined by `-`) starting now.
    pub fn new(bench: &str) -> Self {
        let (stamp, date) = utc_now();
        let repo = git(&crate::repo_root(), &["rev-parse", "--show-toplevel"]).map(PathBuf::from);
        let dir = std::env::var_os(DIR_ENV).map_or_else(
            || {
                repo.clone()
                    .unwrap_or_else(crate::repo_root)
                    .join("docs/results")
            },
            PathBuf::from,
        );
        let commit = repo
            .as_deref()
            .and_then(|r| git(r, &["rev-parse", "HEAD"]))
            .unwrap_or_else(|| "unknown".into());
        let dirty = repo
            .as_deref()
            .and_then(|r| git(r, &["status", "--porcelain", "--untracked-files=no"]))
            .is_some_and(|s| !s.is_empty());
        Self {
            bench: bench.into(),
            stamp,
            date,
            started: Instant::now(),
            commit,
            dirty,
            dir,
        }
    }

    /// `<bench>-<stamp>`: the file's name without `.json`, and what a doc's block names.
    pub fn stem(&self) -> String {
        format!("{}-{}", self.bench, self.stamp)
    }

    /// The directory the file goes to (files the run writes beside it belong in here too).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the file (never over an existing one); returns its path.
    pub fn write(
        &self,
        figures: Map<String, Value>,
        summary: &str,
        report: &str,
        files: &[PathBuf],
    ) -> std::io::Result<PathBuf> {
        let files: Vec<String> = files
            .iter()
            .map(|f| {
                f.strip_prefix(&self.dir)
                    .unwrap_or(f)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let doc = json!({
            "bench": self.bench,
            "date": self.date,
            "duration_s": (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "commit": self.commit,
            "dirty": self.dirty,
            "machine": machine(),
            "command": command(),
            "figures": figures,
            "summary": summary,
            "report": report.trim_matches('\n'),
            "files": files,
        });
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{}.json", self.stem()));
        let mut out = std::fs::File::create_new(&path)?;
        out.write_all(serde_json::to_string_pretty(&doc)?.as_bytes())?;
        out.write_all(b"\n")?;
        Ok(path)
    }
}

/// The `key=value` pairs of a bench's summary line (`scale: nodes=1 files_ms=3.3 ...`), numbers
/// where they parse as one (integers as integers).
pub fn figures_from_line(line: &str) -> Map<String, Value> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(key, value)| {
            let number = value
                .parse::<i64>()
                .map(serde_json::Number::from)
                .ok()
                .or_else(|| {
                    value
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                });
            let value = number.map_or_else(|| Value::String(value.into()), Value::Number);
            (key.to_string(), value)
        })
        .collect()
}

/// Trimmed standard output of `git` in `dir`; None when git fails. `safe.directory` because
/// benches run as root in a checkout someone else owns.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-c")
        .arg(format!("safe.directory={}", dir.display()))
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What the figures depend on: cores, memory, kernel, CPU model, and the load when the run
/// ended (the machine is shared; a loaded one makes every time an upper bound).
fn machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
    };
    let meminfo = read("/proc/meminfo");
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "mem_kib": field(&meminfo, "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok()),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "cpu": field(&read("/proc/cpuinfo"), "model name"),
        "loadavg": read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

/// The command that made the run: `SECCOMPD_BENCH_COMMAND`, or `cargo bench` with this bench
/// target and its arguments (cargo's own `--bench` left out).
fn command() -> String {
    if let Ok(c) = std::env::var(COMMAND_ENV) {
        return c;
    }
    let mut args = std::env::args();
    let exe = args.next().unwrap_or_default();
    let file = Path::new(&exe)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // cargo names the binary `<target>-<hash>`.
    let target = file.rsplit_once('-').map_or(file.as_str(), |(t, _)| t);
    let rest: Vec<String> = args.filter(|a| a != "--bench").collect();
    let mut line = format!("cargo bench --bench {target}");
    if !rest.is_empty() {
        line.push_str(" -- ");
        line.push_str(&rest.join(" "));
    }
    line
}

/// Now as `YYYYMMDDTHHMMSSZ` and as RFC 3339, UTC.
fn utc_now() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest / 60 % 60, rest % 60);
    let (y, mo, d) = civil_from_days(days as i64);
    (
        format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}{s:02}Z"),
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"),
    )
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (the days-to-civil
/// algorithm over 400-year eras of 146097 days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
