use std::collections::BTreeMap;

use super::*;
use crate::compile::compile;
use crate::model::{Arch, Mode};

const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;

fn cond(index: u32, op: Operator, value: u64) -> ArgCondition {
    ArgCondition {
        index,
        value,
        value_two: 0,
        op,
    }
}

fn rule(names: &[&str], action: Action, args: Vec<ArgCondition>) -> SyscallRule {
    SyscallRule {
        names: names.iter().map(|&n| n.into()).collect(),
        action,
        errno_ret: None,
        args,
    }
}

fn profile(default_action: Action, syscalls: Vec<SyscallRule>) -> OciProfile {
    OciProfile {
        default_action,
        default_errno_ret: None,
        architectures: vec![Arch::X86_64, Arch::X86, Arch::X32],
        flags: vec![],
        syscalls,
    }
}

/// An allowlist whose one rule allows `socket` when `args` hold.
fn allows_socket(args: Vec<ArgCondition>) -> OciProfile {
    profile(Action::Errno, vec![rule(&["socket"], Action::Allow, args)])
}

/// The Copy Fail floor: socket(AF_ALG, ...) fails with EPERM.
fn copy_fail() -> FloorSpec {
    one_rule(
        &["socket"],
        Action::Errno,
        Some(1),
        vec![cond(0, Operator::Equal, AF_ALG)],
    )
}

/// Whether `condition` holds for argument value `v` (as the kernel filter compares).
fn holds(condition: &ArgCondition, v: u64) -> bool {
    let c = condition.value;
    match condition.op {
        Operator::NotEqual => v != c,
        Operator::LessThan => v < c,
        Operator::LessOrEqual => v <= c,
        Operator::Equal => v == c,
        Operator::GreaterOrEqual => v >= c,
        Operator::GreaterThan => v > c,
        Operator::MaskedEqual => v & c == condition.value_two,
    }
}

/// A floor of one rule.
fn one_rule(
    names: &[&str],
    action: Action,
    errno_ret: Option<u32>,
    args: Vec<ArgCondition>,
) -> FloorSpec {
    FloorSpec {
        rules: vec![FloorRule {
            names: names.iter().map(|&n| n.into()).collect(),
            action,
            errno_ret,
            args,
        }],
        exempt_profiles: vec![],
    }
}

fn floor<'a>(name: &'a str, spec: &'a FloorSpec) -> Floor<'a> {
    Floor { name, spec }
}

