//! SeccompFloor on the cluster: one floor denying `socket(AF_ALG, ...)` reaches every profile
//! file on both nodes, a pod under an allow-everything profile and a pod under the built-in
//! `seccompd/default.json` get EPERM for an AF_ALG socket and still open a TCP socket
//! (`tests/programs/sockprobe.c`, compiled static here and copied into the pods), the floor's
//! status says `Installed 2/2`, an exempted profile never carries it, deleting it takes the
//! rule out of every file, and a profile the floor pushes over the kernel's instruction limit
//! is refused with the counts. Who may write floors is checked with real tokens.
//!
//! Every test deletes its floor before it ends: the other cluster tests expect files rendered
//! without floors.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use seccompd_api::SeccompFloor;
use seccompd_e2e::cluster::tokens::{client_with_token, dry_post, forbidden, token_bound_to_pod};
use seccompd_e2e::cluster::{client, eventually, kubectl_ok, node_profile_path, unique};
use seccompd_e2e::lifecycle::{
    allow_every_call_but, create_pod, create_profile, delete_pod, delete_profile, denylist,
    sleeper, wait_for_bytes, wait_running, wait_status,
};
use seccompd_profile::compile::{compile, native_arch};
use seccompd_profile::floor::{Floor, FloorSpec, merge};
use seccompd_profile::model::{Action, Arch, ArgCondition, Operator, ProfileSpec, SyscallRule};
use seccompd_profile::resolve::resolve;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

const AGENT_SELECTOR: &str = "app.kubernetes.io/name=seccompd,app.kubernetes.io/component=agent";

/// The Copy Fail floor, exempting `exempt`.
fn copy_fail(exempt: &[&str]) -> FloorSpec {
    serde_json::from_value(json!({
        "rules": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
            "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}]}],
        "exemptProfiles": exempt,
    }))
    .expect("a floor spec")
}

async fn create_floor(client: &Client, name: &str, spec: &FloorSpec) {
    let floors: Api<SeccompFloor> = Api::all(client.clone());
    let object: SeccompFloor = serde_json::from_value(json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompFloor",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a floor");
    floors
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create floor {name}: {e}"));
}

async fn delete_floor(client: &Client, name: &str) {
    let floors: Api<SeccompFloor> = Api::all(client.clone());
    floors
        .delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete floor {name}: {e}"));
}

/// Waits until the floor's status says `phase` with INSTALLED `installed`; returns it.
async fn wait_floor_status(name: &str, phase: &str, installed: &str) -> Value {
    eventually(
        &format!("floor {name} {phase} {installed}"),
        WAIT,
        || async {
            let out = kubectl_ok(&["get", "seccompfloor", name, "-o", "json"]);
            let floor: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
            let status = &floor["status"];
            if status["phase"] == phase && status["installed"] == installed {
                Ok(status.clone())
            } else {
                Err(status.to_string())
            }
        },
    )
    .await
}

/// Waits until profile `name`'s file on this node does (or does not) hold `text`.
async fn wait_file_holds(name: &str, text: &str, holds: bool) {
    let path = node_profile_path(name);
    eventually(
        &format!(
            "{} {} {text:?}",
            path.display(),
            if holds { "to hold" } else { "not to hold" }
        ),
        WAIT,
        || async {
            let content = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            if content.contains(text) == holds {
                Ok(())
            } else {
                Err(content)
            }
        },
    )
    .await
}

