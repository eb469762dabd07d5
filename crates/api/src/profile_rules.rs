//! The apply-time half of validation: JSON-schema bounds and CEL rules
//! (`x-kubernetes-validations`) added to the SeccompProfile CRD's `spec` schema, with the bounds
//! of [`seccompd_profile::limits`]. They mirror [`seccompd_profile::validate`] for what can be
//! judged from one object, each with a message that names the field and the fix.
//!
//! Bounds (`maxItems`, `maxLength`) keep the rules within the API server's CEL cost budget:
//! a rule on each syscall name is estimated at its cost times rules × names.
//!
//! The profile model stays free of Kubernetes: [`add_to_spec`] finds each field of its
//! generated schema by path, which works because kube inlines every subschema of a CRD.

use std::fmt::Display;

use schemars::Schema;
use serde_json::{Value, json};

use seccompd_profile::limits::{
    MAX_ARCHITECTURES, MAX_ARG_INDEX, MAX_ARGS_PER_RULE, MAX_ERRNO, MAX_FLAGS, MAX_NAMES_PER_RULE,
    MAX_PROFILE_NAME_LEN, MAX_RULES, MAX_SYSCALL_NAME_LEN,
};
use seccompd_profile::model::{Action, Arch, Mode};
use seccompd_profile::syscalls;
use seccompd_profile::validate;

/// Adds bounds or rules to one field's schema.
pub(crate) type AddToField = fn(&mut Schema);

/// Where each addition goes, as a JSON pointer into the schema of
/// [`seccompd_profile::model::ProfileSpec`].
const SPEC_RULES: &[(&str, AddToField)] = &[
    ("", profile_spec),
    ("/properties/baseProfileName", base_name),
    ("/properties/mode", mode),
    ("/properties/defaultErrnoRet", errno),
    ("/properties/architectures", architectures),
    ("/properties/flags", flags),
    ("/properties/syscalls", syscalls),
    ("/properties/syscalls/items", syscall_rule),
    ("/properties/syscalls/items/properties/names", syscall_names),
    ("/properties/syscalls/items/properties/errnoRet", errno),
    ("/properties/syscalls/items/properties/args", args),
    (
        "/properties/syscalls/items/properties/args/items/properties/index",
        arg_index,
    ),
];

/// Adds the bounds and rules to the SeccompProfile spec's schema (a `schemars` transform).
/// A path the schema lacks is passed over; a unit test checks that every path exists.
pub fn add_to_spec(spec: &mut Schema) {
    add_at(spec, SPEC_RULES);
}

/// Adds each of `table`'s additions to the field its JSON pointer names in `spec`; a path the
/// schema lacks is passed over (a unit test per table checks that every path exists).
pub(crate) fn add_at(spec: &mut Schema, table: &[(&str, AddToField)]) {
    for (pointer, add) in table {
        if let Some(field) = spec
            .pointer_mut(pointer)
            .and_then(|value| <&mut Schema>::try_from(value).ok())
        {
            add(field);
        }
    }
}

/// The schema of `T` as kube generates a CRD's (every subschema inlined), before any rule.
#[cfg(test)]
pub(crate) fn plain_schema<T: schemars::JsonSchema>() -> Schema {
    schemars::generate::SchemaSettings::openapi3()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>()
}

/// Asserts that every path of `table` is a field of `schema`.
#[cfg(test)]
pub(crate) fn assert_paths_exist(schema: &Schema, table: &[(&str, AddToField)]) {
    for (pointer, _) in table {
        assert!(
            schema.pointer(pointer).is_some_and(Value::is_object),
            "{pointer} is not in the schema"
        );
    }
}

/// A CEL list literal of the wire names in `all` that `keep` selects, in declaration order:
/// the rules take their sets of actions and architectures from the profile's own predicates.
pub(crate) fn cel_list<T: Copy + Display>(all: &[T], keep: fn(T) -> bool) -> String {
    let quoted: Vec<String> = all
        .iter()
        .filter(|value| keep(**value))
        .map(|value| format!("'{value}'"))
        .collect();
    format!("[{}]", quoted.join(", "))
}

