//! The profiles an agent installs whatever the API holds: `seccompd/default.json`, the
//! container runtimes' default allow-list (Docker's, vendored in `data/`) for pods to move to
//! from `RuntimeDefault`, so that the SeccompFloors reach them too; and `seccompd/record.json`, which lets
//! every call run and logs it, for pods being recorded (see the SeccompProfileRecording
//! resource), only where recording is on (the agent's `--recording`, set where the recorder
//! is deployed): anywhere else it would only be a way out of seccomp confinement. Its name is
//! reserved ([`RECORD_PROFILE`]): the API refuses a SeccompProfile of that name, and one
//! created before the rule existed is ignored here.

use super::desired::{Origin, ProfileInput};
use seccompd_api::ProfileReport;
use seccompd_profile::decode::{Document, decode};
use seccompd_profile::import::{DEFAULT_CAPABILITIES, Target, import};
use seccompd_profile::limits::{DEFAULT_PROFILE, RECORD_PROFILE};
use seccompd_profile::model::{Action, Arch, ProfileSpec};
use seccompd_profile::render::{ContentHash, render};
use seccompd_profile::resolve::resolve;

/// The recording profile for a node of architecture `native`: every call of the native ABI
/// and of the ABIs its kernel also runs (32-bit programs) is allowed and logged.
pub fn record_spec(native: Arch) -> ProfileSpec {
    let mut architectures = vec![native];
    architectures.extend_from_slice(compat_abis(native));
    ProfileSpec {
        base_profile_name: None,
        mode: Default::default(),
        default_action: Action::Log,
        default_errno_ret: None,
        architectures,
        flags: Vec::new(),
        syscalls: Vec::new(),
    }
}

/// Docker's default profile as moby ships it (see `data/README.md`).
const DOCKER_DEFAULT: &[u8] = include_bytes!("../../data/docker-default.json");

/// Why the built-in default profile cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("the vendored Docker default profile (crates/agent/data/docker-default.json) {0}")]
pub struct DefaultProfileError(String);

/// The built-in default profile for a node of architecture `native` running kernel
/// `kernel` (major, minor): Docker's default evaluated as Docker evaluates it on such a node
/// for a container with the default capabilities.
pub fn default_spec(native: Arch, kernel: (u32, u32)) -> Result<ProfileSpec, DefaultProfileError> {
    let docs =
        decode(DOCKER_DEFAULT).map_err(|e| DefaultProfileError(format!("does not decode: {e}")))?;
    let Some(Document::Json(profile)) = docs.into_iter().next() else {
        return Err(DefaultProfileError("is not one JSON profile".into()));
    };
    let target = Target {
        arch: native,
        capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        kernel,
    };
    import(&profile, &target)
        .map(|(spec, _notes)| spec)
        .map_err(|e| DefaultProfileError(format!("does not import: {e}")))
}

/// The hash of `seccompd/record.json` as agents render it for a node of architecture
/// `native`. Agents of earlier releases installed it on every node, recorder or not: a
/// directory they left holds it, and it is recognisably seccompd's by this hash.
pub fn record_file_hash(native: Arch) -> Option<ContentHash> {
    let spec = record_spec(native);
    let oci = resolve(RECORD_PROFILE, &spec, |_| None).ok()?;
    Some(render(&oci).hash)
}

/// The ABIs besides its own that a kernel of architecture `native` runs programs of, as
/// Docker's default profile lists them.
fn compat_abis(native: Arch) -> &'static [Arch] {
    match native {
        Arch::X86_64 => &[Arch::X86, Arch::X32],
        Arch::Aarch64 => &[Arch::Arm],
        Arch::Mips64 => &[Arch::Mips, Arch::Mips64N32],
        Arch::Mipsel64 => &[Arch::Mipsel, Arch::Mipsel64N32],
        Arch::S390x => &[Arch::S390],
        _ => &[],
    }
}

/// Whether `name` is one of the built-in profiles' names, which no SeccompProfile may take.
pub fn is_builtin(name: &str) -> bool {
    name == RECORD_PROFILE || name == DEFAULT_PROFILE
}

/// The API's profiles plus the built-in ones (from `record`, the [`record_spec`] of this
/// node, where recording is on; `default`, the [`default_spec`] of this node); an API profile
/// with a reserved name is left out.
pub fn with_builtins<'a>(
    api: impl IntoIterator<Item = ProfileInput<'a>>,
    record: Option<&'a ProfileSpec>,
    default: Option<&'a ProfileSpec>,
) -> Vec<ProfileInput<'a>> {
    let mut out: Vec<ProfileInput<'a>> = api.into_iter().filter(|p| !is_builtin(p.name)).collect();
    for (name, spec) in [(RECORD_PROFILE, record), (DEFAULT_PROFILE, default)] {
        out.extend(spec.map(|spec| ProfileInput {
            name,
            generation: None,
            origin: Origin::Builtin,
            spec,
        }));
    }
    out
}

