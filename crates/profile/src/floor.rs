//! The cluster floor: deny rules that every profile seccompd installs carries, merged into each
//! profile when it is rendered, so that one object protects every pod from a kernel bug
//! reachable through one system call.
//!
//! The merge is deny-wins. A floor rule's calls (with its argument conditions) get the floor's
//! action whatever the profile says: a profile rule that would let such a call run (allow, log,
//! trace) is narrowed so that it no longer matches it, and the floor's rule is added. The
//! narrowing is done here, on the rules, rather than left to the order of rules in libseccomp,
//! because libseccomp lets an unconditional rule swallow every conditional rule for the same
//! call, and runc skips a rule whose action equals the default: neither would deny anything
//! in a profile that allows `socket` outright. A profile's own denials stay as written (a floor
//! never turns a kill into an errno), and a floor never allows anything.
//!
//! Floors are merged into the profile as if it were enforced; the profile's mode applies
//! afterwards, so an audited profile logs a floor's denials like its own.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::limits::{
    MAX_ARGS_PER_RULE, MAX_ERRNO, MAX_FLOOR_EXEMPTIONS, MAX_FLOOR_NAME_LEN, MAX_FLOOR_RULES,
    MAX_NAMES_PER_RULE, MAX_PROFILE_NAME_LEN, MAX_SPLIT_VALUES,
};
use super::model::{Action, ArgCondition, Operator, ProfileSpec, SyscallName, SyscallRule};
use super::render::{ContentHash, OciProfile};
use super::resolve::{ResolveError, in_mode, resolve_enforced};
use super::validate::{Findings, check_arg, check_name, is_dns_subdomain};

/// The calls that 32-bit programs on x86, s390 and some other ABIs can also make through the
/// `socketcall` multiplexer, whose own arguments are only a call number and a pointer: a
/// filter cannot see the socket arguments behind it. A floor rule on any of them therefore also
/// denies `socketcall` (as Docker's default profile does), or the rule could be bypassed there.
pub const SOCKETCALL_MULTIPLEXED: &[&str] = &[
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "send",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socket",
    "socketpair",
];

/// The multiplexer [`SOCKETCALL_MULTIPLEXED`] calls go through.
pub const SOCKETCALL: &str = "socketcall";

/// What a SeccompFloor holds: deny rules every profile seccompd installs must carry, and the
/// profiles an administrator exempts from them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FloorSpec {
    /// Deny rules merged into every SeccompProfile (and the built-in seccompd/default.json)
    /// on every node. A floor rule wins over the profile: a call it matches is denied even
    /// where the profile allows it. A profile in Audit mode logs the call instead. A rule on a
    /// socket call (socket, connect, ...) also denies `socketcall`, through which 32-bit
    /// programs could make the call without the rule seeing its arguments.
    pub rules: Vec<FloorRule>,

    /// Names of SeccompProfiles that do not carry this floor. Only the floor can exempt a
    /// profile: nothing in a SeccompProfile opts out of a floor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exempt_profiles: Vec<String>,
}

/// One deny rule of a floor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FloorRule {
    /// System call names as the kernel knows them, lowercase, for example `socket`. Every name
    /// must be a real system call: a misspelt name would protect nothing.
    #[schemars(with = "Vec<String>")]
    pub names: Vec<SyscallName>,

    /// What happens to a matching call: SCMP_ACT_ERRNO (fails with errnoRet, EPERM when
    /// unset), SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD (SCMP_ACT_KILL) or SCMP_ACT_TRAP.
    /// A floor only denies.
    pub action: Action,

    /// errno returned when `action` is SCMP_ACT_ERRNO (1 to 4094; EPERM=1 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,

    /// Conditions on the call's arguments, at most one per argument; all must hold for the
    /// rule to apply. For example `{index: 0, op: SCMP_CMP_EQ, value: 38}` on `socket` matches
    /// AF_ALG sockets only. An SCMP_CMP_EQ with a value below 2^32 compares the argument's low
    /// 32 bits, as the kernel reads an int argument (a value with high bits set is the same
    /// family to the kernel). SCMP_CMP_MASKED_EQ is not accepted: its opposite, which the
    /// profile's allow rules are narrowed by, is no set of comparisons seccompd can write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCondition>,
}

