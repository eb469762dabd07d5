//! What the agent's unit tests read from the metrics.

use seccompd_runtime::telemetry::Metrics;

/// The value of the sample of `series` (its name and labels) in `metrics`.
pub fn sample(metrics: &Metrics, series: &str) -> f64 {
    let text = metrics.render().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

/// Failed API calls counted in `metrics`.
pub fn api_errors(metrics: &Metrics) -> f64 {
    sample(metrics, "seccompd_api_errors_total")
}
