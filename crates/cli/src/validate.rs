//! `seccompd validate [--arch ARCH] FILE...`: checks OCI/Docker JSON profiles and SeccompProfile
//! YAML offline, as the API server and a node of ARCH would. Exit 0 when every input is valid
//! (warnings allowed), 1 when any is invalid, 2 on bad usage or an unreadable file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use seccompd_profile::check::{NodeRuntime, check_resolved};
use seccompd_profile::compile::native_arch;
use seccompd_profile::decode::{self, Document, Resource};
use seccompd_profile::model::{Arch, ProfileSpec};
use seccompd_profile::resolve::resolve;
use seccompd_profile::runtime::OciRuntime;
use seccompd_profile::validate::{
    Findings, Problem, validate_bounds, validate_profile_name, validate_spec,
};

/// Arguments of `seccompd validate`.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Architecture of the nodes to check for (default: this machine's), e.g. amd64, arm64.
    #[arg(long, value_parser = super::parse_arch)]
    pub arch: Option<Arch>,
    /// The nodes' OCI runtime, e.g. runc/1.5.3 or crun/1.19 (default: the most conservative
    /// one seccompd supports, runc/1.1.0).
    #[arg(long, conflicts_with = "newer_runtime")]
    pub runtime: Option<OciRuntime>,
    /// Assume the nodes' runtime accepts `flags` and SCMP_ARCH_RISCV64 (crun, runc ≥ 1.2).
    #[arg(long)]
    pub newer_runtime: bool,
    /// Profiles: OCI/Docker seccomp JSON, or SeccompProfile YAML (several documents allowed).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// The verdict on one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `FILE`, or `FILE#N (name)` for the N-th document of a YAML stream.
    pub label: String,
    /// What was found.
    pub findings: Findings,
}

/// A decoded input: its label and document, or why it could not be decoded.
type Decoded = (String, Result<Document, String>);

/// Checks every document of every input for nodes of `arch`. Bases named by
/// `baseProfileName` are looked up among all the inputs' SeccompProfiles.
pub fn check_inputs(
    inputs: &[(String, Vec<u8>)],
    arch: Arch,
    runtime: &NodeRuntime,
) -> Vec<Verdict> {
    let mut decoded: Vec<Decoded> = Vec::new();
    for (label, bytes) in inputs {
        match decode::decode(bytes) {
            Ok(docs) => {
                let single = docs.len() == 1;
                for (i, doc) in docs.into_iter().enumerate() {
                    let at = if single {
                        label.clone()
                    } else {
                        format!("{label}#{}", i + 1)
                    };
                    decoded.push((at, Ok(doc)));
                }
            }
            Err(e) => decoded.push((label.clone(), Err(e.to_string()))),
        }
    }
    let specs: BTreeMap<String, ProfileSpec> = decoded
        .iter()
        .filter_map(|(_, d)| match d {
            Ok(Document::Resource(Resource {
                name: Some(n),
                spec,
            })) => Some((n.clone(), spec.clone())),
            _ => None,
        })
        .collect();
    decoded
        .into_iter()
        .map(|(label, doc)| {
            let (label, findings) = match doc {
                Err(message) => (
                    label,
                    Findings {
                        errors: vec![Problem {
                            path: "input".into(),
                            message,
                        }],
                        warnings: vec![],
                    },
                ),
                Ok(Document::Json(profile)) => {
                    let (oci, mut findings) = decode::to_oci(&profile, "");
                    findings.extend(validate_bounds(&oci, ""));
                    findings.extend(check_resolved(&oci, arch, runtime, ""));
                    (label, findings)
                }
                Ok(Document::Resource(res)) => {
                    let label = match &res.name {
                        Some(n) => format!("{label} ({n})"),
                        None => label,
                    };
                    (label, check_resource(&res, &specs, arch, runtime))
                }
            };
            Verdict { label, findings }
        })
        .collect()
}

fn check_resource(
    res: &Resource,
    specs: &BTreeMap<String, ProfileSpec>,
    arch: Arch,
    runtime: &NodeRuntime,
) -> Findings {
    let mut findings = match &res.name {
        Some(name) => validate_profile_name(name),
        None => Findings {
            errors: vec![Problem {
                path: "metadata.name".into(),
                message: "is missing: give the SeccompProfile a name".into(),
            }],
            warnings: vec![],
        },
    };
    let name = res.name.clone().unwrap_or_default();
    let Some(base) = &res.spec.base_profile_name else {
        // Without a base, resolving only drops baseProfileName; it cannot fail.
        if let Ok(oci) = resolve(&name, &res.spec, |_| None) {
            findings.extend(validate_bounds(&oci, "spec"));
            findings.extend(check_resolved(&oci, arch, runtime, "spec"));
        }
        return findings;
    };
    findings.extend(validate_spec(&res.spec, "spec"));
    match resolve(&name, &res.spec, |n| specs.get(n)) {
        Ok(resolved) => {
            let whole = check_resolved(&resolved, arch, runtime, "resolved");
            findings.errors.extend(whole.errors);
        }
        Err(e) => findings.warnings.push(Problem {
            path: "spec.baseProfileName".into(),
            message: format!(
                "{e}; base {base:?} is not among the inputs, so the profile with its bases was not compiled: pass the base's file too"
            ),
        }),
    }
    findings
}

/// Prints verdicts; returns whether all were valid.
pub fn print_verdicts(verdicts: &[Verdict]) -> bool {
    let mut all_valid = true;
    for v in verdicts {
        let f = &v.findings;
        let state = match (f.errors.len(), f.warnings.len()) {
            (0, 0) => "valid".to_string(),
            (0, w) => format!("valid, {w} warning(s)"),
            (e, _) => {
                all_valid = false;
                format!("INVALID, {e} error(s)")
            }
        };
        println!("{}: {state}", v.label);
        for e in &f.errors {
            println!("  error: {e}");
        }
        for w in &f.warnings {
            println!("  warning: {w}");
        }
    }
    all_valid
}

/// Runs `seccompd validate`.
pub fn run(args: ValidateArgs) -> ExitCode {
    let Some(arch) = args.arch.or_else(native_arch) else {
        return super::usage_error(
            "validate",
            "this machine's architecture is unknown: pass --arch",
        );
    };
    let mut inputs = Vec::new();
    for path in &args.files {
        match super::read_input(path) {
            Ok(bytes) => inputs.push((path.display().to_string(), bytes)),
            Err(e) => return super::usage_error("validate", &e),
        }
    }
    let runtime = match args.runtime {
        Some(runtime) => NodeRuntime::of(runtime),
        None => NodeRuntime {
            flags: args.newer_runtime,
            riscv64: args.newer_runtime,
            ..NodeRuntime::default()
        },
    };
    if print_verdicts(&check_inputs(&inputs, arch, &runtime)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