impl FloorRule {
    fn as_syscall_rule(&self, names: Vec<SyscallName>) -> SyscallRule {
        SyscallRule {
            names,
            action: self.action,
            errno_ret: self.errno_ret,
            args: self.args.iter().map(denied_as_written).collect(),
        }
    }
}

/// Whether a floor condition is an equality with a 32-bit value: an `int` argument (a socket
/// family, a flag, a descriptor), which the kernel truncates to its low 32 bits, while the
/// filter sees all 64 bits of the register. `socket(0x1_0000_0026, ...)` opens an AF_ALG
/// socket on x86_64 although the argument is not 38: such a condition is matched on the low
/// 32 bits, and the profiles' allows are narrowed to 32-bit values.
fn is_int_equality(condition: &ArgCondition) -> bool {
    condition.op == Operator::Equal && condition.value <= u64::from(u32::MAX)
}

/// The floor's condition as its deny rule holds it: an `int` equality on the low 32 bits.
fn denied_as_written(condition: &ArgCondition) -> ArgCondition {
    if is_int_equality(condition) {
        ArgCondition {
            index: condition.index,
            value: u64::from(u32::MAX),
            value_two: condition.value,
            op: Operator::MaskedEqual,
        }
    } else {
        condition.clone()
    }
}

/// Whether a floor may use `action`: the actions that refuse the call.
pub fn is_floor_action(action: Action) -> bool {
    matches!(
        action,
        Action::Errno | Action::KillProcess | Action::KillThread | Action::Kill | Action::Trap
    )
}

/// Whether a profile rule with `action` may let the call run, so that a floor narrows it.
fn may_run(action: Action) -> bool {
    matches!(action, Action::Allow | Action::Log | Action::Trace)
}

/// One SeccompFloor as the merge sees it.
#[derive(Clone, Copy, Debug)]
pub struct Floor<'a> {
    /// metadata.name.
    pub name: &'a str,
    /// The spec.
    pub spec: &'a FloorSpec,
}

/// Which floor, in which version of its rules, a rendered profile carries: what node reports
/// and statuses compare. The digest covers the rules only, so that exempting another profile
/// does not make every other file look out of date.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct FloorStamp {
    /// The SeccompFloor's name.
    #[schemars(length(max = MAX_FLOOR_NAME_LEN))]
    pub name: String,
    /// sha256 of the floor's rules (their JSON as seccompd writes it).
    pub digest: ContentHash,
}

impl Floor<'_> {
    /// The stamp of this floor's current rules.
    pub fn stamp(&self) -> FloorStamp {
        FloorStamp {
            name: self.name.to_string(),
            digest: rules_digest(&self.spec.rules),
        }
    }

    /// Whether the floor exempts profile `name`.
    pub fn exempts(&self, name: &str) -> bool {
        self.spec.exempt_profiles.iter().any(|p| p == name)
    }

    /// The floor's rules followed by the `socketcall` denials they imply.
    fn effective_rules(&self) -> Vec<(usize, FloorRule)> {
        let mut out: Vec<(usize, FloorRule)> =
            self.spec.rules.iter().cloned().enumerate().collect();
        for (i, rule) in self.spec.rules.iter().enumerate() {
            if rule
                .names
                .iter()
                .any(|n| SOCKETCALL_MULTIPLEXED.contains(&n.as_str()))
            {
                out.push((
                    i,
                    FloorRule {
                        names: vec![SOCKETCALL.into()],
                        action: rule.action,
                        errno_ret: rule.errno_ret,
                        args: Vec::new(),
                    },
                ));
            }
        }
        out
    }
}

/// sha256 of `rules` as JSON.
pub fn rules_digest(rules: &[FloorRule]) -> ContentHash {
    // Serializing plain structs, enums, strings and integers to a Vec cannot fail.
    ContentHash::of(&serde_json::to_vec(rules).unwrap_or_default())
}

/// A profile with the floors merged in.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The profile to render.
    pub profile: OciProfile,
    /// The floors it carries, by name.
    pub floors: Vec<FloorStamp>,
}

