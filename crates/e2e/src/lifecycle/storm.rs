//! The kill -9 storm, shared by the integration test (a few dozen kills) and the benchmark
//! (crates/e2e/benches/kill_storm.rs, a thousand and more): a host-run agent is killed with SIGKILL at
//! random moments while SeccompProfiles are created, updated and deleted; a reader thread
//! checks every file it can see the whole time; at the end one more agent must bring the
//! directory to exactly what the API says.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use seccompd_agent::decide::builtin::with_builtins;
use seccompd_agent::decide::desired::{Accepted, DesiredCache, ProfileInput, desired_state};
use seccompd_agent::decide::plan::Target;
use seccompd_agent::node::dir::TEMP_PREFIX;
use seccompd_agent::node::manifest::MANIFEST_NAME;
use seccompd_api::{SeccompProfile, SeccompProfileSpec};
use seccompd_profile::model::ProfileSpec;
use seccompd_profile::render::render;
use seccompd_profile::resolve::resolve;
use serde_json::json;

use super::host_agent::HostRoot;

/// What a storm does.
pub struct StormConfig {
    /// How many times the agent is killed.
    pub kills: usize,
    /// How many profile names the mutator works on.
    pub profiles: usize,
    /// Kills land uniformly between 0 and this long after the agent's start.
    pub max_life: Duration,
    /// The seccompd binary.
    pub binary: PathBuf,
    /// The admin kubeconfig of the cluster.
    pub kubeconfig: PathBuf,
    /// A scratch directory (the agent's kubelet root goes inside).
    pub work: PathBuf,
    /// Prefix of the profile names (unique per run).
    pub prefix: String,
    /// How long the final agent may take to converge.
    pub converge_within: Duration,
}

/// What a storm saw.
#[derive(Debug, Default)]
pub struct StormReport {
    /// SIGKILLs sent during the storm.
    pub kills: usize,
    /// Kills that left a new temporary file behind: the agent died in the middle of a write.
    pub kills_mid_write: usize,
    /// Agent processes that had exited on their own before their kill (crashes).
    pub early_exits: usize,
    /// Profiles created, updated, deleted during the storm; failed API calls.
    pub creates: usize,
    /// See `creates`.
    pub updates: usize,
    /// See `creates`.
    pub deletes: usize,
    /// See `creates`.
    pub api_errors: usize,
    /// Files the reader read in full.
    pub reads: u64,
    /// Files the reader found partial, invalid or of unknown content (must stay empty).
    pub violations: Vec<String>,
    /// Most leftover temporary files the reader saw at once.
    pub max_temp_files: usize,
    /// Duration of the storm phase.
    pub storm: Duration,
    /// Time the final agent took to make the directory match the API; `None` if it did not.
    pub convergence: Option<Duration>,
    /// Why the directory did not converge, if it did not.
    pub convergence_error: Option<String>,
}

impl StormReport {
    /// The figures, one per line.
    pub fn summary(&self) -> String {
        let per_kill = self.storm.as_secs_f64() / self.kills.max(1) as f64;
        format!(
            "kills: {} ({} of them in the middle of a write, leaving a temporary file)\n\
             agent crashes (exited before the kill): {}\n\
             profile operations during the storm: {} creates, {} updates, {} deletes ({} failed calls)\n\
             storm duration: {:.1} s ({:.0} ms per agent life)\n\
             files read by the concurrent reader: {}\n\
             partial or invalid files seen: {}\n\
             most leftover temporary files seen at once: {}\n\
             final convergence to the API: {}",
            self.kills,
            self.kills_mid_write,
            self.early_exits,
            self.creates,
            self.updates,
            self.deletes,
            self.api_errors,
            self.storm.as_secs_f64(),
            per_kill * 1000.0,
            self.reads,
            self.violations.len(),
            self.max_temp_files,
            match (&self.convergence, &self.convergence_error) {
                (Some(d), _) => format!("{} ms", d.as_millis()),
                (None, Some(e)) => format!("did not converge: {e}"),
                (None, None) => "not measured".into(),
            },
        )
    }
}

/// The spec variants the mutator switches between: denylists of different sizes, so that a
/// torn write could never pass for a valid variant.
pub fn variants() -> Vec<ProfileSpec> {
    let pools: [&[&str]; 4] = [
        &["mkdir"],
        &["mkdir", "rmdir", "unlink", "rename"],
        &[
            "chmod", "fchmod", "chown", "fchown", "lchown", "fchownat", "fchmodat",
        ],
        &[
            "acct",
            "add_key",
            "bpf",
            "clock_adjtime",
            "clock_settime",
            "create_module",
            "delete_module",
            "finit_module",
            "get_kernel_syms",
            "get_mempolicy",
            "init_module",
            "ioperm",
            "iopl",
            "kcmp",
            "kexec_file_load",
            "kexec_load",
            "keyctl",
            "lookup_dcookie",
            "mbind",
            "mount",
            "move_pages",
            "nfsservctl",
            "open_by_handle_at",
            "perf_event_open",
            "personality",
            "pivot_root",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
            "query_module",
            "quotactl",
            "reboot",
            "request_key",
            "set_mempolicy",
            "setns",
            "settimeofday",
            "swapoff",
            "swapon",
            "sysfs",
            "umount2",
            "unshare",
            "uselib",
            "userfaultfd",
            "ustat",
            "vm86",
            "vm86old",
        ],
    ];
    pools
        .iter()
        .map(|names| {
            serde_json::from_value(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO"}],
            }))
            .expect("a valid variant")
        })
        .collect()
}