fn merged(p: OciProfile, floors: &[Floor<'_>]) -> OciProfile {
    merge(p, "p", floors).unwrap().profile
}

/// The rules that mention `name`, as (action, conditions).
fn rules_for(p: &OciProfile, name: &str) -> Vec<(Action, Vec<ArgCondition>)> {
    p.syscalls
        .iter()
        .filter(|r| r.names.iter().any(|n| n == name))
        .map(|r| (r.action, r.args.clone()))
        .collect()
}

/// The actions of `p`'s rules on `name` that match a call with arguments `args`.
fn matching(p: &OciProfile, name: &str, args: [u64; 6]) -> Vec<Action> {
    p.syscalls
        .iter()
        .filter(|r| r.names.iter().any(|n| n == name))
        .filter(|r| r.args.iter().all(|c| holds(c, args[c.index as usize])))
        .map(|r| r.action)
        .collect()
}

/// What the filter does with `name(args)`: the matching rules' action, or the default. A
/// call that a rule letting it run and a denying rule both match would leave the outcome to
/// libseccomp: the merge must never write one.
fn verdict(p: &OciProfile, name: &str, args: [u64; 6]) -> Action {
    let found = matching(p, name, args);
    let runs = found.iter().any(|a| crate::validate::runs(*a));
    let denies = found.iter().any(|a| !crate::validate::runs(*a));
    assert!(
        !(runs && denies),
        "{name}{args:?}: allowed and denied at once: {found:?}"
    );
    found.first().copied().unwrap_or(p.default_action)
}

/// [`verdict`] of `socket(family, ...)`.
fn socket(p: &OciProfile, family: u64) -> Action {
    verdict(p, "socket", [family, 0, 0, 0, 0, 0])
}

/// AF_ALG with a high bit set: the kernel takes the low 32 bits, so it is AF_ALG too.
const AF_ALG_HIGH: u64 = (1 << 32) | AF_ALG;

#[test]
fn a_floor_is_added_to_a_profile_that_allows_by_default_with_socketcall_closed() {
    let spec = copy_fail();
    let out = merge(
        profile(Action::Allow, vec![]),
        "p",
        &[floor("copy-fail", &spec)],
    )
    .unwrap();
    for (family, want) in [
        (AF_ALG, Action::Errno),
        (AF_ALG_HIGH, Action::Errno),
        (2, Action::Allow),
        (1 << 32 | 2, Action::Allow),
    ] {
        assert_eq!(socket(&out.profile, family), want, "family {family:#x}");
    }
    assert_eq!(
        rules_for(&out.profile, SOCKETCALL),
        [(Action::Errno, vec![])]
    );
    assert_eq!(
        out.floors,
        [FloorStamp {
            name: "copy-fail".into(),
            digest: rules_digest(&spec.rules)
        }]
    );
}

#[test]
fn an_allow_never_overrides_the_floor_it_is_narrowed_around_it() {
    let spec = copy_fail();
    let p = profile(
        Action::Errno,
        vec![rule(
            &["read", "socket", "socketcall"],
            Action::Allow,
            vec![],
        )],
    );
    let out = merged(p, &[floor("copy-fail", &spec)]);
    // read is untouched; socket is allowed for every family but AF_ALG; socketcall is only
    // denied.
    assert_eq!(rules_for(&out, "read"), [(Action::Allow, vec![])]);
    // Families are ints: a value with high bits set is no family the allow lets through, and
    // falls to the default.
    for (family, want) in [
        (AF_ALG, Action::Errno),
        (AF_ALG_HIGH, Action::Errno),
        (2, Action::Allow),
        (AF_ALG + 1, Action::Allow),
        (u64::from(u32::MAX), Action::Allow),
        (1 << 32 | 2, Action::Errno),
    ] {
        assert_eq!(socket(&out, family), want, "family {family:#x}");
    }
    assert_eq!(rules_for(&out, SOCKETCALL), [(Action::Errno, vec![])]);
}

#[test]
fn an_allow_with_its_own_condition_on_the_argument_keeps_it_and_leaves_the_floors_value_out() {
    // Docker's default: socket for every family but AF_VSOCK.
    let spec = copy_fail();
    let p = allows_socket(vec![cond(0, Operator::NotEqual, AF_VSOCK)]);
    let out = merged(p, &[floor("copy-fail", &spec)]);
    for (family, want) in [
        (AF_ALG, Action::Errno),
        (AF_ALG_HIGH, Action::Errno),
        (AF_VSOCK, Action::Errno),
        (2, Action::Allow),
        (AF_ALG + 1, Action::Allow),
        (AF_VSOCK + 1, Action::Allow),
    ] {
        assert_eq!(socket(&out, family), want, "family {family:#x}");
    }
}

#[test]
fn conditions_on_other_arguments_are_kept_and_each_floor_condition_is_left_out_on_its_own() {
    let spec = one_rule(
        &["socket"],
        Action::KillProcess,
        None,
        vec![
            cond(0, Operator::Equal, AF_ALG),
            cond(1, Operator::Equal, 5),
        ],
    );
    let own = cond(2, Operator::Equal, 0);
    let p = profile(
        Action::Errno,
        vec![rule(&["socket"], Action::Allow, vec![own.clone()])],
    );
    let out = merged(p, &[floor("f", &spec)]);
    // NOT (a AND b) = (NOT a) OR (NOT b): the allow keeps whatever misses either condition,
    // and its own condition still holds.
    for (args, want) in [
        ([AF_ALG, 5, 0, 0, 0, 0], Action::KillProcess),
        ([AF_ALG, 6, 0, 0, 0, 0], Action::Allow),
        ([2, 5, 0, 0, 0, 0], Action::Allow),
        ([2, 5, 1, 0, 0, 0], Action::Errno),
    ] {
        assert_eq!(verdict(&out, "socket", args), want, "{args:?}");
    }
    assert_eq!(own.index, 2);
}

#[test]
fn an_unconditional_floor_rule_takes_its_calls_out_of_every_allow() {
    let spec = one_rule(&["keyctl"], Action::Errno, None, vec![]);
    let p = profile(
        Action::Errno,
        vec![
            rule(&["keyctl"], Action::Allow, vec![]),
            rule(&["read", "keyctl"], Action::Log, vec![]),
        ],
    );
    let out = merged(p, &[floor("f", &spec)]);
    assert_eq!(rules_for(&out, "keyctl"), [(Action::Errno, vec![])]);
    assert_eq!(rules_for(&out, "read"), [(Action::Log, vec![])]);
    assert!(rules_for(&out, SOCKETCALL).is_empty(), "not a socket call");
}

#[test]
fn the_profiles_own_denials_stay_as_written() {
    let spec = copy_fail();
    // A kill of every socket call is stricter than the floor: nothing is added beside it.
    let p = profile(
        Action::Allow,
        vec![rule(&["socket", "socketcall"], Action::KillProcess, vec![])],
    );
    let out = merged(p.clone(), &[floor("copy-fail", &spec)]);
    assert_eq!(out.syscalls, p.syscalls);
    // A denial of exactly the floor's calls with another errno is kept, not doubled.
    let mut own = rule(
        &["socket"],
        Action::Errno,
        vec![cond(0, Operator::Equal, AF_ALG)],
    );
    own.errno_ret = Some(97);
    let out = merged(
        profile(Action::Allow, vec![own.clone()]),
        &[floor("copy-fail", &spec)],
    );
    assert_eq!(out.syscalls[0], own);
    assert_eq!(socket(&out, AF_ALG), Action::Errno);
    // The floor still adds what the profile's rule misses: AF_ALG with high bits.
    assert_eq!(socket(&out, AF_ALG_HIGH), Action::Errno);
}

#[test]
fn an_exempted_profile_carries_no_floor_and_is_unchanged() {
    let mut spec = copy_fail();
    spec.exempt_profiles = vec!["debug-tools".into()];
    let p = profile(Action::Allow, vec![]);
    let out = merge(p.clone(), "debug-tools", &[floor("copy-fail", &spec)]).unwrap();
    assert_eq!(out.profile, p);
    assert!(out.floors.is_empty());
    // Any other profile carries it.
    assert_eq!(
        merge(p, "web", &[floor("copy-fail", &spec)])
            .unwrap()
            .floors
            .len(),
        1
    );
}

#[test]
fn several_floors_combine_in_the_order_of_their_names() {
    let alg = copy_fail();
    let vsock = one_rule(
        &["socket"],
        Action::Errno,
        None,
        vec![cond(0, Operator::Equal, AF_VSOCK)],
    );
    let p = profile(
        Action::Errno,
        vec![rule(&["socket"], Action::Allow, vec![])],
    );
    let one = merge(
        p.clone(),
        "p",
        &[floor("vsock", &vsock), floor("copy-fail", &alg)],
    )
    .unwrap();
    let other = merge(p, "p", &[floor("copy-fail", &alg), floor("vsock", &vsock)]).unwrap();
    assert_eq!(one, other, "the order the floors arrive in does not matter");
    let names: Vec<&str> = one.floors.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["copy-fail", "vsock"]);
    for (family, want) in [
        (AF_ALG, Action::Errno),
        (AF_VSOCK, Action::Errno),
        (1 << 32 | AF_VSOCK, Action::Errno),
        (AF_ALG + 1, Action::Allow),
        (AF_VSOCK + 1, Action::Allow),
        (2, Action::Allow),
    ] {
        assert_eq!(socket(&one.profile, family), want, "family {family:#x}");
    }
    // socketcall is denied once, by the first floor.
    assert_eq!(rules_for(&one.profile, SOCKETCALL).len(), 1);
}