/// Why a floor cannot be merged into a profile with deny-wins semantics.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "spec.syscalls[{profile_rule}]: this rule lets {name} run for values the SeccompFloor {floor:?} (rules[{floor_rule}]) denies, and seccompd cannot write the rest of what it allows ({reason}): use another comparison than SCMP_CMP_MASKED_EQ on args[{index}] in this rule, or ask the floor's administrator to exempt this profile"
)]
pub struct MergeError {
    /// The floor.
    pub floor: String,
    /// The floor's rule.
    pub floor_rule: usize,
    /// The profile's rule (counting its bases' rules first).
    pub profile_rule: usize,
    /// The call.
    pub name: String,
    /// The argument.
    pub index: u32,
    /// What could not be expressed.
    pub reason: String,
}

/// Why a profile with its floors cannot be rendered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FlooredError {
    /// Its bases do not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A floor cannot be merged into it.
    #[error(transparent)]
    Merge(#[from] MergeError),
}

/// Resolves profile `name` with its bases, merges the floors that do not exempt it, and then
/// applies its mode: what a node installs.
pub fn resolve_with_floors<'a>(
    name: &str,
    spec: &'a ProfileSpec,
    lookup: impl Fn(&str) -> Option<&'a ProfileSpec>,
    floors: &[Floor<'_>],
) -> Result<Merged, FlooredError> {
    let enforced = resolve_enforced(name, spec, lookup)?;
    let merged = merge(enforced, name, floors)?;
    Ok(Merged {
        profile: in_mode(merged.profile, spec.mode),
        floors: merged.floors,
    })
}

/// A profile rule with the position it had in the profile, for messages.
struct Placed {
    origin: usize,
    rule: SyscallRule,
}