/// What an agent's directory must hold for `profiles`.
#[derive(Debug)]
pub struct ExpectedDir {
    /// `<name>.json` → bytes, for every profile valid on this node.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Files of invalid profiles: present (an earlier valid version) or absent, both fine.
    pub either: BTreeSet<String>,
}

impl ExpectedDir {
    /// `Ok` when `dir` holds exactly the expected files (and the agent's manifest).
    pub fn check(&self, dir: &Path) -> Result<(), String> {
        self.check_except(dir, |_| false)
    }

    /// Like [`check`](Self::check), but entries whose name `ignore` accepts (ones the test
    /// planted, which the agent leaves alone) may be there too.
    pub fn check_except(&self, dir: &Path, ignore: impl Fn(&str) -> bool) -> Result<(), String> {
        let mut have: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == MANIFEST_NAME || ignore(&name) {
                continue;
            }
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            have.insert(name, is_file.then(|| fs::read(entry.path()).ok()).flatten());
        }
        for (name, want) in &self.files {
            match have.get(name) {
                Some(Some(bytes)) if bytes == want => {}
                Some(_) => return Err(format!("{name} differs")),
                None => return Err(format!("{name} missing")),
            }
        }
        let extra: Vec<&String> = have
            .keys()
            .filter(|n| !self.files.contains_key(*n) && !self.either.contains(*n))
            .collect();
        if extra.is_empty() {
            Ok(())
        } else {
            Err(format!("unexpected entries {extra:?}"))
        }
    }
}

/// The expected directory for `profiles`, judged exactly as the agent judges them.
pub fn expected_files(profiles: &[SeccompProfile]) -> ExpectedDir {
    // Without the recorder deployed, the agent installs one built-in profile beside the API's:
    // seccompd/default.json, for this machine (the nodes' kernel).
    let default = seccompd_profile::compile::native_arch().and_then(|arch| {
        let kernel = seccompd_agent::node::kernel_release().unwrap_or((0, 0));
        seccompd_agent::decide::builtin::default_spec(arch, kernel).ok()
    });
    let inputs = with_builtins(
        profiles.iter().filter_map(ProfileInput::of),
        None,
        default.as_ref(),
    );
    let desired = desired_state(
        &inputs,
        &mut DesiredCache::default(),
        |p| seccompd_profile::check_for_node(p).map(Accepted::from),
        std::time::Instant::now(),
    );
    let mut out = ExpectedDir {
        files: BTreeMap::new(),
        either: BTreeSet::new(),
    };
    for (name, want) in desired {
        let file = format!("{name}.json");
        match want.target {
            Target::Install(r) => {
                out.files.insert(file, r.bytes.to_vec());
            }
            Target::Invalid(_) | Target::Unchecked { .. } => {
                out.either.insert(file);
            }
        }
    }
    out
}

