//! `seccompd allow-denied NAME [--enforce] [--apply]`: turns what an Audit SeccompProfile
//! would have denied (its `status.denials`, counted by the nodes' recorders) into a reviewed
//! update: prints the profile with those calls allowed, as YAML for `kubectl apply -f -`, or
//! with `--apply` writes it, only over the version it was read from. The one command of the
//! CLI that talks to the cluster (the kubeconfig as kubectl finds it).

use clap::Args;
use kube::api::PostParams;
use kube::{Api, Client};

use seccompd_api::denials::is_would_deny;
use seccompd_api::{ProfileDenials, SeccompProfile, SeccompProfileSpec};
use seccompd_profile::limits::MAX_NAMES_PER_RULE;
use seccompd_profile::model::{Action, Mode, ProfileSpec, SyscallRule};

/// Arguments of `seccompd allow-denied`.
#[derive(Args, Debug)]
pub struct AllowDeniedArgs {
    /// The SeccompProfile (in Audit mode, with `status.denials`).
    pub name: String,
    /// Also switch the profile to Enforce (`spec.mode`), as the update's last step.
    #[arg(long)]
    pub enforce: bool,
    /// Write the update to the cluster instead of printing it (refused if the profile
    /// changed since it was read).
    #[arg(long)]
    pub apply: bool,
}

/// Why no update can be made.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllowError {
    /// The profile is enforced: its records are denials, not would-be denials.
    #[error(
        "spec.mode: SeccompProfile {0} is enforced; allow-denied reads what an Audit profile would have denied: set spec.mode: Audit, let its pods run, then run this again"
    )]
    NotAudit(String),
    /// Nothing was counted.
    #[error(
        "status.denials: no call of SeccompProfile {0} would have been denied yet (is the recorder deployed, and have pods run under the profile?): let them run, then run this again"
    )]
    NothingCounted(String),
}

/// The reviewed update: the spec, and what changed.
#[derive(Debug, PartialEq)]
pub struct Reviewed {
    /// The spec with the calls allowed.
    pub spec: ProfileSpec,
    /// The names newly allowed, sorted.
    pub added: Vec<String>,
    /// What the reviewer should know (calls not listed, lost records).
    pub warnings: Vec<String>,
}

/// `spec` with every call `denials` says it would have denied allowed (one rule of
/// SCMP_ACT_ALLOW at the end, split at the names-per-rule bound); names an unconditional
/// allow rule already holds are left out.
pub fn allow_would_denied(
    name: &str,
    spec: &ProfileSpec,
    denials: Option<&ProfileDenials>,
    enforce: bool,
) -> Result<Reviewed, AllowError> {
    if spec.mode != Mode::Audit {
        return Err(AllowError::NotAudit(name.to_string()));
    }
    let denials = denials.ok_or_else(|| AllowError::NothingCounted(name.to_string()))?;
    let allowed: Vec<&str> = spec
        .syscalls
        .iter()
        .filter(|r| r.action == Action::Allow && r.args.is_empty())
        .flat_map(|r| r.names.iter().map(|n| n.as_str()))
        .collect();
    let mut added: Vec<String> = denials
        .syscalls
        .iter()
        .filter(|c| is_would_deny(c.action) && !allowed.contains(&c.name.as_str()))
        .map(|c| c.name.clone())
        .collect();
    added.sort();
    added.dedup();
    if added.is_empty() {
        return Err(AllowError::NothingCounted(name.to_string()));
    }
    let mut warnings = Vec::new();
    if denials.omitted_syscalls > 0 {
        warnings.push(format!(
            "status.denials.omittedSyscalls: {} more calls were counted than the status lists; apply this, let the pods run again and repeat",
            denials.omitted_syscalls
        ));
    }
    if denials.lost_records > 0 {
        warnings.push(format!(
            "status.denials.lostRecords: {} records were lost on the nodes; the profile may still lack calls",
            denials.lost_records
        ));
    }
    let mut out = spec.clone();
    for chunk in added.chunks(MAX_NAMES_PER_RULE) {
        out.syscalls.push(SyscallRule {
            names: chunk.iter().map(|n| n.as_str().into()).collect(),
            action: Action::Allow,
            errno_ret: None,
            args: Vec::new(),
        });
    }
    if enforce {
        out.mode = Mode::Enforce;
    }
    Ok(Reviewed {
        spec: out,
        added,
        warnings,
    })
}

