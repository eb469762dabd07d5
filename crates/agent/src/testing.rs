//! What the agent's unit tests share: metrics apart from any readiness, and their samples.

use std::sync::Arc;

use crate::metrics::AgentMetrics;
use seccompd_runtime::telemetry::exposition;

/// Metrics whose readiness gauges read a readiness nobody else holds.
pub fn metrics() -> AgentMetrics {
    AgentMetrics::new(&Arc::default())
}

/// The value of the sample of `series` (its name and labels) in `metrics`.
pub fn sample(metrics: &AgentMetrics, series: &str) -> f64 {
    let text = metrics.render().unwrap();
    exposition::sample(&text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

/// Failed API calls counted in `metrics`.
pub fn api_errors(metrics: &AgentMetrics) -> f64 {
    sample(metrics, "seccompd_api_errors_total")
}