#[test]
fn an_audited_profile_logs_the_floors_denials_like_its_own() {
    let spec = copy_fail();
    let floors = [floor("copy-fail", &spec)];
    let mut allow_all = ProfileSpec {
        base_profile_name: None,
        mode: Mode::Audit,
        default_action: Action::Allow,
        default_errno_ret: None,
        architectures: vec![],
        flags: vec![],
        syscalls: vec![rule(&["mkdir"], Action::Errno, vec![])],
    };
    let out = resolve_with_floors("p", &allow_all, |_| None, &floors).unwrap();
    assert_eq!(socket(&out.profile, AF_ALG), Action::Log);
    assert_eq!(socket(&out.profile, 2), Action::Allow);
    assert_eq!(rules_for(&out.profile, "mkdir"), [(Action::Log, vec![])]);
    assert_eq!(out.floors.len(), 1);
    // An allowlist in Audit: the narrowed allow stays, so AF_ALG falls to the logged default.
    allow_all.default_action = Action::Errno;
    allow_all.syscalls = vec![rule(&["socket"], Action::Allow, vec![])];
    let out = resolve_with_floors("p", &allow_all, |_| None, &floors).unwrap();
    assert_eq!(out.profile.default_action, Action::Log);
    assert_eq!(socket(&out.profile, AF_ALG), Action::Log);
    assert_eq!(socket(&out.profile, 2), Action::Allow);
    // Enforced, the same profile denies.
    allow_all.mode = Mode::Enforce;
    let out = resolve_with_floors("p", &allow_all, |_| None, &floors).unwrap();
    assert_eq!(socket(&out.profile, AF_ALG), Action::Errno);
    assert_eq!(socket(&out.profile, 2), Action::Allow);
}