/// Runs `seccompd allow-denied`.
pub async fn run(args: AllowDeniedArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let client = Client::try_default()
        .await
        .context("cannot configure the Kubernetes client (the kubeconfig as kubectl finds it)")?;
    let api: Api<SeccompProfile> = Api::all(client);
    let mut profile = api
        .get(&args.name)
        .await
        .with_context(|| format!("reading SeccompProfile {}", args.name))?;
    let denials = profile.status.as_ref().and_then(|s| s.denials.as_ref());
    let reviewed = allow_would_denied(&args.name, &profile.spec.0, denials, args.enforce)?;
    for warning in &reviewed.warnings {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "seccompd allow-denied: allows {} call(s) SeccompProfile {} would have denied: {}",
        reviewed.added.len(),
        args.name,
        reviewed.added.join(", ")
    );
    if args.apply {
        profile.spec = SeccompProfileSpec(reviewed.spec);
        profile.status = None;
        profile.metadata.managed_fields = None;
        // A replace carries the resourceVersion read: a profile changed since is refused.
        api.replace(&args.name, &PostParams::default(), &profile)
            .await
            .with_context(|| {
                format!(
                    "writing SeccompProfile {} (if it changed since it was read, run this again)",
                    args.name
                )
            })?;
        eprintln!(
            "seccompd allow-denied: SeccompProfile {} updated",
            args.name
        );
        return Ok(());
    }
    let update = SeccompProfile::new(&args.name, SeccompProfileSpec(reviewed.spec));
    print!(
        "{}",
        serde_saphyr::to_string(&update).context("cannot print YAML")?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use seccompd_api::SyscallDenials;

    fn spec(mode: Mode) -> ProfileSpec {
        let mut s: ProfileSpec = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 1, "value": 21505, "op": "SCMP_CMP_EQ"}]}],
        }))
        .unwrap();
        s.mode = mode;
        s
    }

    fn call(name: &str, action: Action) -> SyscallDenials {
        let t = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        SyscallDenials {
            name: name.to_string(),
            action,
            count: 1,
            first_seen: t.clone(),
            last_seen: t,
            pods: Vec::new(),
            nodes: Vec::new(),
        }
    }

    fn denials(calls: Vec<SyscallDenials>) -> ProfileDenials {
        ProfileDenials {
            syscalls: calls,
            ..Default::default()
        }
    }

    #[test]
    fn the_would_be_denied_calls_are_allowed_in_one_new_rule() {
        let d = denials(vec![
            call("statx", Action::Log),
            call("mkdir", Action::Log),
            call("ioctl", Action::Log),
            call("write", Action::Log),
        ]);
        let r = allow_would_denied("ls", &spec(Mode::Audit), Some(&d), false).unwrap();
        // write is allowed already; ioctl only with a condition, so it is added.
        assert_eq!(r.added, ["ioctl", "mkdir", "statx"]);
        let last = r.spec.syscalls.last().unwrap();
        assert_eq!(last.names, r.added);
        assert_eq!(last.action, Action::Allow);
        assert_eq!(
            r.spec.mode,
            Mode::Audit,
            "the mode is the reviewer's to switch"
        );
        assert!(r.warnings.is_empty());
        let enforced = allow_would_denied("ls", &spec(Mode::Audit), Some(&d), true).unwrap();
        assert_eq!(enforced.spec.mode, Mode::Enforce);
    }

    #[test]
    fn an_enforced_profile_or_one_with_nothing_counted_is_refused_naming_the_field() {
        let d = denials(vec![call("mkdir", Action::Log)]);
        let err = allow_would_denied("ls", &spec(Mode::Enforce), Some(&d), false).unwrap_err();
        assert!(err.to_string().starts_with("spec.mode: "), "{err}");
        let err = allow_would_denied("ls", &spec(Mode::Audit), None, false).unwrap_err();
        assert!(err.to_string().starts_with("status.denials: "), "{err}");
        // Refusals of an earlier Enforce run are no would-be denials.
        let only_denied = denials(vec![call("mkdir", Action::Errno)]);
        assert_eq!(
            allow_would_denied("ls", &spec(Mode::Audit), Some(&only_denied), false),
            Err(AllowError::NothingCounted("ls".to_string()))
        );
    }

    #[test]
    fn calls_the_status_leaves_out_and_lost_records_are_warned_of() {
        let mut d = denials(vec![call("mkdir", Action::Log)]);
        d.omitted_syscalls = 3;
        d.lost_records = 7;
        let r = allow_would_denied("ls", &spec(Mode::Audit), Some(&d), false).unwrap();
        assert_eq!(r.warnings.len(), 2);
        assert!(r.warnings[0].contains("3 more calls"));
        assert!(r.warnings[1].contains("7 records were lost"));
    }
}
