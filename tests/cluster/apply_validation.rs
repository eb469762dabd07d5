//! Apply-time validation against the real API server of the test cluster: for every schema
//! bound and CEL rule of the SeccompProfile CRD, `kubectl apply` of an object that breaks it
//! fails with the rule's message; and a SeccompNodeReport over the bounds of what a node may
//! say is refused. Nothing here is stored: every object is rejected (the valid ones use a
//! server-side dry run).
//!
//! Needs the cluster (`make cluster-up`); reads `SECCOMPD_KUBECONFIG` (default
//! `.cluster/kubeconfig`). Without one every test fails; none skips itself.

use std::sync::Once;
use std::time::Duration;

use kube::Api;
use kube::api::PostParams;
use seccompd_agent::decide::report::report_spec;
use seccompd_api::{NodeProfileState, ProfileReport, SeccompNodeReport, SeccompNodeReportSpec};
use seccompd_e2e::cluster::{self, kubectl, kubectl_stdin};
use seccompd_profile::limits::{MAX_PROFILE_NAME_LEN, MAX_REPORT_EXCEPTIONS};
use seccompd_profile::render::ContentHash;
use serde_json::{Value, json};

static CRD: Once = Once::new();

/// Installs the CRD from crds/ (what this commit generates) and waits until it serves.
fn ensure_crd() {
    CRD.call_once(|| {
        let path = cluster::repo_path("crds/seccompd.yaml");
        let out = kubectl(&["apply", "-f", path.to_str().expect("utf-8 path")]);
        assert!(
            out.status.success(),
            "installing crds/seccompd.yaml failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/seccompprofiles.seccompd.dev",
            "crd/seccompnodereports.seccompd.dev",
        ]);
        assert!(out.status.success(), "the CRDs did not become Established");
    });
}

fn object(name: &str, spec: Value) -> String {
    json!({
        "apiVersion": "seccompd.dev/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": { "name": name },
        "spec": spec,
    })
    .to_string()
}

/// Applies `spec` (as profile `name`) and returns kubectl's stderr, asserting it failed.
fn rejected(name: &str, spec: Value) -> String {
    ensure_crd();
    let out = kubectl_stdin(&["apply", "-f", "-"], &object(name, spec));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "kubectl apply accepted {name}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn assert_rejected(name: &str, spec: Value, field: &str, message: &str) {
    let stderr = rejected(name, spec);
    assert!(
        stderr.contains(field) && stderr.contains(message),
        "{name}: expected {field:?} and {message:?} in: {stderr}"
    );
}

/// A denylist: everything runs except `mkdir`, with `rule` merged into that rule.
fn deny(rule: Value) -> Value {
    let mut base = json!({ "names": ["mkdir"], "action": "SCMP_ACT_ERRNO" });
    if let (Some(b), Some(r)) = (base.as_object_mut(), rule.as_object()) {
        for (k, v) in r {
            b.insert(k.clone(), v.clone());
        }
    }
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [base] })
}

#[test]
fn a_valid_profile_is_accepted() {
    ensure_crd();
    let spec = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            { "names": ["read", "write", "execve", "_llseek", "mseal"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 8, "op": "SCMP_CMP_EQ" }] },
            { "names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4094 }
        ]
    });
    let out = kubectl_stdin(
        &["apply", "--dry-run=server", "-f", "-"],
        &object("apply-valid", spec),
    );
    assert!(
        out.status.success(),
        "a valid profile was rejected: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unknown_enum_values_are_rejected() {
    assert_rejected(
        "bad-action",
        deny(json!({ "action": "SCMP_ACT_DENY" })),
        "spec.syscalls[0].action",
        "Unsupported value: \"SCMP_ACT_DENY\"",
    );
    assert_rejected(
        "bad-default-action",
        json!({ "defaultAction": "scmp_act_allow" }),
        "spec.defaultAction",
        "Unsupported value",
    );
    assert_rejected(
        "bad-arch",
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AMD64"] }),
        "spec.architectures[0]",
        "Unsupported value: \"SCMP_ARCH_AMD64\"",
    );
    assert_rejected(
        "bad-op",
        deny(json!({ "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_IN" }] })),
        "spec.syscalls[0].args[0].op",
        "Unsupported value: \"SCMP_CMP_IN\"",
    );
    assert_rejected(
        "bad-flag",
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"] }),
        "spec.flags[0]",
        "Unsupported value: \"SECCOMP_FILTER_FLAG_FOO\"",
    );
}

#[test]
fn errno_out_of_range_is_rejected() {
    assert_rejected(
        "errno-4095",
        deny(json!({ "errnoRet": 4095 })),
        "spec.syscalls[0].errnoRet",
        "errno must be 0 to 4094",
    );
    assert_rejected(
        "default-errno-5000",
        json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000,
                "syscalls": [{ "names": ["execve"], "action": "SCMP_ACT_ALLOW" }] }),
        "spec.defaultErrnoRet",
        "errno must be 0 to 4094",
    );
}