/// Merges into `profile` (enforced, resolved) every floor that does not exempt `profile_name`,
/// in the order of the floors' names. The floors' rules follow the profile's.
pub fn merge(
    profile: OciProfile,
    profile_name: &str,
    floors: &[Floor<'_>],
) -> Result<Merged, MergeError> {
    let mut applicable: Vec<&Floor<'_>> =
        floors.iter().filter(|f| !f.exempts(profile_name)).collect();
    applicable.sort_by_key(|f| f.name);
    applicable.dedup_by_key(|f| f.name);
    if applicable.is_empty() {
        return Ok(Merged {
            profile,
            floors: Vec::new(),
        });
    }
    let OciProfile {
        default_action,
        default_errno_ret,
        architectures,
        flags,
        syscalls,
    } = profile;
    let mut rules = normalized(syscalls);
    let mut added: Vec<SyscallRule> = Vec::new();
    for floor in &applicable {
        for (index, frule) in floor.effective_rules() {
            rules = narrowed_by(rules, &frule, floor.name, index)?;
            let written: Vec<ArgCondition> = frule.args.iter().map(denied_as_written).collect();
            let names: Vec<SyscallName> = frule
                .names
                .iter()
                .filter(|n| {
                    !rules
                        .iter()
                        .map(|p| &p.rule)
                        .chain(&added)
                        .any(|r| already_denies(r, n, &written))
                })
                .cloned()
                .collect();
            if !names.is_empty() {
                added.push(frule.as_syscall_rule(names));
            }
        }
    }
    let mut syscalls: Vec<SyscallRule> = rules.into_iter().map(|p| p.rule).collect();
    syscalls.extend(added);
    Ok(Merged {
        profile: OciProfile {
            default_action,
            default_errno_ret,
            architectures,
            flags,
            syscalls,
        },
        floors: applicable.iter().map(|f| f.stamp()).collect(),
    })
}

/// Whether `rule` already denies every call of `name` that `args` match: unconditionally, or
/// with exactly these conditions. Adding the floor's rule beside it would only give
/// libseccomp two outcomes to choose from for the same calls.
fn already_denies(rule: &SyscallRule, name: &str, args: &[ArgCondition]) -> bool {
    !may_run(rule.action)
        && rule.names.iter().any(|n| n == name)
        && (rule.args.is_empty() || rule.args == args)
}

/// The profile's rules with every rule that may run and holds two conditions on one argument
/// split into one rule per condition: that is how runc adds such a rule (libseccomp cannot AND
/// them), so the narrowing below sees the rules the runtime will.
fn normalized(rules: Vec<SyscallRule>) -> Vec<Placed> {
    let mut out = Vec::with_capacity(rules.len());
    for (origin, rule) in rules.into_iter().enumerate() {
        let repeated = rule
            .args
            .iter()
            .enumerate()
            .any(|(k, a)| rule.args[..k].iter().any(|b| b.index == a.index));
        if repeated && may_run(rule.action) {
            for arg in &rule.args {
                out.push(Placed {
                    origin,
                    rule: SyscallRule {
                        args: vec![arg.clone()],
                        ..rule.clone()
                    },
                });
            }
        } else {
            out.push(Placed { origin, rule });
        }
    }
    out
}

/// `rules` with every rule that may run narrowed so that it no longer matches what `frule`
/// denies.
fn narrowed_by(
    rules: Vec<Placed>,
    frule: &FloorRule,
    floor: &str,
    floor_rule: usize,
) -> Result<Vec<Placed>, MergeError> {
    let mut out = Vec::with_capacity(rules.len());
    for placed in rules {
        let rule = &placed.rule;
        if !may_run(rule.action) || !rule.names.iter().any(|n| frule.names.contains(n)) {
            out.push(placed);
            continue;
        }
        let (hit, miss): (Vec<SyscallName>, Vec<SyscallName>) = rule
            .names
            .iter()
            .cloned()
            .partition(|n| frule.names.contains(n));
        let narrowed =
            narrowed_args(&rule.args, &frule.args).map_err(|(index, reason)| MergeError {
                floor: floor.to_string(),
                floor_rule,
                profile_rule: placed.origin,
                name: hit.first().map(ToString::to_string).unwrap_or_default(),
                index,
                reason,
            })?;
        if !miss.is_empty() {
            out.push(Placed {
                origin: placed.origin,
                rule: SyscallRule {
                    names: miss,
                    ..rule.clone()
                },
            });
        }
        for args in narrowed {
            out.push(Placed {
                origin: placed.origin,
                rule: SyscallRule {
                    names: hit.clone(),
                    args,
                    ..rule.clone()
                },
            });
        }
    }
    Ok(out)
}

/// The argument conditions of the rules that match what a rule with `rule_args` matches except
/// what `floor_args` match: `rule AND NOT (c1 AND c2 ...)`, that is one rule per floor
/// condition, `rule AND NOT ci`. None when the floor has no conditions (nothing is left).
/// Where the rule already has a condition on the same argument, the two are intersected into
/// conditions libseccomp can hold (one per argument), or the argument's index and why not.
fn narrowed_args(
    rule_args: &[ArgCondition],
    floor_args: &[ArgCondition],
) -> Result<Vec<Vec<ArgCondition>>, (u32, String)> {
    let mut out = Vec::new();
    for condition in floor_args {
        let index = condition.index;
        let mut opposite = Range::of(condition)
            .map(|r| r.complement())
            .ok_or_else(|| (index, "SCMP_CMP_MASKED_EQ in the floor".to_string()))?;
        if is_int_equality(condition) {
            // What an `int` may be: a value with high bits set reaches the kernel as its low
            // 32 bits, which the floor may deny.
            opposite = opposite.intersect(&Range(vec![(0, u64::from(u32::MAX))]));
        }
        let Some(position) = rule_args.iter().position(|a| a.index == index) else {
            for piece in conditions_for(index, &opposite) {
                let mut args = rule_args.to_vec();
                args.extend(piece);
                out.push(args);
            }
            continue;
        };
        let own = Range::of(&rule_args[position]).ok_or_else(|| {
            (
                index,
                "the rule's own SCMP_CMP_MASKED_EQ on that argument".to_string(),
            )
        })?;
        let left = own.intersect(&opposite);
        for piece in conditions_for(index, &left) {
            let mut args = rule_args.to_vec();
            args.remove(position);
            args.extend(piece);
            out.push(args);
        }
    }
    Ok(out)
}

/// A set of 64-bit argument values as sorted, disjoint, inclusive intervals.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Range(Vec<(u64, u64)>);

impl Range {
    /// The values `condition` matches; None for an SCMP_CMP_MASKED_EQ that is not one aligned
    /// block (such as the merge writes), which is no interval.
    fn of(condition: &ArgCondition) -> Option<Self> {
        let v = condition.value;
        let all = u64::MAX;
        let intervals = match condition.op {
            Operator::Equal => vec![(v, v)],
            Operator::NotEqual => Self(vec![(v, v)]).complement().0,
            Operator::LessThan if v == 0 => vec![],
            Operator::LessThan => vec![(0, v - 1)],
            Operator::LessOrEqual => vec![(0, v)],
            Operator::GreaterThan if v == all => vec![],
            Operator::GreaterThan => vec![(v + 1, all)],
            Operator::GreaterOrEqual => vec![(v, all)],
            // An aligned block, as the merge writes them: the mask keeps the high bits.
            Operator::MaskedEqual => {
                let low_bits = !v;
                let start = condition.value_two;
                if low_bits & low_bits.wrapping_add(1) != 0 || start & low_bits != 0 {
                    return None;
                }
                vec![(start, start | low_bits)]
            }
        };
        Some(Self(intervals))
    }

    fn complement(&self) -> Self {
        let mut out = Vec::new();
        let mut next = Some(0u64);
        for &(lo, hi) in &self.0 {
            if let Some(start) = next
                && lo > start
            {
                out.push((start, lo - 1));
            }
            next = hi.checked_add(1);
        }
        if let Some(start) = next {
            out.push((start, u64::MAX));
        }
        Self(out)
    }

    fn intersect(&self, other: &Self) -> Self {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            for &(c, d) in &other.0 {
                let (lo, hi) = (a.max(c), b.min(d));
                if lo <= hi {
                    out.push((lo, hi));
                }
            }
        }
        out.sort_unstable();
        Self(out)
    }
}

