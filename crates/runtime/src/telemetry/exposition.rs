//! What every role's `/metrics` shares: a `prometheus-client` registry of the role's own
//! metrics, each registered as it is made, encoded in the Prometheus text format. Each role
//! keeps its metrics in its crate (the agent's, the controller's, the recorder's), so a role
//! exports only what it counts. Names follow Prometheus conventions (docs/operations.md's
//! metrics table lists them): base units in the name, `_total` on counters (added by the
//! encoder).

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, prometheus_text};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};

/// The `Content-Type` of [`Exposition::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// What the name of every seccompd metric starts with.
const PREFIX: &str = "seccompd";

/// Bucket bounds in seconds of every latency histogram: from a millisecond (a pass with
/// nothing to do) to five minutes (the default resync, and beyond what any healthy path takes).
const LATENCY_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The registry of one role's `/metrics`.
#[derive(Debug)]
pub struct Exposition {
    registry: Registry,
}

impl Default for Exposition {
    fn default() -> Self {
        Self::new()
    }
}

impl Exposition {
    /// An empty registry whose metrics are named `seccompd_<name>`: the agent's and the
    /// controller's.
    pub fn new() -> Self {
        Self {
            registry: Registry::with_prefix(PREFIX),
        }
    }

    /// An empty registry whose metrics are named `seccompd_<subsystem>_<name>`: the
    /// recorder's.
    pub fn with_subsystem(subsystem: &str) -> Self {
        Self {
            registry: Registry::with_prefix(format!("{PREFIX}_{subsystem}")),
        }
    }

    /// A new metric (a counter, a gauge, a family of them), registered as `name` with `help`.
    pub fn register<M: Metric + Clone + Default>(&mut self, name: &str, help: &str) -> M {
        let metric = M::default();
        self.registry.register(name, help, metric.clone());
        metric
    }

    /// A new metric in seconds: its name ends in `_seconds`.
    pub fn register_seconds<M: Metric + Clone + Default>(&mut self, name: &str, help: &str) -> M {
        let metric = M::default();
        self.registry
            .register_with_unit(name, help, Unit::Seconds, metric.clone());
        metric
    }

    /// A new histogram of durations in seconds (its name ends in `_seconds`), with buckets
    /// from a millisecond to five minutes.
    pub fn register_latency(&mut self, name: &str, help: &str) -> Histogram {
        let histogram = Histogram::new(LATENCY_BUCKETS);
        self.registry
            .register_with_unit(name, help, Unit::Seconds, histogram.clone());
        histogram
    }

    /// A gauge whose value `read` gives at each scrape: state kept elsewhere (a probe's
    /// condition), exported without a copy that could disagree with it.
    pub fn register_gauge_fn(
        &mut self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        self.registry.register_collector(Box::new(GaugeFn {
            name,
            // As `Registry::register` ends every help text.
            help: format!("{help}."),
            read: Box::new(read),
        }));
    }

    /// Every metric in the Prometheus text exposition format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// A gauge read at each scrape.
struct GaugeFn {
    name: &'static str,
    help: String,
    read: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl fmt::Debug for GaugeFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GaugeFn").field("name", &self.name).finish()
    }
}

impl Collector for GaugeFn {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let gauge = ConstGauge::new((self.read)());
        let metric = encoder.encode_descriptor(self.name, &self.help, None, gauge.metric_type())?;
        gauge.encode(metric)
    }
}

/// Asserts that `text` (an exposition) holds exactly the metric families `want`, each by the
/// name and type of its `# TYPE` line: what a role exports.
#[cfg(any(test, feature = "test-support"))]
pub fn assert_families(text: &str, want: &[(&str, &str)]) {
    use std::collections::BTreeSet;

    let families: BTreeSet<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' '))
        .collect();
    let want: BTreeSet<(&str, &str)> = want.iter().copied().collect();
    assert_eq!(families, want, "the metric families of:\n{text}");
}

/// The value of the sample of `series` (a name and its labels, as written) in `text`.
#[cfg(any(test, feature = "test-support"))]
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;

    use super::*;

    #[test]
    fn names_carry_the_prefix_the_unit_and_the_counters_suffix() {
        let mut e = Exposition::new();
        let _: Counter = e.register("passes", "Passes");
        let _: Gauge = e.register("kept", "Kept");
        let _: Gauge<f64, std::sync::atomic::AtomicU64> = e.register_seconds("last", "Last");
        let _ = e.register_latency("pass_duration", "Durations");
        e.register_gauge_fn("up", "Up", || 1);
        let mut sub = Exposition::with_subsystem("recorder");
        let _: Counter = sub.register("reads", "Reads");
        assert_families(
            &e.render().unwrap(),
            &[
                ("seccompd_passes_total", "counter"),
                ("seccompd_kept", "gauge"),
                ("seccompd_last_seconds", "gauge"),
                ("seccompd_pass_duration_seconds", "histogram"),
                ("seccompd_up", "gauge"),
            ],
        );
        assert_families(
            &sub.render().unwrap(),
            &[("seccompd_recorder_reads_total", "counter")],
        );
    }

    #[test]
    fn registered_metrics_are_the_ones_returned() {
        let mut e = Exposition::new();
        let passes: Counter = e.register("passes", "Passes");
        let repairs: Family<[(&str, &str); 1], Counter> = e.register("repairs", "Repairs");
        let latency = e.register_latency("pass_duration", "Durations");
        passes.inc();
        repairs.get_or_create(&[("kind", "restored")]).inc();
        latency.observe(0.002);
        let text = e.render().unwrap();
        assert_eq!(sample(&text, "seccompd_passes_total"), Some(1.0));
        assert_eq!(
            sample(&text, "seccompd_repairs_total{kind=\"restored\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "seccompd_pass_duration_seconds_bucket{le=\"0.001\"}"),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                "seccompd_pass_duration_seconds_bucket{le=\"0.0025\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "seccompd_pass_duration_seconds_bucket{le=\"300\"}"),
            Some(1.0)
        );
    }

    #[test]
    fn a_gauge_fn_is_read_at_each_scrape_and_helped_like_the_others() {
        let state = Arc::new(AtomicI64::new(0));
        let mut e = Exposition::new();
        let read = state.clone();
        e.register_gauge_fn("ready", "1 once ready", move || {
            read.load(Ordering::Relaxed)
        });
        let _: Gauge = e.register("synced", "1 once synced");
        assert_eq!(sample(&e.render().unwrap(), "seccompd_ready"), Some(0.0));
        state.store(1, Ordering::Relaxed);
        let text = e.render().unwrap();
        assert_eq!(sample(&text, "seccompd_ready"), Some(1.0));
        assert!(
            text.contains("# HELP seccompd_ready 1 once ready.\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP seccompd_synced 1 once synced.\n"),
            "{text}"
        );
    }
}