#[test]
fn errno_on_other_actions_is_rejected() {
    assert_rejected(
        "errno-on-kill",
        deny(json!({ "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 1 })),
        "spec.syscalls[0].errnoRet",
        "errnoRet is only used with SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
    );
    assert_rejected(
        "default-errno-on-allow",
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1 }),
        "spec.defaultErrnoRet",
        "defaultErrnoRet is only used with SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
    );
}

#[test]
fn argument_index_over_five_is_rejected() {
    assert_rejected(
        "arg-index-6",
        deny(json!({ "args": [{ "index": 6, "value": 0, "op": "SCMP_CMP_EQ" }] })),
        "spec.syscalls[0].args[0].index",
        "system calls have six arguments, 0 to 5",
    );
}

#[test]
fn notify_is_rejected() {
    assert_rejected(
        "notify-rule",
        deny(json!({ "action": "SCMP_ACT_NOTIFY" })),
        "spec.syscalls[0].action",
        "SCMP_ACT_NOTIFY needs a user-space listener",
    );
    assert_rejected(
        "notify-default",
        json!({ "defaultAction": "SCMP_ACT_NOTIFY",
                "syscalls": [{ "names": ["execve"], "action": "SCMP_ACT_ALLOW" }] }),
        "spec.defaultAction",
        "SCMP_ACT_NOTIFY needs a user-space listener",
    );
}

#[test]
fn empty_or_unknown_names_are_rejected() {
    assert_rejected(
        "empty-names",
        deny(json!({ "names": [] })),
        "spec.syscalls[0].names",
        "names is empty, so the rule matches nothing",
    );
    assert_rejected(
        "empty-name",
        deny(json!({ "names": ["mkdir", ""] })),
        "spec.syscalls[0].names[1]",
        "a system call name is empty",
    );
    assert_rejected(
        "malformed-name",
        deny(json!({ "names": ["MKDIR"] })),
        "spec.syscalls[0].names[0]",
        "\"MKDIR\" is not a system call on any architecture",
    );
    assert_rejected(
        "unknown-name",
        deny(json!({ "names": ["mkdri"] })),
        "spec.syscalls[0].names[0]",
        "\"mkdri\" is not a system call on any architecture",
    );
    assert_rejected(
        "long-name",
        deny(json!({ "names": ["a".repeat(65)] })),
        "spec.syscalls[0].names[0]",
        "Too long",
    );
}

#[test]
fn denying_execve_is_rejected() {
    assert_rejected(
        "execve-by-default",
        json!({ "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{ "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" }] }),
        "spec.defaultAction",
        "denies execve and no rule allows it",
    );
    assert_rejected(
        "execve-by-rule",
        deny(json!({ "names": ["mkdir", "execve"], "action": "SCMP_ACT_KILL_PROCESS" })),
        "spec.syscalls[0].names",
        "this rule denies execve",
    );
}

#[test]
fn mixed_byte_order_is_rejected() {
    assert_rejected(
        "mixed-endian",
        json!({ "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_S390X"] }),
        "spec.architectures",
        "mixes big-endian and little-endian architectures",
    );
}

#[test]
fn misspelled_fields_are_rejected_by_name() {
    assert_rejected(
        "typo-top",
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscals": [] }),
        "spec.syscals",
        "unknown field",
    );
    assert_rejected(
        "typo-rule",
        deny(json!({ "errnoret": 1 })),
        "spec.syscalls[0].errnoret",
        "unknown field",
    );
}

#[test]
fn wrong_types_and_missing_fields_are_rejected() {
    assert_rejected(
        "errno-string",
        deny(json!({ "errnoRet": "EPERM" })),
        "spec.syscalls[0].errnoRet",
        "must be of type integer",
    );
    assert_rejected(
        "no-default",
        json!({ "syscalls": [] }),
        "spec.defaultAction",
        "Required value",
    );
}

#[test]
fn sizes_are_bounded() {
    let rules: Vec<Value> = (0..513)
        .map(|i| {
            json!({ "names": ["personality"], "action": "SCMP_ACT_ERRNO",
                          "args": [{ "index": 0, "value": i, "op": "SCMP_CMP_EQ" }] })
        })
        .collect();
    assert_rejected(
        "too-many-rules",
        json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules }),
        "spec.syscalls",
        "must have at most 512 items",
    );
    let args: Vec<Value> = (0..7)
        .map(|i| json!({ "index": i % 6, "value": i, "op": "SCMP_CMP_NE" }))
        .collect();
    assert_rejected(
        "seven-args",
        deny(json!({ "args": args })),
        "spec.syscalls[0].args",
        "must have at most 6 items",
    );
}

#[test]
fn long_names_are_rejected() {
    let name = format!("p{}", "x".repeat(250));
    assert_rejected(
        &name,
        json!({ "defaultAction": "SCMP_ACT_ALLOW" }),
        "metadata.name",
        "may have at most 250 characters",
    );
}