/// The conditions on argument `index`, one list per rule, that together match `range`:
/// an interval from 0 or to the top is one comparison, a few values are one equality each,
/// and a longer interval between two values is cut into aligned blocks of a power of two
/// values, one masked equality each (`(arg & !(size - 1)) == start`): at most two per bit,
/// and exact, where two comparisons on one argument cannot be ANDed.
fn conditions_for(index: u32, range: &Range) -> Vec<Vec<ArgCondition>> {
    let condition = |op, value, value_two| ArgCondition {
        index,
        value,
        value_two,
        op,
    };
    // Everything but one value: one inequality.
    if let [(0, below), (above, u64::MAX)] = range.0[..]
        && below.checked_add(2) == Some(above)
    {
        return vec![vec![condition(Operator::NotEqual, below + 1, 0)]];
    }
    let mut out = Vec::new();
    for &(lo, hi) in &range.0 {
        match (lo, hi) {
            (0, u64::MAX) => out.push(vec![]),
            (0, hi) => out.push(vec![condition(Operator::LessOrEqual, hi, 0)]),
            (lo, u64::MAX) => out.push(vec![condition(Operator::GreaterOrEqual, lo, 0)]),
            (lo, hi) if hi - lo < MAX_SPLIT_VALUES => {
                out.extend((lo..=hi).map(|v| vec![condition(Operator::Equal, v, 0)]));
            }
            (lo, hi) => out.extend(
                aligned_blocks(lo, hi)
                    .into_iter()
                    .map(|(mask, start)| vec![condition(Operator::MaskedEqual, mask, start)]),
            ),
        }
    }
    out
}

/// `[lo, hi]` as aligned blocks `(mask, start)`: each block holds the values `v` with
/// `v & mask == start`, the blocks are disjoint and together hold exactly `[lo, hi]`.
fn aligned_blocks(lo: u64, hi: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let (mut start, end) = (u128::from(lo), u128::from(hi));
    while start <= end {
        // The largest block that starts at `start` (aligned to its size) and ends by `end`.
        let mut size: u128 = if start == 0 {
            1 << 64
        } else {
            1 << start.trailing_zeros()
        };
        while start + size - 1 > end {
            size >>= 1;
        }
        // Values are below 2^64: the mask keeps the bits above the block's size.
        let mask = !u64::try_from(size - 1).unwrap_or(u64::MAX);
        out.push((mask, u64::try_from(start).unwrap_or(u64::MAX)));
        start += size;
    }
    out
}

