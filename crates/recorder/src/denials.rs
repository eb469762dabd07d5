//! This node's SeccompDenialReport: what the recorder counted of the calls seccompd profiles
//! refused (or would refuse, in Audit mode), written at most once per
//! [`DENIAL_REPORT_INTERVAL`] and only when it changed. The counting itself is
//! [`seccompd_recording::denials`]; the controller sums the nodes' reports per profile.

use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde_json::json;

use super::metrics::{LostCause, RecorderMetrics};
use seccompd_api::{SeccompDenialReport, SeccompDenialReportSpec};
use seccompd_profile::limits::DENIAL_REPORT_INTERVAL;
use seccompd_recording::denials::Outcome;

/// Field manager of the reports: each node's report is written by its recorder alone.
pub const REPORT_MANAGER: &str = "seccompd-recorder";

/// When and what this recorder last wrote.
#[derive(Debug)]
pub struct ReportState {
    /// When counting started: the reports' `since`.
    pub since: Time,
    /// The kernel's `audit_lost` when counting started, when readable.
    pub kernel_lost_base: Option<u32>,
    written: Option<SeccompDenialReportSpec>,
    written_at: Option<Instant>,
}

impl ReportState {
    /// Counting starts now, with the kernel's `audit_lost` at `kernel_lost_base`.
    pub fn new(since: Time, kernel_lost_base: Option<u32>) -> Self {
        Self {
            since,
            kernel_lost_base,
            written: None,
            written_at: None,
        }
    }

    /// Whether a write may be made at `now`: the first, or one interval after the last.
    pub fn due(&self, now: Instant) -> bool {
        self.written_at
            .is_none_or(|at| now.duration_since(at) >= DENIAL_REPORT_INTERVAL)
    }

    /// Whether `report` differs from the one last written.
    pub fn changed(&self, report: &SeccompDenialReportSpec) -> bool {
        self.written.as_ref() != Some(report)
    }

    /// `report` was written at `now`.
    pub fn written(&mut self, report: SeccompDenialReportSpec, now: Instant) {
        self.written = Some(report);
        self.written_at = Some(now);
    }
}

/// Counts what the tally made of records in the recorder's metrics.
pub fn count(metrics: &RecorderMetrics, outcome: &Outcome) {
    match outcome {
        Outcome::Tallied { key, count, .. } => {
            metrics.record_denials(&key.profile, &key.syscall, key.action, *count);
        }
        Outcome::Omitted(n) => metrics.record_denials_omitted(*n),
        Outcome::Unresolved(n) => metrics.record_lost_many(LostCause::Unresolved, *n),
        Outcome::NotCounted | Outcome::Pending => {}
    }
}

/// Writes node `node`'s report (server-side apply: created when missing).
pub async fn apply_report(
    client: &Client,
    node: &str,
    report: &SeccompDenialReportSpec,
) -> Result<(), kube::Error> {
    let body = json!({
        "apiVersion": SeccompDenialReport::api_version(&()),
        "kind": SeccompDenialReport::kind(&()),
        "metadata": {"name": node},
        "spec": report,
    });
    Api::<SeccompDenialReport>::all(client.clone())
        .patch(
            node,
            &PatchParams::apply(REPORT_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(read: u64) -> SeccompDenialReportSpec {
        SeccompDenialReportSpec {
            records_read: read,
            ..Default::default()
        }
    }

    #[test]
    fn a_report_is_due_first_then_once_per_interval_and_only_when_changed() {
        let t0 = Instant::now();
        let mut state = ReportState::new(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH), None);
        assert!(state.due(t0));
        assert!(state.changed(&report(0)));
        state.written(report(0), t0);
        assert!(!state.due(t0 + DENIAL_REPORT_INTERVAL / 2));
        assert!(state.due(t0 + DENIAL_REPORT_INTERVAL));
        assert!(!state.changed(&report(0)));
        assert!(state.changed(&report(1)));
    }
}
