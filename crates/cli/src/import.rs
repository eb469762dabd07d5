//! `seccompd import FILE.json --name NAME [--arch ARCH]`: turns an OCI/Docker JSON profile into
//! a SeccompProfile for nodes of ARCH, printed as YAML. Notes and problems go to stderr; exit 1
//! when the result would be refused, 2 on bad usage or an unreadable file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use seccompd_api::{SeccompProfile, SeccompProfileSpec};
use seccompd_profile::compile::native_arch;
use seccompd_profile::decode::{self, Document};
use seccompd_profile::import::{DEFAULT_CAPABILITIES, Target, import, parse_kernel};
use seccompd_profile::model::Arch;

/// Arguments of `seccompd import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The OCI or Docker (moby) seccomp JSON profile.
    pub file: PathBuf,
    /// metadata.name of the SeccompProfile (pods then use `seccompd/<NAME>.json`).
    #[arg(long)]
    pub name: String,
    /// Architecture of the nodes (default: this machine's); selects archMap and
    /// `includes.arches`.
    #[arg(long, value_parser = super::parse_arch)]
    pub arch: Option<Arch>,
    /// Nodes' kernel version for `minKernel` (default: this machine's), e.g. 5.15.
    #[arg(long)]
    pub kernel: Option<String>,
    /// Capabilities the containers hold, for `includes.caps`/`excludes.caps` (repeatable;
    /// default: the container runtimes' default set).
    #[arg(long = "cap")]
    pub caps: Vec<String>,
}

fn this_kernel() -> Option<(u32, u32)> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|s| parse_kernel(&s))
}

/// Runs `seccompd import`.
pub fn run(args: ImportArgs) -> ExitCode {
    let Some(arch) = args.arch.or_else(native_arch) else {
        return super::usage_error(
            "import",
            "this machine's architecture is unknown: pass --arch",
        );
    };
    let kernel = match &args.kernel {
        Some(k) => match parse_kernel(k) {
            Some(v) => v,
            None => {
                return super::usage_error(
                    "import",
                    &format!("--kernel {k:?} is not a version like 5.15"),
                );
            }
        },
        None => this_kernel().unwrap_or((0, 0)),
    };
    let bytes = match super::read_input(&args.file) {
        Ok(b) => b,
        Err(e) => return super::usage_error("import", &e),
    };
    let file = args.file.display();
    let profile = match decode::decode(&bytes) {
        Ok(mut docs) if docs.len() == 1 => match docs.pop() {
            Some(Document::Json(p)) => p,
            _ => {
                eprintln!(
                    "seccompd import: {file}: is a SeccompProfile already; use `seccompd validate`"
                );
                return ExitCode::from(1);
            }
        },
        Ok(_) => {
            eprintln!(
                "seccompd import: {file}: holds several documents; import takes one JSON profile"
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("seccompd import: {file}: {e}");
            return ExitCode::from(1);
        }
    };
    let capabilities = if args.caps.is_empty() {
        DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    } else {
        args.caps.clone()
    };
    let target = Target {
        arch,
        capabilities,
        kernel,
    };
    let (spec, notes) = match import(&profile, &target) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("seccompd import: {file}: {e}");
            return ExitCode::from(1);
        }
    };
    for note in &notes {
        eprintln!("note: {note}");
    }
    let findings = super::check_new_profile(&args.name, &spec, arch);
    for w in &findings.warnings {
        eprintln!("warning: {w}");
    }
    for e in &findings.errors {
        eprintln!("error: {e}");
    }
    let object = SeccompProfile::new(&args.name, SeccompProfileSpec(spec));
    match serde_saphyr::to_string(&object) {
        Ok(yaml) => print!("{yaml}"),
        Err(e) => {
            eprintln!("seccompd import: cannot print YAML: {e}");
            return ExitCode::FAILURE;
        }
    }
    if findings.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
