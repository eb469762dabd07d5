//! The user's subcommands: offline `seccompd validate`, `seccompd import`, `seccompd run` and
//! `seccompd record` (thin glue between files, the terminal, [`seccompd_profile`] and
//! [`crate::host`]), and `seccompd allow-denied`, which reads and updates one SeccompProfile
//! through the API.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod allow_denied;
pub mod host;
pub mod import;
pub mod record;
pub mod run;
pub mod validate;

use std::path::Path;
use std::process::ExitCode;

use seccompd_profile::check::{NodeRuntime, check_resolved};
use seccompd_profile::limits::MAX_INPUT_BYTES;
use seccompd_profile::model::{Arch, ProfileSpec};
use seccompd_profile::resolve::resolve;
use seccompd_profile::validate::{Findings, validate_bounds, validate_profile_name};

/// Exit status for bad usage or an unreadable file.
pub const EXIT_USAGE: u8 = 2;

/// Parses an architecture given on the command line: `SCMP_ARCH_X86_64`, `x86_64`, `amd64`,
/// `arm64`, `aarch64` and the other names Go and the kernel use.
pub fn parse_arch(text: &str) -> Result<Arch, String> {
    let wanted = text.trim();
    let found = Arch::ALL.iter().copied().find(|a| {
        a.as_str().eq_ignore_ascii_case(wanted)
            || a.as_str()
                .trim_start_matches("SCMP_ARCH_")
                .eq_ignore_ascii_case(wanted)
            || seccompd_profile::import::go_arch_names(*a).contains(&wanted)
    });
    found.ok_or_else(|| {
        format!(
            "unknown architecture {wanted:?}: use a name such as amd64, arm64, x86_64, aarch64 or SCMP_ARCH_X86_64"
        )
    })
}

/// Reads a file of at most [`MAX_INPUT_BYTES`] (plus one, so that decoding reports the size).
pub fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

/// The exit status for a usage problem, after printing it.
pub fn usage_error(command: &str, message: &str) -> ExitCode {
    eprintln!("seccompd {command}: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Checks a SeccompProfile seccompd is about to write (imported or recorded, so without a
/// base) as the API server and a node of `arch` running the default runtime would.
pub fn check_new_profile(name: &str, spec: &ProfileSpec, arch: Arch) -> Findings {
    let mut findings = validate_profile_name(name);
    // Without a base, resolving only changes the type.
    if let Ok(oci) = resolve(name, spec, |_| None) {
        findings.extend(validate_bounds(&oci, "spec"));
        findings.extend(check_resolved(&oci, arch, &NodeRuntime::default(), "spec"));
    }
    findings
}