pub(crate) fn rule(rule: String, message: &str, field_path: Option<&str>) -> Value {
    let mut v = json!({ "rule": rule, "message": message });
    if let Some(path) = field_path {
        v["fieldPath"] = json!(path);
    }
    v
}

pub(crate) fn add_rules(schema: &mut Schema, rules: Vec<Value>) {
    let obj = schema.ensure_object();
    let list = obj
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let Some(existing) = list.as_array_mut() {
        existing.extend(rules);
    }
}

pub(crate) fn set(schema: &mut Schema, key: &str, value: Value) {
    schema.insert(key.to_string(), value);
}

/// NOTIFY and the errno that goes with an action, for the default and for each rule alike.
fn action_rules(action: &str, errno: &str, fix: &str) -> [Value; 2] {
    let takes_errno = cel_list(Action::ALL, validate::takes_errno);
    [
        rule(
            format!("self.{action} != 'SCMP_ACT_NOTIFY'"),
            &format!(
                "{action}: SCMP_ACT_NOTIFY needs a user-space listener, which no kubelet-started container has: use SCMP_ACT_ERRNO or a kill action"
            ),
            Some(&format!(".{action}")),
        ),
        rule(
            format!("!has(self.{errno}) || self.{action} in {takes_errno}"),
            &format!(
                "{errno} is only used with SCMP_ACT_ERRNO or SCMP_ACT_TRACE (crun refuses it otherwise): {fix}"
            ),
            Some(&format!(".{errno}")),
        ),
    ]
}

/// Rules on the whole spec: NOTIFY default, defaultErrnoRet's action, execve reachable,
/// one byte order.
fn profile_spec(schema: &mut Schema) {
    let runs = cel_list(Action::ALL, validate::runs);
    let big_endian = cel_list(Arch::ALL, validate::is_big_endian);
    add_rules(
        schema,
        action_rules(
            "defaultAction",
            "defaultErrnoRet",
            "remove it or change defaultAction",
        )
        .to_vec(),
    );
    add_rules(
        schema,
        vec![
            rule(
                format!(
                    "has(self.baseProfileName) || self.defaultAction in {runs} || (has(self.syscalls) && self.syscalls.exists(r, r.action in {runs} && (!has(r.args) || size(r.args) == 0) && 'execve' in r.names))"
                ),
                "defaultAction denies execve and no rule allows it, so no container could start its process: add \"execve\" to a rule with SCMP_ACT_ALLOW",
                Some(".defaultAction"),
            ),
            rule(
                format!(
                    "!has(self.architectures) || !(self.architectures.exists(a, a in {big_endian}) && self.architectures.exists(a, !(a in {big_endian})))"
                ),
                "architectures mixes big-endian and little-endian architectures, which no node can load (libseccomp refuses the other byte order): keep only the nodes' family, e.g. remove MIPS, PPC, PPC64, S390, S390X and PARISC for x86_64 and arm64 nodes",
                Some(".architectures"),
            ),
        ],
    );
}

/// `defaultErrnoRet` and `errnoRet`: 0 to 4094.
fn errno(schema: &mut Schema) {
    add_rules(
        schema,
        vec![rule(
            format!("self <= {MAX_ERRNO}"),
            &format!(
                "errno must be 0 to {MAX_ERRNO} (libseccomp refuses 4095 and above): use for example 1 (EPERM) or 38 (ENOSYS)"
            ),
            None,
        )],
    );
}

/// `baseProfileName`: the name of a SeccompProfile.
/// The API server stores the default, so that `kubectl get` shows every profile's mode.
fn mode(schema: &mut Schema) {
    set(schema, "default", json!(Mode::default()));
}

fn base_name(schema: &mut Schema) {
    set(schema, "minLength", json!(1));
    set(schema, "maxLength", json!(MAX_PROFILE_NAME_LEN));
}

/// `architectures`: bounded.
fn architectures(schema: &mut Schema) {
    set(schema, "maxItems", json!(MAX_ARCHITECTURES));
}

