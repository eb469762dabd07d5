//! Denials you can see: with the recorder deployed, the calls a seccompd profile refuses (or, in
//! Audit mode, would refuse) are counted per node, summed into the profile's `status.denials`,
//! told to the pod in an Event and counted in the recorder's metrics; and the new API surface
//! (each node's SeccompDenialReport, the Events) is written only by the node's own recorder.
//!
//! The workloads run on node1: node2 of the local cluster is a network namespace of node1's
//! kernel and hears no audit records, which its report says.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event as EventV1;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use seccompd_api::{ProfileDenials, SeccompDenialReport, SeccompProfile};
use seccompd_e2e::cluster::tokens::{
    allowed, client_with_token, dry_apply, dry_post, forbidden, token_bound_to_pod, unbound_token,
};
use seccompd_e2e::cluster::{client, eventually, kubectl_ok, kubectl_stdin, repo_path, unique};
use seccompd_e2e::lifecycle::{shown_column, wait_status};
use serde_json::json;

use seccompd_e2e::cluster::recorder::{RECORDER_SELECTOR, Recorder, recorder_metric};

use crate::recording_cluster::{TestNamespace, WAIT, controller_client, logs, pod, wait_ended};

/// The seed's `ls` profile (manifests/examples/centos8-ls-profile.yaml) as `name`, in Audit
/// mode.
fn audited_seed_profile(name: &str) {
    let manifest = std::fs::read_to_string(repo_path("manifests/examples/centos8-ls-profile.yaml"))
        .expect("the seed's profile");
    let renamed = manifest
        .replace("name: centos8-ls", &format!("name: {name}"))
        .replace("\nspec:\n", "\nspec:\n  mode: Audit\n");
    let out = kubectl_stdin(&["apply", "-f", "-"], &renamed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ls -l /` on node1 under `profile` (pod level) in `namespace` until it ends; its
/// phase and log.
async fn ls_l(client: &Client, namespace: &str, name: &str, profile: &str) -> (String, String) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut p = pod(
        namespace,
        name,
        &["ls", "-l", "/"],
        &format!("seccompd/{profile}.json"),
        true,
        json!({}),
        Some("node1"),
    );
    // With no_new_privs the runtime loads the filter just before exec (as the seed's pods).
    if let Some(spec) = p.spec.as_mut() {
        spec.containers[0]
            .security_context
            .get_or_insert_with(Default::default)
            .allow_privilege_escalation = Some(false);
    }
    pods.create(&PostParams::default(), &p)
        .await
        .expect("create the pod");
    let phase = wait_ended(&pods, name).await;
    (phase, logs(namespace, name))
}

/// Waits until profile `name`'s `status.denials` satisfies `done`.
async fn wait_denials(
    client: &Client,
    name: &str,
    what: &str,
    done: impl Fn(&ProfileDenials) -> bool,
) -> ProfileDenials {
    let profiles: Api<SeccompProfile> = Api::all(client.clone());
    eventually(what, WAIT, || async {
        let p = profiles.get(name).await.map_err(|e| e.to_string())?;
        let denials = p.status.and_then(|s| s.denials);
        match denials {
            Some(d) if done(&d) => Ok(d),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// The notes of the Events with `reason` on pod `pod` in `namespace`.
async fn pod_event_notes(client: &Client, namespace: &str, pod: &str, reason: &str) -> Vec<String> {
    let events: Api<EventV1> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("a {reason} Event on pod {pod}"), WAIT, || async {
        let list = events
            .list(&Default::default())
            .await
            .map_err(|e| e.to_string())?;
        let notes: Vec<String> = list
            .items
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod)
            })
            .filter_map(|e| e.note)
            .collect();
        if notes.is_empty() {
            Err("none yet".to_string())
        } else {
            Ok(notes)
        }
    })
    .await
}

#[tokio::test]
async fn an_audited_profile_names_what_it_would_deny_and_enforced_counts_the_denials() {
    let client = client().await;
    let _recorder = Recorder::deploy();
    let ns = TestNamespace::create(&client, "denials", json!({})).await;
    let profile = unique("ls-audit");
    audited_seed_profile(&profile);
    let status = wait_status(&profile, "Installed", "2/2", WAIT).await;
    assert_eq!(status["mode"], "Audit", "{status}");

    // Audit: `ls -l /` runs as if unconfined...
    let audited = unique("audited");
    let (phase, out) = ls_l(&client, &ns.0, &audited, &profile).await;
    assert_eq!(phase, "Succeeded", "{out}");
    assert!(!out.contains("Operation not permitted"), "{out}");
    // ...and the profile's status names what the enforced profile would have refused, with
    // the pod and the node.
    let denials = wait_denials(&client, &profile, "would-be denials of the pod", |d| {
        d.would_deny > 0
            && d.syscalls
                .iter()
                .any(|c| c.pods.iter().any(|p| p.name == audited))
    })
    .await;
    assert_eq!(denials.denied, 0, "{denials:?}");
    let call = denials
        .syscalls
        .iter()
        .find(|c| c.pods.iter().any(|p| p.name == audited))
        .expect("a call of the pod");
    assert_eq!(call.action.as_str(), "SCMP_ACT_LOG");
    assert_eq!(call.nodes, ["node1"]);
    let shown = kubectl_ok(&["get", "seccompprofile", &profile]);
    assert!(shown.contains("would deny"), "{shown}");

    // The Event on the pod, and the metric.
    let notes = pod_event_notes(&client, &ns.0, &audited, "SeccompWouldDeny").await;
    let prefix = format!("would be denied under profile {profile}: ");
    assert!(notes.iter().all(|n| n.starts_with(&prefix)), "{notes:?}");
    let series = format!(
        "seccompd_recorder_denials_total{{profile=\"{profile}\",syscall=\"{}\",action=\"SCMP_ACT_LOG\"}}",
        call.name
    );
    let counted = recorder_metric("node1", &series).unwrap_or_default();
    assert!(counted >= 1.0, "{series} = {counted}");

    // node2 hears no audit record, and its report says so.
    let reports: Api<SeccompDenialReport> = Api::all(client.clone());
    eventually("node2's report to say it cannot hear", WAIT, || async {
        let r = reports.get("node2").await.map_err(|e| e.to_string())?;
        match &r.spec.audit_unavailable {
            Some(reason) if reason.contains("network namespace") => Ok(()),
            _ => Err(format!("{:?}", r.spec)),
        }
    })
    .await;

    // Enforce, with denials logged (SECCOMP_FILTER_FLAG_LOG; runc 1.5 on node1 accepts it,
    // node2's runc 1.1 refuses it): `ls -l /` gets EPERM and the denials count as such.
    Api::<SeccompProfile>::all(client.clone())
        .patch(
            &profile,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"mode": "Enforce", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}}),
            ),
        )
        .await
        .expect("switch to Enforce with the log flag");
    let status = wait_status(&profile, "Partial", "1/2", WAIT).await;
    // node2 refuses the flag and keeps its last valid file, the Audit one: the switch is not
    // over there, and the status says so rather than the spec's Enforce.
    assert_eq!(status["mode"], "Audit->Enforce", "{status}");
    assert_eq!(shown_column(&profile, "MODE"), "Audit->Enforce");
    assert_eq!(status["nodes"][0]["nodeName"], "node2", "{status}");
    let enforced = unique("enforced");
    let (phase, out) = ls_l(&client, &ns.0, &enforced, &profile).await;
    assert!(
        out.contains("Operation not permitted"),
        "{enforced} ({phase}): {out}"
    );
    let denials = wait_denials(&client, &profile, "denials of the enforced pod", |d| {
        d.denied > 0
            && d.syscalls.iter().any(|c| {
                c.action.as_str() == "SCMP_ACT_ERRNO" && c.pods.iter().any(|p| p.name == enforced)
            })
    })
    .await;
    assert!(
        denials
            .summary
            .as_deref()
            .unwrap_or_default()
            .contains("denied"),
        "{denials:?}"
    );
    pod_event_notes(&client, &ns.0, &enforced, "SeccompDenied").await;

    ns.delete();
    kubectl_ok(&["delete", "seccompprofile", &profile]);
}

/// The report named `node` as a recorder would apply it.
fn report(node: &str) -> Patch<serde_json::Value> {
    Patch::Apply(json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompDenialReport",
        "metadata": {"name": node},
        "spec": {"recordsRead": 1, "entryCount": 1, "entries": [{
            "profile": "forged", "syscall": "mkdir", "action": "SCMP_ACT_LOG", "count": 1000,
            "firstSeen": "2026-01-01T00:00:00Z", "lastSeen": "2026-01-01T00:00:00Z"}]},
    }))
}

/// An Event regarding pod `pod` related to node `node`.
fn event(pod: &str, node: &str) -> EventV1 {
    serde_json::from_value(json!({
        "metadata": {"name": unique("forged"), "namespace": "default"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "seccompd.dev/recorder", "reportingInstance": "x",
        "action": "Audit", "reason": "SeccompWouldDeny", "type": "Warning",
        "note": "would be denied under profile x: mkdir",
        "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": pod},
        "related": {"apiVersion": "v1", "kind": "Node", "name": node},
    }))
    .expect("an event")
}

/// A stolen recorder token of node1 writes node1's report and Events on node1's pods, and
/// nothing else of the new surface: not node2's report, not a profile's `status.denials`;
/// a token bound to no pod writes nothing; the controller's token only reads reports.
#[tokio::test]
async fn denial_reports_and_events_are_written_only_by_their_own_nodes_recorder() {
    let _recorder = Recorder::deploy();
    let manager = "seccompd-recorder";
    let node1 = client_with_token(&token_bound_to_pod(
        "seccompd-recorder",
        RECORDER_SELECTOR,
        "node1",
    ))
    .await;
    let reports: Api<SeccompDenialReport> = Api::all(node1.clone());
    allowed(
        "node1's recorder writing node1's report",
        reports
            .patch("node1", &dry_apply(manager), &report("node1"))
            .await,
    );
    let message = forbidden(
        "node1's recorder writing node2's report",
        reports
            .patch("node2", &dry_apply(manager), &report("node2"))
            .await,
    );
    assert!(
        message.contains("SeccompDenialReport named node1"),
        "{message}"
    );
    let profiles: Api<SeccompProfile> = Api::all(node1.clone());
    forbidden(
        "node1's recorder writing a profile's status.denials",
        profiles
            .patch_status(
                "any",
                &dry_apply(manager),
                &Patch::Apply(json!({
                    "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
                    "metadata": {"name": "any"},
                    "status": {"denials": {"wouldDeny": 0, "denied": 0, "lostRecords": 0}},
                })),
            )
            .await,
    );
    let events: Api<EventV1> = Api::namespaced(node1.clone(), "default");
    allowed(
        "node1's recorder telling a pod related to node1",
        events.create(&dry_post(), &event("web", "node1")).await,
    );
    let message = forbidden(
        "node1's recorder telling a pod related to node2",
        events.create(&dry_post(), &event("web", "node2")).await,
    );
    assert!(message.contains("related object"), "{message}");

    let unbound = client_with_token(&unbound_token("seccompd-recorder")).await;
    forbidden(
        "a recorder token bound to no pod writing node1's report",
        Api::<SeccompDenialReport>::all(unbound)
            .patch("node1", &dry_apply(manager), &report("node1"))
            .await,
    );

    let controller = controller_client().await;
    forbidden(
        "the controller writing a node's report",
        Api::<SeccompDenialReport>::all(controller)
            .patch(
                "node1",
                &dry_apply("seccompd-denial-summary"),
                &report("node1"),
            )
            .await,
    );
}