#[test]
fn a_long_rest_between_two_values_is_written_as_aligned_masked_blocks_and_compiles() {
    let spec = one_rule(
        &["socket"],
        Action::Errno,
        None,
        vec![cond(0, Operator::Equal, 100)],
    );
    let p = allows_socket(vec![cond(0, Operator::GreaterOrEqual, 10)]);
    let out = merged(p, &[floor("f", &spec)]);
    let masked = |mask: u64, start: u64| ArgCondition {
        index: 0,
        value: !mask,
        value_two: start,
        op: Operator::MaskedEqual,
    };
    // [10, 99] in blocks of 2, 4, 16, 32, 32 and 4 values, then blocks from 101 to the
    // largest 32-bit value.
    assert_eq!(
        rules_for(&out, "socket")[..6],
        [
            (Action::Allow, vec![masked(1, 10)]),
            (Action::Allow, vec![masked(3, 12)]),
            (Action::Allow, vec![masked(15, 16)]),
            (Action::Allow, vec![masked(31, 32)]),
            (Action::Allow, vec![masked(31, 64)]),
            (Action::Allow, vec![masked(3, 96)]),
        ]
    );
    // The blocks hold exactly the interval, whatever its ends.
    for (lo, hi) in [
        (10, 99),
        (0, 5),
        (1, u64::MAX - 1),
        (u64::MAX - 40, u64::MAX),
        (7, 7),
    ] {
        let blocks = aligned_blocks(lo, hi);
        let size = |mask: u64| u128::from(!mask) + 1;
        let total: u128 = blocks.iter().map(|(m, _)| size(*m)).sum();
        assert_eq!(total, u128::from(hi) - u128::from(lo) + 1, "{lo}..={hi}");
        let mut next = u128::from(lo);
        for (mask, start) in blocks {
            assert_eq!(u128::from(start), next);
            assert_eq!(start & !mask, 0, "aligned");
            next += size(mask);
        }
    }
    assert!(compile(&out, Arch::X86_64).is_ok());
    // A second floor narrows the blocks the first one left.
    let more = one_rule(
        &["socket"],
        Action::Errno,
        None,
        vec![cond(0, Operator::Equal, 40)],
    );
    let twice = merged(out, &[floor("more", &more)]);
    // What the allow rules let through, value by value, is the first allow minus both floors.
    let allows = |v: u64| {
        rules_for(&twice, "socket")
            .iter()
            .any(|(a, conds)| *a == Action::Allow && conds.iter().all(|c| holds(c, v)))
    };
    for v in (0..=300).chain([u64::MAX - 1, u64::MAX]) {
        let family = v <= u64::from(u32::MAX);
        assert_eq!(
            allows(v),
            family && v >= 10 && v != 100 && v != 40,
            "family {v}"
        );
    }
}

#[test]
fn a_rule_with_its_own_masked_condition_on_the_floors_argument_is_refused_naming_both() {
    let spec = copy_fail();
    // Not one aligned block: bits 0 to 7 equal 2, whatever the others.
    let own = ArgCondition {
        index: 0,
        value: 0xff,
        value_two: 2,
        op: Operator::MaskedEqual,
    };
    let p = profile(
        Action::Errno,
        vec![
            rule(&["read"], Action::Allow, vec![]),
            rule(&["socket"], Action::Allow, vec![own]),
        ],
    );
    let err = merge(p, "p", &[floor("copy-fail", &spec)]).unwrap_err();
    assert_eq!((err.profile_rule, err.floor_rule, err.index), (1, 0, 0));
    let text = err.to_string();
    assert!(text.starts_with("spec.syscalls[1]: "), "{text}");
    for part in [
        r#""copy-fail" (rules[0])"#,
        "SCMP_CMP_MASKED_EQ",
        "exempt this profile",
    ] {
        assert!(text.contains(part), "{part:?} missing: {text}");
    }
}

