//! What a run measured, how it is printed, and the figures the sweep compares across N.

use std::time::Duration;

use crate::apimetrics::Scrape;
use crate::procs::Usage;
use crate::projection;
use crate::stats::percentile_ms;

/// Everything one run (N simulated nodes, P profiles) measured.
#[derive(Default)]
pub struct RunFigures {
    pub nodes: usize,
    pub profiles: usize,
    /// Real nodes (kubelet and in-cluster agent) beside the simulated ones.
    pub real_nodes: usize,
    /// SeccompProfiles in the cluster that are not the bench's (every report lists them too).
    pub other_profiles: usize,
    pub create_files: Vec<Duration>,
    pub create_installed: Vec<Duration>,
    pub update_files: Vec<Duration>,
    pub update_installed: Vec<Duration>,
    pub delete_gone: Vec<Duration>,
    /// Profile changes the traffic figures are divided by (create, update, delete: 3 P).
    pub changes: usize,
    /// The API server's counters over the measured phases.
    pub traffic: Scrape,
    /// How long the measured phases took together.
    pub window: Duration,
    /// Watch events (and approximate bytes) the bench's own watch received in them.
    pub bench_watch_events: u64,
    pub bench_watch_bytes: u64,
    /// One simulated node's SeccompNodeReport with all P profiles installed: JSON bytes, and
    /// the exceptions it lists.
    pub report_bytes: usize,
    pub report_entries: usize,
    /// The largest SeccompProfile status seen while every simulated agent was stopped.
    pub status_max_bytes: usize,
    /// From SIGCONT to Installed on every node again.
    pub lag_recovery: Duration,
    /// Simulated agents' resident memory with all P profiles installed (after the updates).
    pub agent_rss_median_kib: u64,
    pub agent_rss_max_kib: u64,
    /// The simulated agents' sync passes over the create, update and delete phases.
    pub agent_passes: f64,
    /// The status writer's node and resident memory at the same moment.
    pub writer_node: String,
    pub writer_rss_kib: u64,
    pub apiserver: Usage,
    pub etcd: Usage,
}

impl RunFigures {
    fn per_change(&self, x: f64) -> f64 {
        // `+ 0.0` turns the -0.0 that summing nothing gives into 0.
        x / self.changes.max(1) as f64 + 0.0
    }

    /// Writes to seccompd.dev resources per change (the change itself included).
    pub fn writes_per_change(&self) -> f64 {
        self.per_change(self.traffic.seccompd_writes())
    }

    /// seccompd.dev watch events per change, without those the bench's own watch received.
    pub fn watch_events_per_change(&self) -> f64 {
        self.per_change(self.traffic.seccompd_watch_events() - self.bench_watch_events as f64)
    }

    /// seccompd.dev watch bytes per change, without (about) what the bench's watch received.
    pub fn watch_bytes_per_change(&self) -> f64 {
        self.per_change(self.traffic.seccompd_watch_bytes() - self.bench_watch_bytes as f64)
    }

    /// Bytes of SeccompNodeReport writes sent to the API server per change.
    pub fn report_bytes_per_change(&self) -> f64 {
        self.per_change(self.traffic.seccompd_body_bytes("seccompnodereports"))
    }

    fn total_nodes(&self) -> usize {
        self.nodes + self.real_nodes
    }

