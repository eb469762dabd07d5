//! Fuzz target for what `seccompd validate` and the agent do with untrusted input: strict
//! decoding (JSON or a YAML stream), moby conversion, structural validation, base resolution,
//! the libseccomp compile for x86_64 and the moby import. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccompd_cli::validate::check_inputs;
use seccompd_profile::check::NodeRuntime;
use seccompd_profile::decode::{Document, decode};
use seccompd_profile::import::{DEFAULT_CAPABILITIES, Target, import};
use seccompd_profile::model::Arch;

fuzz_target!(|data: &[u8]| {
    let inputs = vec![("fuzz".to_string(), data.to_vec())];
    let _ = check_inputs(&inputs, Arch::X86_64, &NodeRuntime::default());
    if let Ok(docs) = decode(data) {
        for doc in docs {
            if let Document::Json(profile) = doc {
                let target = Target {
                    arch: Arch::Aarch64,
                    capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
                    kernel: (5, 10),
                };
                let _ = import(&profile, &target);
            }
        }
    }
});