/// Checks a SeccompFloor: its name, rules and exemptions. Every finding names the field and
/// the fix.
pub fn validate_floor(name: &str, spec: &FloorSpec) -> Findings {
    let mut out = Findings::default();
    if name.len() > MAX_FLOOR_NAME_LEN || !is_dns_subdomain(name) {
        out.error(
            "metadata.name".into(),
            format!(
                "must be a DNS subdomain of at most {MAX_FLOOR_NAME_LEN} characters (lowercase letters, digits, '-' and '.'): rename it"
            ),
        );
    }
    if spec.rules.is_empty() {
        out.error(
            "spec.rules".into(),
            "is empty, so the floor denies nothing: add a rule, or delete the floor",
        );
    }
    if spec.rules.len() > MAX_FLOOR_RULES {
        out.error(
            "spec.rules".into(),
            format!(
                "has {} rules; at most {MAX_FLOOR_RULES} are allowed (every profile carries all of them): merge rules with the same action and arguments",
                spec.rules.len()
            ),
        );
    }
    for (i, rule) in spec.rules.iter().enumerate() {
        check_floor_rule(rule, &format!("spec.rules[{i}]"), &mut out);
    }
    if spec.exempt_profiles.len() > MAX_FLOOR_EXEMPTIONS {
        out.error(
            "spec.exemptProfiles".into(),
            format!(
                "has {} entries; at most {MAX_FLOOR_EXEMPTIONS} are allowed: a floor that many profiles cannot carry belongs in those profiles instead",
                spec.exempt_profiles.len()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, profile) in spec.exempt_profiles.iter().enumerate() {
        let path = format!("spec.exemptProfiles[{i}]");
        if profile.len() > MAX_PROFILE_NAME_LEN || !is_dns_subdomain(profile) {
            out.error(
                path,
                format!(
                    "{profile:?} is not a SeccompProfile name (a DNS subdomain of at most {MAX_PROFILE_NAME_LEN} characters): fix it"
                ),
            );
        } else if !seen.insert(profile) {
            out.warn(path, format!("{profile:?} is listed twice: remove one"));
        }
    }
    out
}

fn check_floor_rule(rule: &FloorRule, path: &str, out: &mut Findings) {
    let names_path = format!("{path}.names");
    if rule.names.is_empty() {
        out.error(
            names_path.clone(),
            "is empty, so the rule denies nothing: list at least one system call name",
        );
    }
    if rule.names.len() > MAX_NAMES_PER_RULE {
        out.error(
            names_path.clone(),
            format!(
                "has {} entries; at most {MAX_NAMES_PER_RULE} are allowed: split the rule in two",
                rule.names.len()
            ),
        );
    }
    for (j, name) in rule.names.iter().enumerate() {
        check_name(name, &format!("{names_path}[{j}]"), out);
        if rule.args.is_empty() && matches!(name.as_str(), "execve" | "execveat") {
            out.error(
                format!("{names_path}[{j}]"),
                format!(
                    "denying {name} without conditions stops every container from starting its process: remove it, or add argument conditions"
                ),
            );
        }
    }
    if !is_floor_action(rule.action) {
        out.error(
            format!("{path}.action"),
            format!(
                "{} does not deny: a floor rule uses SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL or SCMP_ACT_TRAP",
                rule.action
            ),
        );
    }
    if let Some(errno) = rule.errno_ret {
        let epath = format!("{path}.errnoRet");
        if rule.action != Action::Errno {
            out.error(
                epath,
                format!(
                    "is only used with SCMP_ACT_ERRNO (crun refuses it with {}): remove errnoRet or change the action",
                    rule.action
                ),
            );
        } else if errno == 0 || errno > MAX_ERRNO {
            out.error(
                epath,
                format!(
                    "{errno} is out of range for a floor: use 1 to {MAX_ERRNO} (1 is EPERM; 0 would make the call succeed without running)"
                ),
            );
        }
    }
    if rule.args.len() > MAX_ARGS_PER_RULE {
        out.error(
            format!("{path}.args"),
            format!(
                "has {} conditions; at most {MAX_ARGS_PER_RULE} (one per argument): split the rule",
                rule.args.len()
            ),
        );
    }
    for (k, arg) in rule.args.iter().enumerate() {
        let apath = format!("{path}.args[{k}]");
        check_arg(arg, &apath, out);
        if arg.op == Operator::MaskedEqual {
            out.error(
                format!("{apath}.op"),
                "SCMP_CMP_MASKED_EQ cannot be merged with deny-wins semantics (its opposite, which narrows the profiles' allow rules, is no single condition): use SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_GT or SCMP_CMP_GE",
            );
        }
        if rule.args[..k].iter().any(|b| b.index == arg.index) {
            out.error(
                format!("{apath}.index"),
                format!(
                    "args[{}] already has a condition: libseccomp cannot AND two conditions on one argument (runc would OR them, denying more than meant): use one condition per argument, or two rules",
                    arg.index
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests;