/// The outcomes of the API's profiles only: the report (its count and digest of installed
/// profiles, which the controller computes from the API's SeccompProfiles) leaves the
/// built-in ones out.
pub fn api_reports(outcomes: Vec<ProfileReport>) -> Vec<ProfileReport> {
    outcomes
        .into_iter()
        .filter(|r| !is_builtin(&r.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::desired::{Accepted, DesiredCache, desired_state};
    use crate::decide::plan::Target;

    #[test]
    fn the_record_profile_logs_every_call_of_every_abi_the_node_runs() {
        let spec = record_spec(Arch::X86_64);
        assert_eq!(spec.default_action, Action::Log);
        assert!(spec.syscalls.is_empty());
        assert_eq!(spec.architectures, [Arch::X86_64, Arch::X86, Arch::X32]);
        assert_eq!(
            record_spec(Arch::Aarch64).architectures,
            [Arch::Aarch64, Arch::Arm]
        );
    }

    /// Docker's default, merged with the Copy Fail floor and judged as a node judges it (this
    /// host's libseccomp, runc 1.1): it installs, allows what Docker allows, and denies AF_ALG
    /// sockets and socketcall while other sockets stay allowed.
    #[test]
    fn the_default_profile_is_dockers_and_carries_the_floors() {
        let arch = seccompd_profile::compile::native_arch().unwrap();
        let default = default_spec(arch, (6, 1)).unwrap();
        assert_eq!(default.default_action, Action::Errno);
        assert!(
            default
                .syscalls
                .iter()
                .any(|r| r.names.iter().any(|n| n == "openat"))
        );
        let floor: seccompd_profile::floor::FloorSpec = serde_json::from_value(serde_json::json!({
            "rules": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}]}],
        }))
        .unwrap();
        let floors = [seccompd_profile::floor::Floor {
            name: "copy-fail",
            spec: &floor,
        }];
        let inputs = with_builtins([], None, Some(&default));
        let desired = crate::decide::desired::desired_with_floors(
            &inputs,
            &floors,
            &mut DesiredCache::default(),
            |p| seccompd_profile::check_for_node(p).map(Accepted::from),
            std::time::Instant::now(),
        );
        let Target::Install(rendered) = &desired[DEFAULT_PROFILE].target else {
            panic!("{:?}", desired[DEFAULT_PROFILE]);
        };
        assert_eq!(desired[DEFAULT_PROFILE].floors, [floors[0].stamp()]);
        // Its compiled size, the node's headroom, is known from the check.
        let instructions = desired[DEFAULT_PROFILE].instructions.unwrap();
        assert!(instructions > 100 && instructions < 4096, "{instructions}");
        let oci: seccompd_profile::render::OciProfile =
            serde_json::from_slice(&rendered.bytes).unwrap();
        // Which of the file's rules on `socket` match a call with this family.
        let matching = |family: u64| -> Vec<Action> {
            use seccompd_profile::model::Operator::*;
            oci.syscalls
                .iter()
                .filter(|r| r.names.iter().any(|n| n == "socket"))
                .filter(|r| {
                    r.args.iter().all(|a| {
                        let v = if a.index == 0 { family } else { 0 };
                        match a.op {
                            NotEqual => v != a.value,
                            LessThan => v < a.value,
                            LessOrEqual => v <= a.value,
                            Equal => v == a.value,
                            GreaterOrEqual => v >= a.value,
                            GreaterThan => v > a.value,
                            MaskedEqual => v & a.value == a.value_two,
                        }
                    })
                })
                .map(|r| r.action)
                .collect()
        };
        // AF_ALG, also with a high bit set, only denied; AF_INET only allowed; AF_VSOCK (40)
        // denied by Docker's own default.
        assert_eq!(matching(38), [Action::Errno]);
        assert_eq!(matching((1 << 32) | 38), [Action::Errno]);
        assert_eq!(matching(2), [Action::Allow]);
        assert!(matching(40).is_empty());
        assert!(
            oci.syscalls
                .iter()
                .any(|r| r.action == Action::Errno && r.names == ["socketcall"])
        );
        // Not in the node's report: the controller's digest covers the API's profiles only.
        let reports = crate::decide::report::node_reports(&desired, &Default::default());
        assert!(api_reports(reports).is_empty());
    }

    #[test]
    fn the_builtin_replaces_an_api_profile_of_its_name_and_installs() {
        let record = record_spec(Arch::X86_64);
        let user = seccompd_profile::model::ProfileSpec {
            default_action: Action::Allow,
            ..record.clone()
        };
        let api = [
            ProfileInput {
                name: RECORD_PROFILE,
                generation: Some(1),
                origin: Origin::Api { uid: None },
                spec: &user,
            },
            ProfileInput {
                name: "other",
                generation: Some(2),
                origin: Origin::Api { uid: None },
                spec: &user,
            },
        ];
        let inputs = with_builtins(api, Some(&record), None);
        let names: Vec<(&str, Option<i64>)> =
            inputs.iter().map(|p| (p.name, p.generation)).collect();
        assert_eq!(names, [("other", Some(2)), (RECORD_PROFILE, None)]);
        // Where recording is off, no record.json at all (and still no API profile of its name).
        let off: Vec<&str> = with_builtins(api, None, None)
            .iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(off, ["other"]);
        // As the node checks it (this host's libseccomp): valid, installed as record.json.
        let desired = desired_state(
            &inputs,
            &mut DesiredCache::default(),
            |p| seccompd_profile::check_for_node(p).map(Accepted::from),
            std::time::Instant::now(),
        );
        let Target::Install(rendered) = &desired[RECORD_PROFILE].target else {
            panic!("{:?}", desired[RECORD_PROFILE]);
        };
        let json: serde_json::Value = serde_json::from_slice(&rendered.bytes).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_LOG");
        // The node's report counts only the API's profiles: the controller's digest of them
        // must match.
        let reports = crate::decide::report::node_reports(&desired, &Default::default());
        let names: Vec<String> = api_reports(reports).into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["other"]);
    }
}