/// `flags`: bounded.
fn flags(schema: &mut Schema) {
    set(schema, "maxItems", json!(MAX_FLAGS));
}

/// `syscalls`: bounded.
fn syscalls(schema: &mut Schema) {
    set(schema, "maxItems", json!(MAX_RULES));
}

/// `args`: one condition per argument.
fn args(schema: &mut Schema) {
    set(schema, "maxItems", json!(MAX_ARGS_PER_RULE));
}

/// Rules on one syscall rule: NOTIFY, errnoRet's action, non-empty names, execve not denied.
fn syscall_rule(schema: &mut Schema) {
    let runs = cel_list(Action::ALL, validate::runs);
    add_rules(
        schema,
        action_rules("action", "errnoRet", "remove errnoRet or change the action").to_vec(),
    );
    add_rules(
        schema,
        vec![
            rule(
                "size(self.names) > 0".into(),
                "names is empty, so the rule matches nothing: list at least one system call name, or remove the rule",
                Some(".names"),
            ),
            rule(
                format!(
                    "self.action in {runs} || (has(self.args) && size(self.args) > 0) || !('execve' in self.names)"
                ),
                "this rule denies execve, so no container could start its process: remove \"execve\" from it",
                Some(".names"),
            ),
        ],
    );
}

/// `names`: bounded; each a well-formed name that is a system call somewhere.
pub(crate) fn syscall_names(schema: &mut Schema) {
    set(schema, "maxItems", json!(MAX_NAMES_PER_RULE));
    let known = syscalls::all_names()
        .iter()
        .map(|n| format!("'{n}': true"))
        .collect::<Vec<_>>()
        .join(", ");
    let item = json!({
        "type": "string",
        "maxLength": MAX_SYSCALL_NAME_LEN,
        "x-kubernetes-validations": [
            {
                "rule": "size(self) > 0",
                "message": "a system call name is empty: write one such as \"openat\", or remove the entry",
            },
            {
                // A map lookup is the cheapest membership test in CEL's cost model (a list or
                // a regular expression would exceed the budget at rules x names items).
                "rule": format!("size(self) == 0 || self in {{{known}}}"),
                "messageExpression": "'\"' + self + '\" is not a system call on any architecture (names are lowercase, such as \"openat\"; runc and crun would silently ignore this one): check the spelling'",
            },
        ],
    });
    set(schema, "items", item);
}

/// `args[].index`: 0 to 5.
pub(crate) fn arg_index(schema: &mut Schema) {
    add_rules(
        schema,
        vec![rule(
            format!("self <= {MAX_ARG_INDEX}"),
            &format!(
                "index is the argument position: system calls have six arguments, 0 to {MAX_ARG_INDEX}"
            ),
            None,
        )],
    );
}

#[cfg(test)]
mod tests {
    use seccompd_profile::model::ProfileSpec;

    use super::*;

    fn plain_spec_schema() -> Schema {
        plain_schema::<ProfileSpec>()
    }

    #[test]
    fn every_rule_path_is_a_field_of_the_spec() {
        assert_paths_exist(&plain_spec_schema(), SPEC_RULES);
    }

    #[test]
    fn rules_land_on_their_fields() {
        let mut schema = plain_spec_schema();
        add_to_spec(&mut schema);
        let rules_at = |pointer: &str| {
            schema
                .pointer(&format!("{pointer}/x-kubernetes-validations"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        assert_eq!(rules_at(""), 4);
        assert_eq!(rules_at("/properties/syscalls/items"), 4);
        assert_eq!(
            rules_at("/properties/syscalls/items/properties/names/items"),
            2
        );
        assert_eq!(
            schema.pointer("/properties/syscalls/maxItems"),
            Some(&json!(MAX_RULES))
        );
        assert_eq!(
            schema.pointer("/properties/syscalls/items/properties/args/items/properties/index/x-kubernetes-validations/0/rule"),
            Some(&json!(format!("self <= {MAX_ARG_INDEX}")))
        );
    }
}
