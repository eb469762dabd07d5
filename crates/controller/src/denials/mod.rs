//! Each SeccompProfile's `status.denials`, written by the elected controller from every
//! node's SeccompDenialReport: what the profile refused, or in Audit mode would refuse. The
//! decision is [`summary::plan`]; this module only watches and applies, under a field
//! manager of its own (the status writer's apply leaves `status.denials` alone), at most
//! once per [`DENIAL_REPORT_INTERVAL`] per pass.

pub mod summary;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;
use tracing::warn;

use self::summary::{DenialsWrite, plan};
use seccompd_api::{SeccompDenialReport, SeccompProfile};
use seccompd_profile::limits::DENIAL_REPORT_INTERVAL;
use seccompd_runtime::apiserver::reflect;

/// Field manager of `status.denials`.
pub const DENIALS_MANAGER: &str = "seccompd-denial-summary";

/// When a write failed, how long until the next pass tries again.
const RETRY: Duration = Duration::from_secs(2);

/// Keeps what the summary reads of a profile: its name and `status.denials`.
fn trim_profile(p: &mut SeccompProfile) {
    p.metadata.managed_fields = None;
    p.metadata.annotations = None;
    p.metadata.labels = None;
    p.spec.0.syscalls.clear();
    p.status = p.status.take().map(|s| seccompd_api::SeccompProfileStatus {
        denials: s.denials,
        ..Default::default()
    });
}

/// Writes every profile's denials until dropped (when the lease is lost, which also ends its
/// watches).
pub async fn write_denials(client: Client) {
    let wake = Arc::new(Notify::new());
    let (profiles, _profiles_watch) = reflect(
        Api::<SeccompProfile>::all(client.clone()),
        watcher::Config::default(),
        trim_profile,
        wake.clone(),
    );
    let (reports, _reports_watch) = reflect(
        Api::<SeccompDenialReport>::all(client.clone()),
        watcher::Config::default(),
        |r| r.metadata.managed_fields = None,
        wake.clone(),
    );
    if profiles.wait_until_ready().await.is_err() || reports.wait_until_ready().await.is_err() {
        return;
    }
    let api = Api::<SeccompProfile>::all(client);
    loop {
        let profiles = profiles.state();
        let reports = reports.state();
        let names: Vec<String> = profiles.iter().map(|p| p.name_any()).collect();
        let current: Vec<_> = names
            .iter()
            .zip(&profiles)
            .map(|(name, p)| {
                let denials = p.status.as_ref().and_then(|s| s.denials.as_ref());
                (name.as_str(), denials)
            })
            .collect();
        let nodes: Vec<String> = reports.iter().map(|r| r.name_any()).collect();
        let by_node: Vec<_> = nodes
            .iter()
            .zip(&reports)
            .map(|(node, r)| (node.as_str(), &r.spec))
            .collect();
        let mut failed = false;
        for write in plan(&current, &by_node) {
            if let Err(err) = apply(&api, &write).await {
                warn!(profile = %write.name, %err, "status.denials not written; retrying");
                failed = true;
            }
        }
        if failed {
            tokio::time::sleep(RETRY).await;
        } else {
            // One pass per interval at most, however often the reports change.
            tokio::time::sleep(DENIAL_REPORT_INTERVAL).await;
            wake.notified().await;
        }
    }
}

/// Applies one profile's `status.denials` (an empty status removes what this manager wrote).
async fn apply(api: &Api<SeccompProfile>, write: &DenialsWrite) -> Result<(), kube::Error> {
    let status = match &write.denials {
        Some(d) => json!({"denials": d}),
        None => json!({}),
    };
    let body = json!({
        "apiVersion": SeccompProfile::api_version(&()),
        "kind": SeccompProfile::kind(&()),
        "metadata": {"name": write.name},
        "status": status,
    });
    api.patch_status(
        &write.name,
        &PatchParams::apply(DENIALS_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccompd_runtime::apiserver::mock::mock_client;

    /// A write is a forced server-side apply of `status.denials` alone, by this manager; a
    /// removal applies an empty status.
    #[tokio::test]
    async fn denials_are_applied_alone_under_their_own_manager() {
        let (client, mut api) = mock_client();
        let profiles = Api::<SeccompProfile>::all(client);
        let answer = json!({"apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
            "metadata": {"name": "ls"}, "spec": {"defaultAction": "SCMP_ACT_ALLOW"}});
        let server = tokio::spawn(async move {
            let path = "/apis/seccompd.dev/v1alpha1/seccompprofiles/ls/status";
            let set = api
                .expect_apply(path, DENIALS_MANAGER, answer.clone())
                .await;
            let removed = api.expect_apply(path, DENIALS_MANAGER, answer).await;
            (set, removed, api)
        });
        let denials = seccompd_api::ProfileDenials {
            summary: Some("would deny 1: mkdir".to_string()),
            would_deny: 1,
            ..Default::default()
        };
        for denials in [Some(denials), None] {
            let write = DenialsWrite {
                name: "ls".to_string(),
                denials,
            };
            apply(&profiles, &write).await.unwrap();
        }
        drop(profiles);
        let (set, removed, api) = server.await.unwrap();
        assert_eq!(
            set["status"],
            json!({"denials": {"summary": "would deny 1: mkdir", "wouldDeny": 1, "denied": 0, "lostRecords": 0}})
        );
        assert_eq!(removed["status"], json!({}));
        assert_eq!(
            set.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["apiVersion", "kind", "metadata", "status"]
        );
        api.expect_no_more().await;
    }
}