    /// The run's full printout, ending with the machine-readable line.
    pub fn report(&self, agent: &str) -> String {
        let mut lines = Vec::new();
        let n = self.nodes;
        let t = self.total_nodes();
        lines.push(format!(
            "== scale: {n} simulated + {} real nodes, {} profiles ({} changes; {} other profiles in the cluster); agent {agent}",
            self.real_nodes, self.profiles, self.changes, self.other_profiles
        ));
        let mut row = |what: String, s: &[Duration]| {
            lines.push(format!(
                "{what:<38} p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms  (n={})",
                percentile_ms(s, 0.5),
                percentile_ms(s, 0.99),
                percentile_ms(s, 1.0),
                s.len()
            ))
        };
        row(
            format!("create -> file on all {n} nodes"),
            &self.create_files,
        );
        row(
            format!("create -> Installed {t}/{t}"),
            &self.create_installed,
        );
        row(
            format!("update -> file on all {n} nodes"),
            &self.update_files,
        );
        row(
            format!("update -> Installed {t}/{t}"),
            &self.update_installed,
        );
        row(
            format!("delete -> gone from all {n} nodes"),
            &self.delete_gone,
        );
        lines.push(format!(
            "API server requests per change, by verb and resource ({} changes; the run took {:.1} s; \
             includes the control plane's own background traffic and the bench's requests):",
            self.changes,
            self.window.as_secs_f64()
        ));
        let mut requests: Vec<_> = self.traffic.requests.iter().collect();
        requests.sort_by(|a, b| b.1.total_cmp(a.1));
        for ((verb, resource), count) in requests {
            lines.push(format!(
                "  {verb:<8} {:<44} {:>9.2}",
                resource.label(),
                self.per_change(*count)
            ));
        }
        lines.push(format!(
            "writes to seccompd.dev per change: {:.2} (the change itself included; goal <= N + 10 = {})",
            self.writes_per_change(),
            n + 10
        ));
        lines.push(format!(
            "watch events per change (seccompd.dev, the bench's own watch taken out): {:.2}; by resource (with the bench's watch):",
            self.watch_events_per_change()
        ));
        // seccompd's resources, and any other that got at least one event per change.
        let shown = self
            .traffic
            .watch_events
            .iter()
            .filter(|(r, e)| r.is_seccompd() || self.per_change(**e) >= 1.0);
        for (resource, events) in shown {
            let bytes = self
                .traffic
                .watch_bytes
                .get(resource)
                .copied()
                .unwrap_or(0.0);
            lines.push(format!(
                "  {:<44} {:>9.2} events  {:>11.0} bytes per change",
                resource.label(),
                self.per_change(*events),
                self.per_change(bytes)
            ));
        }
        lines.push(format!(
            "watch bytes per change (seccompd.dev, the bench's own watch taken out): {:.0}",
            self.watch_bytes_per_change()
        ));
        lines.push(format!(
            "node report: {} bytes, {} exceptions listed; report bytes sent per change: {:.0}",
            self.report_bytes,
            self.report_entries,
            self.report_bytes_per_change()
        ));
        lines.push(format!(
            "largest SeccompProfile status while all {n} simulated nodes lag: {} bytes (Installed on all again {:.1} ms after SIGCONT)",
            self.status_max_bytes,
            self.lag_recovery.as_secs_f64() * 1000.0
        ));
        lines.push(format!(
            "status writer (controller {}): {} KiB resident with the {} profiles installed",
            self.writer_node, self.writer_rss_kib, self.profiles
        ));
        lines.push(format!(
            "simulated agent sync passes per change and node: {:.2} (goal: 1)",
            self.passes_per_change()
        ));
        lines.push(format!(
            "simulated agent: {} KiB resident with the {} profiles installed (median; max {} KiB)",
            self.agent_rss_median_kib, self.profiles, self.agent_rss_max_kib
        ));
        for (name, u) in [("kube-apiserver", &self.apiserver), ("etcd", &self.etcd)] {
            lines.push(format!(
                "{name}: {:.1} CPU s over the run; resident {} KiB at start, {} KiB at end, {} KiB peak",
                u.cpu_s, u.rss_start_kib, u.rss_end_kib, u.rss_peak_kib
            ));
        }
        lines.push(self.line());
        lines.join("\n")
    }

    /// `scale: nodes=N profiles=P ...`
    pub fn line(&self) -> String {
        format!(
            "scale: nodes={} profiles={} files_p50_ms={:.1} files_p99_ms={:.1} installed_p99_ms={:.1} writes_per_change={:.2} watch_events_per_change={:.2} watch_bytes_per_change={:.0} status_max_bytes={} agent_rss_kib={} writer_rss_kib={} passes_per_change={:.2}",
            self.nodes,
            self.profiles,
            percentile_ms(&self.create_files, 0.5),
            percentile_ms(&self.create_files, 0.99),
            percentile_ms(&self.create_installed, 0.99),
            self.writes_per_change(),
            self.watch_events_per_change(),
            self.watch_bytes_per_change(),
            self.status_max_bytes,
            self.agent_rss_max_kib,
            self.writer_rss_kib,
            self.passes_per_change()
        )
    }