/// The API server and the Rust validator agree on every profile of the case table that is a
/// valid SeccompProfile spec as far as JSON types go: the server rejects exactly those with a
/// structural error (conflicting rules excepted: judging them needs all rules at once, so
/// only nodes and the CLI do).
#[test]
fn the_api_server_agrees_with_the_validator_on_the_case_table() {
    use seccompd_profile::model::ProfileSpec;
    use seccompd_profile::validate::validate_spec;

    ensure_crd();
    let path = cluster::repo_path("tests/validation/cases.json");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("cases.json")).expect("json");
    let mut compared = 0;
    let mut disagreements = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name").to_string();
        let Ok(spec) = serde_json::from_value::<ProfileSpec>(case["input"].clone()) else {
            continue;
        };
        let expect_reject = validate_spec(&spec, "spec")
            .errors
            .iter()
            .any(|e| !e.message.contains("already has a rule without conditions"));
        let out = kubectl_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            &object(&format!("case-{name}"), case["input"].clone()),
        );
        compared += 1;
        if out.status.success() == expect_reject {
            disagreements.push(format!(
                "{name}: validator rejects={expect_reject}, API server: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(compared >= 50, "only {compared} cases compared");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// A SeccompNodeReport named `name` (no such node: a dry run stores nothing) with `spec`.
fn node_report(name: &str, spec: SeccompNodeReportSpec) -> SeccompNodeReport {
    SeccompNodeReport::new(name, spec)
}

/// The outcome `Invalid` for profile `name`, with `reason`.
fn rejected_profile(name: &str, reason: &str) -> ProfileReport {
    ProfileReport {
        name: name.to_string(),
        state: NodeProfileState::Invalid,
        generation: Some(1),
        content_hash: Some(ContentHash::of(name.as_bytes())),
        reason: Some(reason.to_string()),
    }
}

/// A server-side dry-run create (`?dryRun=All`) of `report`.
async fn dry_run_create(report: &SeccompNodeReport) -> Result<SeccompNodeReport, kube::Error> {
    let api: Api<SeccompNodeReport> = Api::all(cluster::client().await);
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    api.create(&params, report).await
}

/// The API server's refusal of `report` as Invalid (422). A CRD just applied is served a
/// moment later: an acceptance is retried until the new schema refuses it, or the wait ends.
async fn refused_as_invalid(report: &SeccompNodeReport) -> Box<kube::core::Status> {
    ensure_crd();
    cluster::eventually(
        "the API server to refuse the report as Invalid",
        Duration::from_secs(30),
        || async {
            match dry_run_create(report).await {
                Err(kube::Error::Api(status)) if status.code == 422 => Ok(status),
                Err(kube::Error::Api(status)) => panic!("expected 422 Invalid, got {status:?}"),
                Err(other) => Err(format!("error {other}")),
                Ok(_) => Err("the report was accepted".to_string()),
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_node_report_with_a_100_kib_reason_is_refused_by_the_api_server() {
    let reason = "x".repeat(100 * 1024);
    let spec = SeccompNodeReportSpec {
        synced: true,
        exceptions: vec![rejected_profile("p", &reason)],
        ..SeccompNodeReportSpec::default()
    };
    let status = refused_as_invalid(&node_report("bounds-long-reason", spec)).await;
    assert_eq!(status.reason, "Invalid");
    assert!(
        status.message.contains("spec.exceptions[0].reason") && status.message.contains("Too long"),
        "the refusal names the field: {}",
        status.message
    );
}

#[tokio::test]
async fn a_node_report_with_more_exceptions_than_max_items_is_refused() {
    let spec = SeccompNodeReportSpec {
        synced: true,
        exceptions: (0..=MAX_REPORT_EXCEPTIONS)
            .map(|i| rejected_profile(&format!("p{i}"), "bad"))
            .collect(),
        ..SeccompNodeReportSpec::default()
    };
    let status = refused_as_invalid(&node_report("bounds-many-exceptions", spec)).await;
    assert_eq!(status.reason, "Invalid");
    let expected = format!("must have at most {MAX_REPORT_EXCEPTIONS} items");
    assert!(
        status.message.contains("spec.exceptions") && status.message.contains(&expected),
        "the refusal names the field and the bound: {}",
        status.message
    );
}

/// What the agent makes of a node with too many problems, each with a 100 KiB reason, fits
/// the schema: the bounds in the CRD and the agent's cutting agree.
#[tokio::test]
async fn the_agents_report_of_an_overflowing_node_is_accepted() {
    ensure_crd();
    let reason = "é".repeat(100 * 1024);
    let outcomes = (0..MAX_REPORT_EXCEPTIONS + 50)
        .map(|i| {
            let mut name = format!("p{i:04}");
            name.push_str(&"x".repeat(MAX_PROFILE_NAME_LEN - name.len()));
            rejected_profile(&name, &reason)
        })
        .collect();
    let spec = report_spec(true, outcomes);
    assert_eq!(spec.exceptions.len(), MAX_REPORT_EXCEPTIONS);
    assert_eq!(spec.exceptions_omitted, 50);
    let created = dry_run_create(&node_report("bounds-overflowing", spec.clone()))
        .await
        .unwrap_or_else(|err| panic!("the agent's bounded report was refused: {err}"));
    assert_eq!(
        created.spec, spec,
        "stored as written, nothing cut by the server"
    );
}
