//! `seccompd validate` and `seccompd import` as a user runs them: exit codes, output with
//! locations, several documents per file, bases among the inputs, hostile inputs answered
//! quickly. Runs offline.

mod cli_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cli_support::seccompd;

fn temp_file(name: &str, content: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seccompd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("writing a temp file");
    path
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

const VALID: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;

#[test]
fn exit_codes() {
    let valid = temp_file("valid.json", VALID.as_bytes());
    let warn = temp_file("warn.json", br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
    let bad = temp_file(
        "bad.json",
        br#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":4095}]}"#,
    );
    assert_eq!(seccompd(&["validate", s(&valid)]).code, 0);
    let r = seccompd(&["validate", s(&valid), s(&warn)]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    r.assert_stdout_has("warning: defaultAction:");
    let r = seccompd(&["validate", s(&valid), s(&bad)]);
    assert_eq!(r.code, 1);
    r.assert_stdout_has("error: syscalls[0].errnoRet: 4095 is out of range");
    assert_eq!(
        seccompd(&["validate", s(&valid), "/nonexistent/profile.json"]).code,
        2
    );
    assert_eq!(seccompd(&["validate"]).code, 2);
    assert_eq!(seccompd(&["validate", "--arch", "vax", s(&valid)]).code, 2);
}

#[test]
fn arch_option_checks_for_other_nodes() {
    let s390 = temp_file(
        "s390.json",
        br#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_S390"],"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let r = seccompd(&["validate", "--arch", "amd64", s(&s390)]);
    assert_eq!(r.code, 1);
    r.assert_stdout_has("architectures[0]: SCMP_ARCH_S390 cannot be added");
    assert_eq!(seccompd(&["validate", "--arch", "s390x", s(&s390)]).code, 0);
}

#[test]
fn yaml_streams_and_bases_among_the_inputs() {
    let yaml = "apiVersion: seccompd.dev/v1alpha1
kind: SeccompProfile
metadata: {name: base}
spec:
  defaultAction: SCMP_ACT_ERRNO
  syscalls:
  - {names: [execve, read, write, close, openat, fstatfs, getdents64, futex], action: SCMP_ACT_ALLOW}
---
apiVersion: seccompd.dev/v1alpha1
kind: SeccompProfile
metadata: {name: child}
spec:
  baseProfileName: base
  defaultAction: SCMP_ACT_ERRNO
  syscalls:
  - {names: [mkdri], action: SCMP_ACT_ALLOW}
";
    let file = temp_file("stream.yaml", yaml.as_bytes());
    let r = seccompd(&["validate", s(&file)]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    r.assert_stdout_has("stream.yaml#1 (base): valid");
    r.assert_stdout_has("spec.syscalls[0].names[0]: \"mkdri\" is not a system call");
}

#[test]
fn hostile_inputs_are_answered_quickly() {
    let nested = "[".repeat(100_000);
    let huge = format!(
        "{{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{}]}}",
        vec![r#"{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}"#; 120_000].join(",")
    );
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    for (name, content) in [
        ("nested.json", nested.into_bytes()),
        ("huge.json", huge.into_bytes()),
        ("bomb.yaml", bomb.as_bytes().to_vec()),
        ("binary.json", (0..=255u8).cycle().take(100_000).collect()),
    ] {
        let file = temp_file(name, &content);
        let start = Instant::now();
        let r = seccompd(&["validate", s(&file)]);
        assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name}: {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn import_prints_a_seccomp_profile_that_validates() {
    let docker = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/profiles/docker-default.json"
    );
    let r = seccompd(&[
        "import",
        docker,
        "--name",
        "docker-default",
        "--arch",
        "arm64",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.assert_stdout_has("kind: SeccompProfile");
    r.assert_stdout_has("- SCMP_ARCH_AARCH64\n  - SCMP_ARCH_ARM");
    assert!(r.stderr.contains("note: archMap"), "{}", r.stderr);
    let out = temp_file("docker-arm64.yaml", r.stdout.as_bytes());
    let v = seccompd(&["validate", "--arch", "arm64", s(&out)]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    let bad = seccompd(&["import", docker, "--name", "Not_A_Name"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("metadata.name"), "{}", bad.stderr);
    assert_eq!(
        seccompd(&["import", "/nonexistent.json", "--name", "x"]).code,
        2
    );
}
