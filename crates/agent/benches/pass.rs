//! What one sync pass of the agent costs with many profiles, on this machine's disk, with the
//! real directory code and a node check that accepts everything (verdicts are cached by
//! content, so a pass compiles only new renderings anyway):
//!
//! ```sh
//! cargo bench -p seccompd-agent --bench pass [-- PROFILES]   # default 1000
//! ```
//!
//! Prints the first pass (every file written), the median of passes with nothing changed and
//! with one profile changed, and of their two parts that grow with the number of profiles
//! (the desired state, the directory scan); then one `agent-pass:` summary line.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use seccompd_agent::decide::desired::{
    Accepted, DesiredCache, Origin, ProfileInput, desired_state,
};
use seccompd_agent::metrics::AgentMetrics;
use seccompd_agent::node::dir::{KnownHashes, ProfileDir};
use seccompd_agent::sync::NodeSync;
use seccompd_profile::model::ProfileSpec;
use serde_json::json;

/// Samples per median.
const ROUNDS: usize = 21;

/// A small allowlist; `extra` more calls make the changed version.
fn spec(extra: usize) -> ProfileSpec {
    let calls = [
        "read",
        "write",
        "close",
        "openat",
        "mmap",
        "brk",
        "futex",
        "exit_group",
    ];
    let names: Vec<&str> = calls
        .iter()
        .chain(["uname"].iter().take(extra))
        .copied()
        .collect();
    serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"action": "SCMP_ACT_ALLOW", "names": names}],
    }))
    .expect("the bench's spec is valid")
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = ProfileDir::open(tmp.path().join("seccompd")).expect("the profile directory");
    let mut sync = NodeSync::new(dir.clone(), |_| Ok(Accepted::default()));
    let names: Vec<String> = (0..count).map(|i| format!("bench-{i:05}")).collect();
    let (v1, v2) = (spec(0), spec(1));
    let metrics = AgentMetrics::new(&Arc::default());
    let none = BTreeSet::new();
    // Profile 0 alternates between two versions, each with its own generation.
    let inputs = |changed: bool| -> Vec<ProfileInput<'_>> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let second = changed && i == 0;
                ProfileInput {
                    name,
                    generation: Some(if second { 2 } else { 1 }),
                    origin: Origin::Api { uid: Some(name) },
                    spec: if second { &v2 } else { &v1 },
                }
            })
            .collect()
    };
    let mut pass = |changed: bool| {
        let start = Instant::now();
        sync.pass(&inputs(changed), &none, &metrics, Instant::now())
            .expect("a pass");
        start.elapsed()
    };
    let first = pass(false).as_secs_f64() * 1000.0;
    let idle = median((0..ROUNDS).map(|_| pass(false)).collect());
    let one_change = median((0..ROUNDS).map(|i| pass(i % 2 == 0)).collect());
    let mut cache = DesiredCache::default();
    let desired = median(
        (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                desired_state(
                    &inputs(false),
                    &mut cache,
                    |_| Ok(Accepted::default()),
                    Instant::now(),
                );
                start.elapsed()
            })
            .collect(),
    );
    let mut known = KnownHashes::default();
    // Every file settled: the scan's reuse of hashes is what is measured.
    std::thread::sleep(Duration::from_millis(200));
    let scan = median(
        (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                dir.scan_with(&mut known).expect("a scan");
                start.elapsed()
            })
            .collect(),
    );
    println!("agent sync pass, {count} profiles (medians of {ROUNDS})");
    println!("first pass, every file written      {first:10.2} ms");
    println!("pass, nothing changed               {idle:10.2} ms");
    println!("pass, one profile changed           {one_change:10.2} ms");
    println!("  desired state, nothing changed    {desired:10.2} ms");
    println!("  directory scan, nothing changed   {scan:10.2} ms");
    println!(
        "agent-pass: profiles={count} first_ms={first:.2} idle_ms={idle:.2} one_change_ms={one_change:.2} desired_ms={desired:.2} scan_ms={scan:.2}"
    );
}
