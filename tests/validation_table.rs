//! The table of profiles in `tests/validation/cases.json`: each with the verdict seccompd must
//! give (valid, warn or invalid), a piece of the reason, and what runc 1.1.5 and crun 1.8.1 did
//! with it on the test VM (`make check-cases`, part of `make test`, re-runs those with
//! hack/check-cases.sh and compares).

use seccompd_cli::validate::check_inputs;
use seccompd_profile::check::NodeRuntime;
use seccompd_profile::model::Arch;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(default)]
    raw: Option<String>,
    verdict: String,
    reason: String,
    runc: String,
    crun: String,
    #[serde(default)]
    why: Option<String>,
    /// false: the runtimes were run with no_new_privs off (the Kubernetes default while
    /// allowPrivilegeEscalation is not false); otherwise on.
    #[serde(default)]
    nnp: Option<bool>,
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/validation/cases.json");
    let text = std::fs::read_to_string(path).expect("reading cases.json");
    serde_json::from_str(&text).expect("parsing cases.json")
}

fn bytes(case: &Case) -> Vec<u8> {
    match (&case.raw, &case.input) {
        (Some(raw), _) => raw.as_bytes().to_vec(),
        (None, Some(v)) => serde_json::to_vec(v).unwrap(),
        (None, None) => b"null".to_vec(),
    }
}

#[test]
fn table_has_at_least_sixty_profiles_with_runtime_observations() {
    let all = cases();
    assert!(all.len() >= 60, "only {} cases", all.len());
    for c in &all {
        for rt in [&c.runc, &c.crun] {
            assert!(
                ["runs", "fails", "n/a"].contains(&rt.as_str()),
                "{}: {rt}",
                c.name
            );
        }
        let _ = (&c.why, c.nnp);
    }
}

#[test]
fn every_profile_gets_its_expected_verdict_and_reason() {
    let mut wrong = Vec::new();
    for case in cases() {
        let inputs = vec![(case.name.clone(), bytes(&case))];
        let verdicts = check_inputs(&inputs, Arch::X86_64, &NodeRuntime::default());
        assert_eq!(verdicts.len(), 1, "{}", case.name);
        let f = &verdicts[0].findings;
        let got = if !f.errors.is_empty() {
            "invalid"
        } else if !f.warnings.is_empty() {
            "warn"
        } else {
            "valid"
        };
        let texts: Vec<String> = match got {
            "invalid" => f.errors.iter().map(|p| p.to_string()).collect(),
            _ => f.warnings.iter().map(|p| p.to_string()).collect(),
        };
        let reason_ok = if got == "valid" {
            case.reason.is_empty()
        } else {
            texts.iter().any(|t| t.contains(&case.reason))
        };
        if got != case.verdict || !reason_ok {
            wrong.push(format!(
                "{}: expected {} ({:?}), got {got}: {texts:#?}",
                case.name, case.verdict, case.reason
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