/// `tests/programs/sockprobe.c`, compiled static (the test image has no C library).
fn sockprobe() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("sockprobe"));
    std::fs::create_dir_all(&dir).expect("a directory for sockprobe");
    let binary = dir.join("sockprobe");
    let source = seccompd_e2e::cluster::repo_path("tests/programs/sockprobe.c");
    let status = Command::new("cc")
        .args(["-O1", "-static", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .expect("running cc (Debian: gcc, libc6-dev)");
    assert!(status.success(), "cc failed on {}", source.display());
    binary
}

/// What sockprobe says inside pod `pod` (copied in, run with `kubectl exec`: the process
/// runs under the container's seccomp filter).
fn probe_in(pod: &str, binary: &std::path::Path) -> String {
    kubectl_ok(&[
        "cp",
        binary.to_str().expect("utf-8 path"),
        &format!("default/{pod}:/sockprobe"),
    ]);
    kubectl_ok(&["exec", pod, "--", "/sockprobe"])
        .trim()
        .to_string()
}

/// A profile that allows every call by default and denies only `reboot`.
fn allow_all() -> ProfileSpec {
    denylist(&["reboot"])
}

#[tokio::test]
async fn a_floor_denies_af_alg_under_an_allow_all_profile_and_the_default_profile() {
    let client = client().await;
    let (floor, allow, exempt) = (unique("copy-fail"), unique("allow"), unique("exempt"));
    create_profile(&client, &allow, &allow_all()).await;
    create_profile(&client, &exempt, &allow_all()).await;
    wait_status(&allow, "Installed", "2/2", WAIT).await;
    wait_status(&exempt, "Installed", "2/2", WAIT).await;

    // A pod that starts before the floor keeps the filter it started with.
    let early = unique("early");
    create_pod(
        &client,
        &sleeper(&early, Some(&format!("seccompd/{allow}.json")), None),
    )
    .await;
    wait_running(&client, &early).await;

    // Docker's default allows socketcall itself: default.json is compared whole instead.
    let default_path = node_profile_path("default");
    let default_before = std::fs::read(&default_path).expect("seccompd/default.json on node1");
    create_floor(&client, &floor, &copy_fail(&[&exempt])).await;
    let status = wait_floor_status(&floor, "Installed", "2/2").await;
    let node1_counts = eventually("node1's pods started before the floor", WAIT, || async {
        let status = wait_floor_status(&floor, "Installed", "2/2").await;
        let node1 = status["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["nodeName"] == "node1")
            .cloned();
        match node1 {
            Some(n) if n["podsStartedBefore"].as_u64() >= Some(1) => Ok(n),
            _ => Err(status.to_string()),
        }
    })
    .await;
    assert_eq!(node1_counts["carried"], true, "{node1_counts}");
    assert!(
        status["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{status}"
    );
    // The profile's status follows its files: Installed again, now with the floor merged,
    // which it names; the exempted one names none.
    eventually(
        &format!("{allow}'s status to name the floor"),
        WAIT,
        || async {
            let status = wait_status(&allow, "Installed", "2/2", WAIT).await;
            if status["floors"] == json!([floor]) {
                Ok(())
            } else {
                Err(status.to_string())
            }
        },
    )
    .await;
    let exempt_status = wait_status(&exempt, "Installed", "2/2", WAIT).await;
    assert!(exempt_status.get("floors").is_none(), "{exempt_status}");
    wait_file_holds(&allow, "\"socketcall\"", true).await;
    assert_ne!(
        std::fs::read(&default_path).expect("default.json"),
        default_before,
        "the floor is merged into seccompd/default.json"
    );
    let exempt_file = std::fs::read_to_string(node_profile_path(&exempt)).expect("exempt's file");
    assert!(!exempt_file.contains("socketcall"), "{exempt_file}");

    let binary = sockprobe();
    let pods = [
        (
            unique("under-allow"),
            format!("seccompd/{allow}.json"),
            "af_alg=EPERM af_alg_high=EPERM tcp=ok",
        ),
        (
            unique("under-default"),
            "seccompd/default.json".to_string(),
            "af_alg=EPERM af_alg_high=EPERM tcp=ok",
        ),
    ];
    for (pod, localhost, _) in &pods {
        create_pod(&client, &sleeper(pod, Some(localhost), None)).await;
    }
    let exempt_pod = unique("under-exempt");
    let exempt_localhost = format!("seccompd/{exempt}.json");
    create_pod(
        &client,
        &sleeper(&exempt_pod, Some(&exempt_localhost), None),
    )
    .await;
    for (pod, _, want) in &pods {
        wait_running(&client, pod).await;
        assert_eq!(probe_in(pod, &binary), *want, "{pod}");
    }
    wait_running(&client, &exempt_pod).await;
    let exempted = probe_in(&exempt_pod, &binary);
    assert!(
        exempted.ends_with("tcp=ok") && !exempted.contains("af_alg=EPERM"),
        "the exempted profile never carries the floor: {exempted}"
    );

    delete_floor(&client, &floor).await;
    wait_file_holds(&allow, "\"socketcall\"", false).await;
    // Without the floor, default.json is again exactly what it was before it.
    wait_for_bytes(&default_path, &default_before, WAIT).await;
    for pod in pods.iter().map(|p| &p.0).chain([&exempt_pod, &early]) {
        delete_pod(&client, pod).await;
    }
    delete_profile(&client, &allow).await;
    delete_profile(&client, &exempt).await;
}

/// An allowlist on three ABIs: every call outright, and `socket` also in `count` rules of one
/// condition each (`type == 1000 + i`). Each of those the floor narrows into one rule per
/// family it leaves between its denied ones.
fn socket_rules(count: u64) -> ProfileSpec {
    let mut spec = denylist(&[]);
    spec.default_action = Action::Errno;
    spec.architectures = vec![Arch::X86_64, Arch::X86, Arch::X32];
    spec.syscalls = allow_every_call_but(&[]);
    spec.syscalls.extend((0..count).map(|i| SyscallRule {
        names: vec!["socket".into()],
        action: Action::Allow,
        errno_ret: None,
        args: vec![ArgCondition {
            index: 1,
            value: 1000 + i,
            value_two: 0,
            op: Operator::Equal,
        }],
    }));
    spec
}

/// The Copy Fail floor plus 60 more denied socket families, every other number from 100:
/// a heavy floor, of the kind that pushes a profile over the kernel's limit.
fn heavy_floor() -> FloorSpec {
    let mut spec = copy_fail(&[]);
    let first = spec.rules[0].clone();
    spec.rules.extend((0..60u64).map(|j| {
        let mut rule = first.clone();
        rule.args[0].value = 100 + 2 * j;
        rule
    }));
    spec
}

/// The number of `socket` rules for which [`socket_rules`] compiles on this machine and the
/// floor pushes it over (the kernel's instruction limit, or the compile-weight bound), as this
/// machine's libseccomp counts; a node's counts the same way.
fn rules_the_floor_pushes_over(floor: &FloorSpec) -> u64 {
    let arch = native_arch().expect("a known architecture");
    let verdicts = |count: u64| {
        let alone = resolve("p", &socket_rules(count), |_| None).expect("resolves");
        let floors = [Floor {
            name: "f",
            spec: floor,
        }];
        let merged = merge(alone.clone(), "p", &floors).expect("merges").profile;
        (
            compile(&alone, arch).is_ok(),
            compile(&merged, arch).is_err(),
        )
    };
    let (mut low, mut high) = (0, 100);
    assert!(
        verdicts(high).1,
        "with the floor, {high} rules are over the limit"
    );
    while low < high {
        let mid = (low + high) / 2;
        if verdicts(mid).1 {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    assert_eq!(
        verdicts(low),
        (true, true),
        "{low} rules: alone the profile fits, with the floor it does not"
    );
    low
}

#[tokio::test]
async fn a_profile_the_floor_pushes_over_the_instruction_limit_is_refused_with_the_counts() {
    let client = client().await;
    let (floor, big) = (unique("copy-fail"), unique("big"));
    let spec = heavy_floor();
    let count = rules_the_floor_pushes_over(&spec);
    create_profile(&client, &big, &socket_rules(count)).await;
    wait_status(&big, "Installed", "2/2", WAIT).await;

    create_floor(&client, &floor, &spec).await;
    let status = eventually(
        &format!("{big} to be refused with the floor"),
        WAIT,
        || async {
            let out = kubectl_ok(&["get", "seccompprofile", &big, "-o", "json"]);
            let profile: Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
            let status = profile["status"].clone();
            let reasons = status["nodes"].to_string();
            if reasons.contains(&format!("SeccompFloor {floor}")) {
                Ok(status)
            } else {
                Err(status.to_string())
            }
        },
    )
    .await;
    let reasons = status["nodes"].to_string();
    assert!(
        reasons.contains("BPF instructions") || reasons.contains("argument conditions"),
        "the refusal gives the counts: {status}"
    );
    let floor_status = wait_floor_status(&floor, "Pending", "0/2").await;
    assert!(
        floor_status["nodes"].to_string().contains(&big),
        "{floor_status}"
    );

    delete_floor(&client, &floor).await;
    wait_status(&big, "Installed", "2/2", WAIT).await;
    delete_profile(&client, &big).await;
}

/// Floors are an administrator's: a namespace user's token, and a stolen agent token bound to
/// its pod, may not create one (RBAC), and a profile cannot exempt itself (no field of a
/// SeccompProfile names a floor: the API server refuses one).
#[tokio::test]
async fn only_an_administrator_writes_floors() {
    let floor: SeccompFloor = serde_json::from_value(json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompFloor",
        "metadata": {"name": unique("mine")},
        "spec": copy_fail(&[]),
    }))
    .expect("a floor");
    let user_token = kubectl_ok(&[
        "-n",
        "default",
        "create",
        "token",
        "default",
        "--duration",
        "10m",
    ]);
    let agent_token = token_bound_to_pod("seccompd-agent", AGENT_SELECTOR, "node1");
    for (who, token) in [
        ("a namespace user", user_token),
        ("node1's agent", agent_token),
    ] {
        let as_them: Api<SeccompFloor> = Api::all(client_with_token(token.trim()).await);
        forbidden(
            &format!("{who} creating a floor"),
            as_them.create(&dry_post(), &floor).await,
        );
    }
    let sneaky = json!({
        "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
        "metadata": {"name": unique("sneaky")},
        "spec": {"defaultAction": "SCMP_ACT_ALLOW", "exemptFromFloors": true},
    });
    let out = seccompd_e2e::cluster::kubectl_stdin(
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        &sneaky.to_string(),
    );
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("exemptFromFloors"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