    /// Sync passes per profile change and simulated node (1 when an agent's own writes do
    /// not wake it again).
    pub fn passes_per_change(&self) -> f64 {
        let per = (self.changes * self.nodes) as f64;
        if per == 0.0 {
            0.0
        } else {
            self.agent_passes / per
        }
    }
}

/// A figure the sweep tabulates and plots against N.
pub struct Figure {
    /// Its key (as in the `scale:` line where it is there) and file name.
    pub key: &'static str,
    /// What it is, with its unit.
    pub title: &'static str,
    pub value: fn(&RunFigures) -> f64,
    /// The goal at N nodes, where it sets one.
    pub goal: Option<fn(f64) -> f64>,
    /// Whether the sweep projects it to [`PROJECT_TO`] nodes with a straight line: set for
    /// the costs that grow by about the same amount with every node, so that a line is their
    /// model (docs/scale.md, "Projection to 5,000 nodes").
    pub projected: bool,
}

/// The figures of a sweep, in the order of the table.
pub const FIGURES: &[Figure] = &[
    Figure {
        key: "files_p50_ms",
        title: "create -> file on all N nodes, p50 (ms)",
        value: |f| percentile_ms(&f.create_files, 0.5),
        goal: None,
        projected: false,
    },
    Figure {
        key: "files_p99_ms",
        title: "create -> file on all N nodes, p99 (ms)",
        value: |f| percentile_ms(&f.create_files, 0.99),
        goal: Some(|_| 1000.0),
        projected: false,
    },
    Figure {
        key: "installed_p50_ms",
        title: "create -> Installed n/n, p50 (ms)",
        value: |f| percentile_ms(&f.create_installed, 0.5),
        goal: None,
        projected: false,
    },
    Figure {
        key: "installed_p99_ms",
        title: "create -> Installed n/n, p99 (ms)",
        value: |f| percentile_ms(&f.create_installed, 0.99),
        goal: Some(|_| 3000.0),
        projected: false,
    },
    Figure {
        key: "update_files_p99_ms",
        title: "update -> file on all N nodes, p99 (ms)",
        value: |f| percentile_ms(&f.update_files, 0.99),
        goal: None,
        projected: false,
    },
    Figure {
        key: "delete_gone_p99_ms",
        title: "delete -> gone from all N nodes, p99 (ms)",
        value: |f| percentile_ms(&f.delete_gone, 0.99),
        goal: None,
        projected: false,
    },
    Figure {
        key: "writes_per_change",
        title: "writes to seccompd.dev per change",
        value: RunFigures::writes_per_change,
        goal: Some(|n| n + 10.0),
        // One report apply per node whose file changed, plus about one status write.
        projected: true,
    },
    Figure {
        key: "watch_events_per_change",
        title: "watch events per change (seccompd.dev)",
        value: RunFigures::watch_events_per_change,
        goal: None,
        // Every node's agent watches the profiles; each report apply reaches the controller
        // and that agent's own watch of its report.
        projected: true,
    },
    Figure {
        key: "watch_bytes_per_change",
        title: "watch bytes per change (seccompd.dev)",
        value: RunFigures::watch_bytes_per_change,
        goal: None,
        // The events above, each of a size that does not grow with N (a status lists at most
        // MAX_LISTED_NODES nodes by name).
        projected: true,
    },
    Figure {
        key: "report_bytes",
        title: "one node report (bytes)",
        value: |f| f.report_bytes as f64,
        goal: None,
        projected: false,
    },
    Figure {
        key: "report_bytes_per_change",
        title: "report bytes sent per change",
        value: RunFigures::report_bytes_per_change,
        goal: None,
        // One report per node, of a size that does not grow with N.
        projected: true,
    },
    Figure {
        key: "status_max_bytes",
        title: "largest status while all N lag (bytes)",
        value: |f| f.status_max_bytes as f64,
        goal: Some(|_| 65536.0),
        projected: false,
    },
    Figure {
        key: "agent_rss_kib",
        title: "simulated agent resident memory, max (KiB)",
        value: |f| f.agent_rss_max_kib as f64,
        goal: None,
        projected: false,
    },
    Figure {
        key: "passes_per_change",
        title: "agent sync passes per change and node",
        value: |f| f.passes_per_change(),
        goal: Some(|_| 1.0),
        projected: false,
    },
    Figure {
        key: "writer_rss_kib",
        title: "status writer resident memory (KiB)",
        value: |f| f.writer_rss_kib as f64,
        goal: None,
        // The status writer keeps every node's report (one small entry per node).
        projected: true,
    },
    Figure {
        key: "apiserver_cpu_s",
        title: "kube-apiserver CPU over the run (s)",
        value: |f| f.apiserver.cpu_s,
        goal: None,
        // Serves every write and every watch event above, over the run's fixed 3 P changes.
        projected: true,
    },
    Figure {
        key: "apiserver_rss_peak_kib",
        title: "kube-apiserver resident memory, peak (KiB)",
        value: |f| f.apiserver.rss_peak_kib as f64,
        goal: None,
        // Its watch cache holds every report, and every simulated Node and its pod.
        projected: true,
    },
    Figure {
        key: "etcd_cpu_s",
        title: "etcd CPU over the run (s)",
        value: |f| f.etcd.cpu_s,
        goal: None,
        // Stores every write above.
        projected: true,
    },
    Figure {
        key: "etcd_rss_peak_kib",
        title: "etcd resident memory, peak (KiB)",
        value: |f| f.etcd.rss_peak_kib as f64,
        goal: None,
        // Holds every report, Node and pod.
        projected: true,
    },
];

