//! The apply-time half of a SeccompFloor's validation: bounds and CEL rules on its spec's
//! schema, mirroring [`seccompd_profile::floor::validate_floor`] for what one object shows.

use schemars::Schema;
use serde_json::json;

use seccompd_profile::floor::is_floor_action;
use seccompd_profile::limits::{
    MAX_ARGS_PER_RULE, MAX_ERRNO, MAX_FLOOR_EXEMPTIONS, MAX_FLOOR_RULES, MAX_PROFILE_NAME_LEN,
};
use seccompd_profile::model::Action;

use super::profile_rules::{
    AddToField, add_at, add_rules, arg_index, cel_list, rule, set, syscall_names,
};

/// Where each addition goes, as a JSON pointer into the schema of
/// [`seccompd_profile::floor::FloorSpec`].
const FLOOR_RULES: &[(&str, AddToField)] = &[
    ("/properties/rules", rules),
    ("/properties/rules/items", floor_rule),
    ("/properties/rules/items/properties/names", syscall_names),
    ("/properties/rules/items/properties/args", args),
    ("/properties/rules/items/properties/args/items", arg),
    (
        "/properties/rules/items/properties/args/items/properties/index",
        arg_index,
    ),
    ("/properties/exemptProfiles", exempt_profiles),
];

/// Adds the bounds and rules to the SeccompFloor spec's schema (a `schemars` transform).
pub fn add_to_spec(spec: &mut Schema) {
    add_at(spec, FLOOR_RULES);
}

fn rules(schema: &mut Schema) {
    set(schema, "minItems", json!(1));
    set(schema, "maxItems", json!(MAX_FLOOR_RULES));
}

/// One floor rule: it denies, its errno is a denial's, execve stays reachable.
fn floor_rule(schema: &mut Schema) {
    let denies = cel_list(Action::ALL, is_floor_action);
    add_rules(
        schema,
        vec![
            rule(
                format!("self.action in {denies}"),
                &format!("action: a floor rule denies: use one of {denies}"),
                Some(".action"),
            ),
            rule(
                "!has(self.errnoRet) || self.action == 'SCMP_ACT_ERRNO'".into(),
                "errnoRet is only used with SCMP_ACT_ERRNO (crun refuses it otherwise): remove errnoRet or change the action",
                Some(".errnoRet"),
            ),
            rule(
                format!("!has(self.errnoRet) || (self.errnoRet >= 1 && self.errnoRet <= {MAX_ERRNO})"),
                &format!("errnoRet must be 1 to {MAX_ERRNO} for a floor (1 is EPERM; 0 would make the call succeed without running)"),
                Some(".errnoRet"),
            ),
            rule(
                "size(self.names) > 0".into(),
                "names is empty, so the rule denies nothing: list at least one system call name",
                Some(".names"),
            ),
            rule(
                "(has(self.args) && size(self.args) > 0) || !self.names.exists(n, n == 'execve' || n == 'execveat')".into(),
                "denying execve or execveat without conditions stops every container from starting its process: remove it, or add argument conditions",
                Some(".names"),
            ),
            rule(
                "!has(self.args) || self.args.all(a, self.args.exists_one(b, b.index == a.index))".into(),
                "args: one condition per argument (libseccomp cannot AND two conditions on one argument, and runc would OR them, denying more than meant): use two rules",
                Some(".args"),
            ),
        ],
    );
}

fn args(schema: &mut Schema) {
    set(schema, "maxItems", json!(MAX_ARGS_PER_RULE));
}

/// A floor's condition must have an opposite that is one condition.
fn arg(schema: &mut Schema) {
    add_rules(
        schema,
        vec![rule(
            "self.op != 'SCMP_CMP_MASKED_EQ'".into(),
            "op: SCMP_CMP_MASKED_EQ cannot be merged with deny-wins semantics (its opposite, which narrows the profiles' allow rules, is no single condition): use SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_GT or SCMP_CMP_GE",
            Some(".op"),
        )],
    );
}

fn exempt_profiles(schema: &mut Schema) {
    set(schema, "maxItems", json!(MAX_FLOOR_EXEMPTIONS));
    set(
        schema,
        "items",
        json!({"type": "string", "minLength": 1, "maxLength": MAX_PROFILE_NAME_LEN}),
    );
}

#[cfg(test)]
mod tests {
    use seccompd_profile::floor::FloorSpec;
    use serde_json::Value;

    use super::*;
    use crate::profile_rules::{assert_paths_exist, plain_schema};

    #[test]
    fn every_rule_path_is_a_field_of_the_floor_spec() {
        assert_paths_exist(&plain_schema::<FloorSpec>(), FLOOR_RULES);
    }

    #[test]
    fn the_action_rule_lists_exactly_the_denying_actions() {
        let mut schema = plain_schema::<FloorSpec>();
        add_to_spec(&mut schema);
        let action_rule = schema
            .pointer("/properties/rules/items/x-kubernetes-validations/0/rule")
            .and_then(Value::as_str)
            .unwrap()
            .to_string();
        assert_eq!(
            action_rule,
            "self.action in ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO']"
        );
        assert_eq!(
            schema.pointer("/properties/rules/maxItems"),
            Some(&json!(MAX_FLOOR_RULES))
        );
    }
}