#[test]
fn a_rule_runc_splits_is_narrowed_as_runc_adds_it() {
    // Two conditions on one argument: runc adds one rule per condition (an OR).
    let spec = copy_fail();
    let p = allows_socket(vec![
        cond(0, Operator::Equal, 2),
        cond(0, Operator::Equal, AF_ALG),
    ]);
    let out = merged(p, &[floor("copy-fail", &spec)]);
    assert_eq!(
        rules_for(&out, "socket")[0],
        (Action::Allow, vec![cond(0, Operator::Equal, 2)])
    );
    assert_eq!(socket(&out, AF_ALG), Action::Errno);
    assert_eq!(socket(&out, 2), Action::Allow);
}

#[test]
fn the_stamp_follows_the_rules_not_the_exemptions() {
    let spec = copy_fail();
    let mut exempting = copy_fail();
    exempting.exempt_profiles = vec!["x".into()];
    assert_eq!(floor("a", &spec).stamp(), floor("a", &exempting).stamp());
    let mut other = copy_fail();
    other.rules[0].errno_ret = Some(13);
    assert_ne!(floor("a", &spec).stamp(), floor("a", &other).stamp());
}

#[test]
fn a_merged_profile_compiles_on_every_architecture_it_lists() {
    let spec = copy_fail();
    let p = profile(
        Action::Errno,
        vec![
            rule(
                &["read", "write", "socket", "socketcall"],
                Action::Allow,
                vec![],
            ),
            rule(
                &["socket"],
                Action::Allow,
                vec![cond(0, Operator::NotEqual, AF_VSOCK)],
            ),
        ],
    );
    let out = merged(p, &[floor("copy-fail", &spec)]);
    let compiled = compile(&out, Arch::X86_64).unwrap();
    assert!(compiled.instructions < 400, "{compiled:?}");
}

fn findings(spec: &FloorSpec) -> Vec<String> {
    validate_floor("copy-fail", spec)
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_valid_floor_has_no_findings() {
    assert_eq!(
        validate_floor("copy-fail", &copy_fail()),
        Findings::default()
    );
}

#[test]
fn floor_validation_names_the_field_and_the_fix() {
    let mut bad = copy_fail();
    bad.rules[0].names = vec!["sockett".into(), "execve".into()];
    bad.rules[0].action = Action::Allow;
    bad.rules[0].args = vec![
        ArgCondition {
            index: 0,
            value: 1,
            value_two: 1,
            op: Operator::MaskedEqual,
        },
        cond(0, Operator::Equal, 2),
        cond(7, Operator::Equal, 2),
    ];
    bad.exempt_profiles = vec!["Not A Name".into()];
    let errors = findings(&bad);
    let expected: BTreeMap<&str, &str> = BTreeMap::from([
        ("spec.rules[0].names[0]", r#"did you mean "socket"?"#),
        ("spec.rules[0].action", "does not deny"),
        ("spec.rules[0].errnoRet", "only used with SCMP_ACT_ERRNO"),
        ("spec.rules[0].args[0].op", "use SCMP_CMP_EQ"),
        ("spec.rules[0].args[1].index", "one condition per argument"),
        ("spec.rules[0].args[2].index", "index 0 to 5"),
        ("spec.exemptProfiles[0]", "is not a SeccompProfile name"),
    ]);
    for (path, part) in &expected {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(part)),
            "{path}: {part:?} missing from {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");

    let mut execve = copy_fail();
    execve.rules[0].names = vec!["execve".into()];
    execve.rules[0].args.clear();
    execve.rules[0].errno_ret = Some(0);
    let errors = findings(&execve);
    assert!(
        errors[0].starts_with("spec.rules[0].names[0]: denying execve"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("spec.rules[0].errnoRet: 0 is out of range"),
        "{errors:?}"
    );

    let empty = FloorSpec::default();
    assert!(findings(&empty)[0].starts_with("spec.rules: is empty"));
    assert!(
        validate_floor("Bad_Name", &copy_fail()).errors[0]
            .to_string()
            .starts_with("metadata.name: ")
    );
}