/// The sweep's table: one row per figure, one column per N.
pub fn sweep_table(runs: &[RunFigures]) -> String {
    let mut lines = Vec::new();
    lines.push(format!(
        "== scale sweep ({} profiles per run): how each figure grows with N",
        runs.first().map_or(0, |r| r.profiles)
    ));
    let mut header = format!("{:<46}", "figure");
    for r in runs {
        header.push_str(&format!(" {:>12}", format!("N={}", r.nodes)));
    }
    lines.push(header);
    for f in FIGURES {
        let mut row = format!("{:<46}", f.title);
        for r in runs {
            row.push_str(&format!(" {:>12}", format_value((f.value)(r))));
        }
        lines.push(row);
    }
    lines.join("\n")
}

fn format_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The node count the sweep projects its figures to.
pub const PROJECT_TO: usize = 5000;

/// The sweep's projection to [`PROJECT_TO`] nodes: for each projected figure, `a + b·N`
/// fitted over the runs by least squares. Returns the table people read and the
/// `scale-projection:` line the results file keeps (`fit_<key>_a`, `fit_<key>_b`,
/// `fit_<key>_r2`, `proj5000_<key>`).
pub fn sweep_projection(runs: &[RunFigures]) -> (String, String) {
    let ns: Vec<String> = runs.iter().map(|r| r.nodes.to_string()).collect();
    let mut lines = vec![
        format!(
            "== projection to N={PROJECT_TO}: value = a + b·N, least squares over N = {} (extrapolated; see docs/scale.md)",
            ns.join(", ")
        ),
        format!(
            "{:<46} {:>12} {:>12} {:>8} {:>12}",
            "figure",
            "a",
            "b",
            "R²",
            format!("N={PROJECT_TO}")
        ),
    ];
    let mut line = String::from("scale-projection:");
    for f in FIGURES.iter().filter(|f| f.projected) {
        let points: Vec<(f64, f64)> = runs
            .iter()
            .map(|r| (r.nodes as f64, (f.value)(r)))
            .collect();
        let Some(fit) = projection::fit(&points) else {
            lines.push(format!(
                "{:<46} no fit: fewer than two node counts",
                f.title
            ));
            continue;
        };
        let at = fit.at(PROJECT_TO as f64);
        lines.push(format!(
            "{:<46} {:>12} {:>12} {:>8.4} {:>12}",
            f.title,
            projection::significant(fit.a),
            projection::significant(fit.b),
            fit.r2,
            format_value(at)
        ));
        let key = f.key;
        line.push_str(&format!(
            " proj{PROJECT_TO}_{key}={} fit_{key}_a={} fit_{key}_b={} fit_{key}_r2={:.4}",
            projection::significant(at),
            projection::significant(fit.a),
            projection::significant(fit.b),
            fit.r2
        ));
    }
    (lines.join("\n"), line)
}
