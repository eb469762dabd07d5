//! The figures of one system's run (written as JSON after every phase, so that a run that
//! stops half-way keeps what it measured) and the side-by-side report of both.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::stats::percentile_ms;

/// What a bad profile met.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BadOutcome {
    pub case: String,
    pub what: String,
    /// `rejected: <message>` or `accepted`.
    pub apply: String,
    /// The status the system gave it (when accepted).
    pub status: String,
    /// What a pod referencing it saw (when accepted).
    pub pod: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Figures {
    pub system: String,
    pub nodes: usize,
    /// Profiles created, updated and deleted one at a time.
    pub one_by_one: usize,
    /// Profiles applied at once.
    pub bulk: usize,
    /// Samples in milliseconds.
    pub create_file_ms: Vec<f64>,
    /// The same, each node's own file.
    #[serde(default)]
    pub create_file_ms_by_node: BTreeMap<String, Vec<f64>>,
    pub create_installed_ms: Vec<f64>,
    /// Updates sent back to back: each once the previous one's files are on every node.
    pub update_file_ms: Vec<f64>,
    /// A second round of updates, each followed until the system says it is done with it
    /// before the next is sent.
    #[serde(default)]
    pub update_settled_file_ms: Vec<f64>,
    pub delete_gone_ms: Vec<f64>,
    /// Changes (creates + both rounds of updates + deletes) the write counts cover.
    pub changes: usize,
    /// Writes to the system's API group, to Events, and all writes, over the one-by-one phase.
    pub writes_group: Option<f64>,
    pub writes_events: Option<f64>,
    pub writes_all: Option<f64>,
    /// Requests to the system's group and Events by verb and resource, one-by-one phase.
    pub requests_by_resource: BTreeMap<String, f64>,
    /// Daemon resident memory per node (KiB): idle, and with the bulk profiles installed.
    pub daemon_rss_idle_kib: BTreeMap<String, u64>,
    pub daemon_rss_bulk_kib: BTreeMap<String, u64>,
    /// The controllers' resident memory, all replicas summed (KiB).
    pub controllers_rss_idle_kib: Option<u64>,
    pub controllers_rss_bulk_kib: Option<u64>,
    /// Pods of each kind (daemons, controllers) counted.
    pub daemon_pods: usize,
    pub controller_pods: usize,
    /// CPU seconds over the whole run, daemons (all nodes) and controllers.
    pub cpu_s_daemons: Option<f64>,
    pub cpu_s_controllers: Option<f64>,
    /// Objects of the system's API group per profile, and Events about them per profile.
    pub objects_per_profile: Option<f64>,
    pub events_per_profile: Option<f64>,
    /// Bulk: last create returned -> all files on every node / all installed; delete -> gone.
    pub bulk_apply_s: Option<f64>,
    pub bulk_files_ms: Option<f64>,
    pub bulk_installed_ms: Option<f64>,
    pub bulk_delete_ms: Option<f64>,
    /// A new node joining: its Node's registration -> the profile's file there, and a pod
    /// with the profile running there (ms); the kubelet's failed container creations before.
    pub join_file_ms: Option<f64>,
    pub join_pod_running_ms: Option<f64>,
    pub join_failed_starts: Option<f64>,
    pub bad: Vec<BadOutcome>,
    /// Where the run stopped, when it did.
    pub failed: Option<String>,
    /// Remarks on what was measured.
    pub notes: Vec<String>,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn durations(samples: &[f64]) -> Vec<Duration> {
    samples
        .iter()
        .map(|m| Duration::from_secs_f64(m / 1000.0))
        .collect()
}

/// p50, p99 and max of samples in ms; None without samples.
fn pct(samples: &[f64], p: f64) -> Option<f64> {
    (!samples.is_empty()).then(|| percentile_ms(&durations(samples), p))
}

impl Figures {
    pub fn path(out: &Path, system: &str) -> std::path::PathBuf {
        out.join(format!("{system}.json"))
    }

    pub fn save(&self, out: &Path) -> anyhow::Result<()> {
        let path = Self::path(out, &self.system);
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(out: &Path, system: &str) -> Option<Self> {
        let bytes = std::fs::read(Self::path(out, system)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn per_change(&self, writes: Option<f64>) -> Option<f64> {
        writes
            .filter(|_| self.changes > 0)
            .map(|w| w / self.changes as f64)
    }

    /// Writes to the system's own group and Events per change.
    pub fn writes_per_change(&self) -> Option<f64> {
        let group = self.writes_group?;
        self.per_change(Some(group + self.writes_events.unwrap_or(0.0)))
    }

    fn max_rss(map: &BTreeMap<String, u64>) -> Option<f64> {
        map.values().max().map(|&v| v as f64)
    }
}

/// One row: label, seccompd's value, SPO's value, formatted with `unit`.
struct Row {
    label: String,
    a: Option<f64>,
    b: Option<f64>,
    unit: &'static str,
}

fn fmt(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}{unit}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}{unit}"),
        Some(v) => format!("{v:.2}{unit}"),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    }
}

fn ratio_text(r: Option<f64>) -> String {
    match r {
        None => "n/a".into(),
        Some(r) if r >= 10.0 => format!("{r:.0}"),
        Some(r) => format!("{r:.2}"),
    }
}

/// What the report says: the table of both systems, the bad-profile outcomes and, last, the
/// `vs-spo:` line; and the figures of its table, for the results file.
pub struct Report {
    pub lines: Vec<String>,
    pub figures: serde_json::Map<String, serde_json::Value>,
}

/// The table of both systems, the bad-profile outcomes and the `vs-spo:` line.
pub fn report(out: &Path) -> anyhow::Result<Report> {
    let mut lines = Vec::new();
    let a = Figures::load(out, "seccompd").unwrap_or_else(|| Figures {
        failed: Some("no figures (the seccompd run did not start)".into()),
        ..Figures::default()
    });
    let b = Figures::load(out, "spo").unwrap_or_else(|| Figures {
        failed: Some("no figures (the SPO run did not start)".into()),
        ..Figures::default()
    });
    let read = |name: &str| {
        std::fs::read_to_string(out.join(name))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let spo_version = read("spo/version");
    let failed_steps = read("spo-failed-step");
    let spod_config = read("spo/spod-config");

    let kib_to_mib = |v: Option<f64>| v.map(|k| k / 1024.0);
    // One expression per figure, read from both systems' figures alike.
    let row = |label: String, unit: &'static str, value: &dyn Fn(&Figures) -> Option<f64>| Row {
        label,
        a: value(&a),
        b: value(&b),
        unit,
    };
    let rows = vec![
        row(
            format!(
                "create -> file on every node, p50 ({} profiles, one at a time)",
                a.one_by_one.max(b.one_by_one)
            ),
            " ms",
            &|f| pct(&f.create_file_ms, 0.5),
        ),
        row("create -> file on every node, p99".into(), " ms", &|f| {
            pct(&f.create_file_ms, 0.99)
        }),
        row("create -> file on every node, max".into(), " ms", &|f| {
            pct(&f.create_file_ms, 1.0)
        }),
        row("create -> status Installed, p50".into(), " ms", &|f| {
            pct(&f.create_installed_ms, 0.5)
        }),
        row("create -> status Installed, p99".into(), " ms", &|f| {
            pct(&f.create_installed_ms, 0.99)
        }),
        row(
            "update -> new bytes on every node, p50 (back to back)".into(),
            " ms",
            &|f| pct(&f.update_file_ms, 0.5),
        ),
        row(
            "update -> new bytes on every node, p99 (back to back)".into(),
            " ms",
            &|f| pct(&f.update_file_ms, 0.99),
        ),
        row(
            "update -> new bytes on every node, p50 (each settled)".into(),
            " ms",
            &|f| pct(&f.update_settled_file_ms, 0.5),
        ),
        row(
            "update -> new bytes on every node, p99 (each settled)".into(),
            " ms",
            &|f| pct(&f.update_settled_file_ms, 0.99),
        ),
        row(
            "delete -> file gone on every node, p99".into(),
            " ms",
            &|f| pct(&f.delete_gone_ms, 0.99),
        ),
        row(
            "API writes per change (own group + Events)".into(),
            "",
            &|f| f.writes_per_change(),
        ),
        row(
            "API writes per change, all (control plane included)".into(),
            "",
            &|f| f.per_change(f.writes_all),
        ),
        row(
            format!(
                "objects in etcd per profile (own group, {} profiles)",
                a.bulk.max(b.bulk)
            ),
            "",
            &|f| f.objects_per_profile,
        ),
        row("Events in etcd per profile".into(), "", &|f| {
            f.events_per_profile
        }),
        row(
            "daemon resident memory, idle (largest node)".into(),
            " MiB",
            &|f| kib_to_mib(Figures::max_rss(&f.daemon_rss_idle_kib)),
        ),
        row(
            format!(
                "daemon resident memory, {} profiles (largest node)",
                a.bulk.max(b.bulk)
            ),
            " MiB",
            &|f| kib_to_mib(Figures::max_rss(&f.daemon_rss_bulk_kib)),
        ),
        row(
            "controllers' resident memory, idle (all replicas)".into(),
            " MiB",
            &|f| kib_to_mib(f.controllers_rss_idle_kib.map(|v| v as f64)),
        ),
        row(
            format!(
                "controllers' resident memory, {} profiles",
                a.bulk.max(b.bulk)
            ),
            " MiB",
            &|f| kib_to_mib(f.controllers_rss_bulk_kib.map(|v| v as f64)),
        ),
        row("CPU over the run, daemons (all nodes)".into(), " s", &|f| {
            f.cpu_s_daemons
        }),
        row("CPU over the run, controllers".into(), " s", &|f| {
            f.cpu_s_controllers
        }),
        row(
            format!("bulk: {} creates sent (8 at a time)", a.bulk.max(b.bulk)),
            " s",
            &|f| f.bulk_apply_s,
        ),
        row(
            "bulk: last create -> all files on every node".into(),
            " ms",
            &|f| f.bulk_files_ms,
        ),
        row("bulk: last create -> all Installed".into(), " ms", &|f| {
            f.bulk_installed_ms
        }),
        row("bulk: last delete -> all files gone".into(), " ms", &|f| {
            f.bulk_delete_ms
        }),
        row(
            "new node: registered -> profile file there".into(),
            " ms",
            &|f| f.join_file_ms,
        ),
        row(
            "new node: registered -> a pod with the profile running there".into(),
            " ms",
            &|f| f.join_pod_running_ms,
        ),
        row(
            "new node: failed container creations before that".into(),
            "",
            &|f| f.join_failed_starts,
        ),
    ];

    lines.push(format!(
        "seccompd vs Security Profiles Operator {spo_version} on this cluster ({} nodes)",
        a.nodes.max(b.nodes)
    ));
    let width = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
    lines.push(format!(
        "| {:<width$} | {:>12} | {:>12} | {:>12} |",
        "figure", "seccompd", "SPO", "SPO/seccompd"
    ));
    lines.push(format!(
        "|{}|{}|{}|{}|",
        "-".repeat(width + 2),
        "-".repeat(14),
        "-".repeat(14),
        "-".repeat(14)
    ));
    for r in &rows {
        lines.push(format!(
            "| {:<width$} | {:>12} | {:>12} | {:>12} |",
            r.label,
            fmt(r.a, r.unit),
            fmt(r.b, r.unit),
            ratio_text(ratio(r.a, r.b))
        ));
    }
    lines.push(String::new());
    lines.push("bad profiles:".into());
    lines.push("| system | profile | kubectl apply | status | a pod using it |".into());
    lines.push("|---|---|---|---|---|".into());
    for f in [&a, &b] {
        for o in &f.bad {
            lines.push(format!(
                "| {} | {} | {} | {} | {} |",
                f.system, o.what, o.apply, o.status, o.pod
            ));
        }
    }
    for f in [&a, &b] {
        let by_node: Vec<String> = f
            .create_file_ms_by_node
            .iter()
            .map(|(node, samples)| {
                format!(
                    "{node} {} / {}",
                    fmt(pct(samples, 0.5), " ms"),
                    fmt(pct(samples, 0.99), " ms")
                )
            })
            .collect();
        if !by_node.is_empty() {
            lines.push(format!(
                "create -> file, each node's own, p50 / p99 ({}): {}",
                f.system,
                by_node.join(", ")
            ));
        }
    }
    for f in [&a, &b] {
        for note in &f.notes {
            lines.push(format!("note ({}): {note}", f.system));
        }
        if let Some(why) = &f.failed {
            lines.push(format!(
                "STOPPED ({}): {why}",
                if f.system.is_empty() { "?" } else { &f.system }
            ));
        }
    }
    if !failed_steps.is_empty() {
        for s in failed_steps.lines() {
            lines.push(format!("SPO step that failed: {s}"));
        }
    }
    if !spod_config.is_empty() {
        lines.push(format!(
            "SPO daemon configuration (features left off): {spod_config}"
        ));
    }
    let rss = |f: &Figures| {
        Figures::max_rss(&f.daemon_rss_bulk_kib)
            .or_else(|| Figures::max_rss(&f.daemon_rss_idle_kib))
    };
    // SPO's percentile q of a series over seccompd's.
    let pct_ratio = |series: fn(&Figures) -> &Vec<f64>, q: f64| {
        ratio_text(ratio(pct(series(&a), q), pct(series(&b), q)))
    };
    lines.push(format!(
        "vs-spo: spo_version={} install_p50_ratio={} install_p99_ratio={} update_p50_ratio={} update_p99_ratio={} update_settled_p99_ratio={} installed_status_ratio={} rss_ratio={} api_writes_ratio={} new_node_ratio={} bulk_installed_ms={}",
        if spo_version.is_empty() {
            "unknown"
        } else {
            &spo_version
        },
        pct_ratio(|f| &f.create_file_ms, 0.5),
        pct_ratio(|f| &f.create_file_ms, 0.99),
        pct_ratio(|f| &f.update_file_ms, 0.5),
        pct_ratio(|f| &f.update_file_ms, 0.99),
        pct_ratio(|f| &f.update_settled_file_ms, 0.99),
        pct_ratio(|f| &f.create_installed_ms, 0.99),
        ratio_text(ratio(rss(&a), rss(&b))),
        ratio_text(ratio(a.writes_per_change(), b.writes_per_change())),
        ratio_text(ratio(a.join_pod_running_ms, b.join_pod_running_ms)),
        a.bulk_installed_ms
            .map_or_else(|| "n/a".to_string(), |ms| format!("{ms:.0}")),
    ));
    // Each row's figures by system, keyed by its label and unit.
    let mut figures = serde_json::Map::new();
    for r in &rows {
        let key = format!("{} [{}]", r.label, r.unit.trim());
        let pair = serde_json::json!({"seccompd": r.a, "spo": r.b});
        figures.insert(key.replace(" []", ""), pair);
    }
    Ok(Report { lines, figures })
}