/// Runs a storm against the cluster `client` talks to.
pub async fn run(client: Client, cfg: StormConfig) -> StormReport {
    let root = HostRoot::new(&cfg.work);
    let mut report = StormReport::default();
    let allowed: Arc<BTreeSet<Vec<u8>>> = Arc::new(
        variants()
            .iter()
            .map(|v| {
                render(&resolve("v", v, |_| None).expect("no base"))
                    .bytes
                    .to_vec()
            })
            .collect(),
    );

    // Let the first agent create the directory before the reader starts.
    let first = root.spawn(&cfg.binary, &cfg.kubeconfig);
    let dir = root.dir();
    let start = Instant::now();
    while !dir.is_dir() && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill9();

    let stop_reader = Arc::new(AtomicBool::new(false));
    let stop_mutator = Arc::new(AtomicBool::new(false));
    let reader = {
        let (dir, stop, allowed, prefix) = (
            dir.clone(),
            stop_reader.clone(),
            allowed.clone(),
            cfg.prefix.clone(),
        );
        std::thread::spawn(move || read_until(&dir, &stop, &allowed, &prefix))
    };
    let mutator = {
        let (client, stop, prefix, n) = (
            client.clone(),
            stop_mutator.clone(),
            cfg.prefix.clone(),
            cfg.profiles,
        );
        tokio::spawn(async move { mutate_until(client, &stop, &prefix, n).await })
    };

    let storm_start = Instant::now();
    while report.kills < cfg.kills {
        let temp_before = temp_files(&dir);
        let mut agent = root.spawn(&cfg.binary, &cfg.kubeconfig);
        let life = cfg.max_life.mul_f64(fastrand::f64());
        tokio::time::sleep(life).await;
        if !agent.alive() {
            report.early_exits += 1;
        }
        agent.kill9();
        report.kills += 1;
        if temp_files(&dir) > temp_before {
            report.kills_mid_write += 1;
        }
    }
    report.storm = storm_start.elapsed();

    stop_mutator.store(true, Ordering::Release);
    let ops = mutator.await.expect("the mutator task");
    report.creates = ops.creates;
    report.updates = ops.updates;
    report.deletes = ops.deletes;
    report.api_errors = ops.errors;

    // One more agent, left alive: the directory must come to match the API exactly, while
    // the reader keeps checking every file.
    let last = root.spawn(&cfg.binary, &cfg.kubeconfig);
    let api: Api<SeccompProfile> = Api::all(client.clone());
    let converge_start = Instant::now();
    loop {
        let outcome = match api.list(&ListParams::default()).await {
            Ok(list) => expected_files(&list.items).check(&dir),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                report.convergence = Some(converge_start.elapsed());
                break;
            }
            Err(e) if converge_start.elapsed() > cfg.converge_within => {
                report.convergence_error = Some(e);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    stop_reader.store(true, Ordering::Release);
    let seen = reader.join().expect("the reader thread");
    report.reads = seen.reads;
    report.violations = seen.violations;
    report.max_temp_files = seen.max_temp_files;
    last.kill9();

    for i in 0..cfg.profiles {
        let _ = api
            .delete(&format!("{}-{i}", cfg.prefix), &DeleteParams::default())
            .await;
    }
    report
}

/// How many of the agent's temporary files are in `dir`.
fn temp_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
                .count()
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Seen {
    reads: u64,
    violations: Vec<String>,
    max_temp_files: usize,
}

/// Reads every profile file in `dir` over and over until `stop`; the storm's own files must
/// hold one of the `allowed` renderings in full, any other file a complete JSON document.
fn read_until(dir: &Path, stop: &AtomicBool, allowed: &BTreeSet<Vec<u8>>, prefix: &str) -> Seen {
    let mut seen = Seen::default();
    while !stop.load(Ordering::Acquire) {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut temp_files = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                // The agent's temporary files and its manifest: never a name a pod can
                // reference.
                if name.starts_with(TEMP_PREFIX) {
                    temp_files += 1;
                }
                continue;
            }
            let bytes = match fs::read(entry.path()) {
                Ok(b) => b,
                // Removed or replaced between listing and reading: nothing was visible.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    seen.violations.push(format!("{name}: unreadable: {e}"));
                    continue;
                }
            };
            seen.reads += 1;
            let ok = if name.starts_with(prefix) {
                allowed.contains(&bytes)
            } else {
                serde_json::from_slice::<serde_json::Value>(&bytes).is_ok()
            };
            if !ok && seen.violations.len() < 100 {
                seen.violations.push(format!(
                    "{name}: {} bytes, not a complete valid profile: {:?}",
                    bytes.len(),
                    String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
                ));
            }
        }
        seen.max_temp_files = seen.max_temp_files.max(temp_files);
    }
    seen
}

#[derive(Default)]
struct Ops {
    creates: usize,
    updates: usize,
    deletes: usize,
    errors: usize,
}

/// Creates, updates and deletes profiles `<prefix>-<i>` at random until `stop`.
async fn mutate_until(client: Client, stop: &AtomicBool, prefix: &str, n: usize) -> Ops {
    let api: Api<SeccompProfile> = Api::all(client);
    let variants = variants();
    let mut exists = vec![false; n];
    let mut ops = Ops::default();
    while !stop.load(Ordering::Acquire) {
        let i = fastrand::usize(..n);
        let name = format!("{prefix}-{i}");
        let spec = variants[fastrand::usize(..variants.len())].clone();
        let result = if !exists[i] {
            ops.creates += 1;
            let p = SeccompProfile::new(&name, SeccompProfileSpec(spec));
            api.create(&PostParams::default(), &p).await.map(|_| true)
        } else if fastrand::u8(..10) < 6 {
            ops.updates += 1;
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .map(|_| true)
        } else {
            ops.deletes += 1;
            api.delete(&name, &DeleteParams::default())
                .await
                .map(|_| false)
        };
        match result {
            Ok(now_exists) => exists[i] = now_exists,
            Err(_) => {
                ops.errors += 1;
                exists[i] = api.get_opt(&name).await.ok().flatten().is_some();
            }
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(..10))).await;
    }
    ops
}
