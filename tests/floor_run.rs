//! The floor's merge judged by the kernel, not by the shape of the rules: a profile with a
//! SeccompFloor merged in (as a node renders it) runs `programs/sockprobe.c` under `seccompd
//! run` on this host, and the AF_ALG socket fails with EPERM while a TCP socket opens. The same
//! profiles without the floor do not fail AF_ALG with EPERM: the floor, not the profile, denies
//! it. Runs offline; needs `cc`.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::seccompd;
use seccompd_e2e::lifecycle::allow_every_call_but;
use seccompd_profile::floor::{Floor, FloorRule, FloorSpec, merge};
use seccompd_profile::model::{Action, ArgCondition, Operator, SyscallRule};
use seccompd_profile::render::{OciProfile, render};

/// Compiles `programs/sockprobe.c` into `dir`.
fn sockprobe(dir: &Path) -> PathBuf {
    cli_support::compile_program(dir, "sockprobe.c", &["-O1"])
}

fn copy_fail() -> FloorSpec {
    FloorSpec {
        rules: vec![FloorRule {
            names: vec!["socket".into()],
            action: Action::Errno,
            errno_ret: Some(1),
            args: vec![ArgCondition {
                index: 0,
                value: 38,
                value_two: 0,
                op: Operator::Equal,
            }],
        }],
        exempt_profiles: vec![],
    }
}

/// An allowlist that allows every system call this libseccomp knows by name, `socket` among
/// them without conditions, plus `socket` rules of its own.
fn allow_everything_named(socket: Vec<SyscallRule>) -> OciProfile {
    let mut syscalls = allow_every_call_but(&["socket"]);
    syscalls.extend(socket);
    OciProfile {
        default_action: Action::Errno,
        default_errno_ret: Some(38),
        architectures: vec![],
        flags: vec![],
        syscalls,
    }
}

fn socket_rule(args: Vec<ArgCondition>) -> SyscallRule {
    SyscallRule {
        names: vec!["socket".into()],
        action: Action::Allow,
        errno_ret: None,
        args,
    }
}

/// How sockprobe ran under `profile` (written as a node's file).
fn probe(dir: &Path, prog: &Path, name: &str, profile: &OciProfile) -> cli_support::Run {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, render(profile).bytes).unwrap();
    let run = seccompd(&[
        "run",
        "--profile",
        file.to_str().unwrap(),
        "--",
        prog.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{name}: {}", run.stderr);
    run
}

#[test]
fn the_kernel_denies_what_the_floor_denies_and_runs_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let prog = sockprobe(dir.path());
    let floor = copy_fail();
    let floors = [Floor {
        name: "copy-fail",
        spec: &floor,
    }];
    let mut packet = copy_fail();
    packet.rules[0].args[0].value = 17;
    let unfiltered = String::from_utf8(Command::new(&prog).output().unwrap().stdout).unwrap();
    assert!(
        unfiltered.contains("tcp=ok") && !unfiltered.contains("af_alg=EPERM"),
        "{unfiltered}"
    );
    let not_vsock = ArgCondition {
        index: 0,
        value: 40,
        value_two: 0,
        op: Operator::NotEqual,
    };
    let cases = [
        // Allows every call but a few by default.
        (
            "denylist",
            OciProfile {
                default_action: Action::Allow,
                default_errno_ret: None,
                architectures: vec![],
                flags: vec![],
                syscalls: vec![SyscallRule {
                    names: vec!["reboot".into()],
                    action: Action::Errno,
                    errno_ret: None,
                    args: vec![],
                }],
            },
        ),
        // Allows socket outright: libseccomp alone would let that swallow the floor's rule.
        (
            "allowlist",
            allow_everything_named(vec![socket_rule(vec![])]),
        ),
        // Allows socket for every family but AF_VSOCK, as Docker's default does.
        (
            "docker-like",
            allow_everything_named(vec![socket_rule(vec![not_vsock])]),
        ),
    ];
    for (name, profile) in cases {
        let without = probe(dir.path(), &prog, &format!("{name}-alone"), &profile).stdout;
        assert!(
            without.contains("tcp=ok") && !without.contains("af_alg=EPERM"),
            "{name} without the floor: {without}"
        );
        let merged = merge(profile.clone(), name, &floors).unwrap().profile;
        probe(dir.path(), &prog, name, &merged)
            .assert_stdout_has("af_alg=EPERM af_alg_high=EPERM tcp=ok\n");
        // With a second floor on AF_PACKET (17) too, the families the allow keeps between
        // the two (18 to 37) are written as masked blocks; the kernel still says the same.
        let both = [
            floors[0],
            Floor {
                name: "packet",
                spec: &packet,
            },
        ];
        let merged = merge(profile, name, &both).unwrap().profile;
        probe(dir.path(), &prog, &format!("{name}-two"), &merged)
            .assert_stdout_has("af_alg=EPERM af_alg_high=EPERM tcp=ok\n");
    }
}
