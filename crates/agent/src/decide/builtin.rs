//! The profiles an agent installs whatever the API holds: `seccompd/record.json`, which lets
//! every call run and logs it, for pods being recorded (see the SeccompProfileRecording
//! resource), only where recording is on (the agent's `--recording`, set where the recorder
//! is deployed): anywhere else it would only be a way out of seccomp confinement. Its name is
//! reserved ([`RECORD_PROFILE`]): the API refuses a SeccompProfile of that name, and one
//! created before the rule existed is ignored here.

use super::desired::ProfileInput;
use seccompd_api::ProfileReport;
use seccompd_profile::limits::RECORD_PROFILE;
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

/// The API's profiles plus the built-in ones (from `record`, the [`record_spec`] of this
/// node, where recording is on); an API profile with a reserved name is left out.
pub fn with_builtins<'a>(
    api: impl IntoIterator<Item = ProfileInput<'a>>,
    record: Option<&'a ProfileSpec>,
) -> Vec<ProfileInput<'a>> {
    let mut out: Vec<ProfileInput<'a>> = api
        .into_iter()
        .filter(|p| p.name != RECORD_PROFILE)
        .collect();
    out.extend(record.map(|spec| ProfileInput {
        name: RECORD_PROFILE,
        generation: None,
        spec,
    }));
    out
}

/// The outcomes of the API's profiles only: the report (its count and digest of installed
/// profiles, which the controller computes from the API's SeccompProfiles) leaves the
/// built-in ones out.
pub fn api_reports(outcomes: Vec<ProfileReport>) -> Vec<ProfileReport> {
    outcomes
        .into_iter()
        .filter(|r| r.name != RECORD_PROFILE)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::desired::{CheckCache, desired_state};
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
                spec: &user,
            },
            ProfileInput {
                name: "other",
                generation: Some(2),
                spec: &user,
            },
        ];
        let inputs = with_builtins(api, Some(&record));
        let names: Vec<(&str, Option<i64>)> =
            inputs.iter().map(|p| (p.name, p.generation)).collect();
        assert_eq!(names, [("other", Some(2)), (RECORD_PROFILE, None)]);
        // Where recording is off, no record.json at all (and still no API profile of its name).
        let off: Vec<&str> = with_builtins(api, None).iter().map(|p| p.name).collect();
        assert_eq!(off, ["other"]);
        // As the node checks it (this host's libseccomp): valid, installed as record.json.
        let desired = desired_state(
            &inputs,
            &mut CheckCache::default(),
            |p| seccompd_profile::check_for_node(p).map(|_| ()),
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
