//! What differs between the two systems under test: their SeccompProfile resource, how a
//! profile's spec is written for each, where its file lands on a node, what its status says
//! when it is installed, and which pods are theirs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Event;
use kube::api::{ApiResource, DynamicObject, ObjectMeta};
use seccompd_profile::compile::native_arch;
use seccompd_profile::decode::{self, Document};
use seccompd_profile::import::{DEFAULT_CAPABILITIES, Target, import, parse_kernel};
use serde_json::{Value, json};

use crate::apimetrics;
use crate::node::Node;

/// The API group of SPO's resources.
pub const SPO_GROUP: &str = "security-profiles-operator.x-k8s.io";

/// Label on everything the bench creates.
pub const BENCH_LABEL: &str = "seccompd.dev/vs-spo-bench";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    Seccompd,
    Spo,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Seccompd => "seccompd",
            System::Spo => "spo",
        }
    }

    /// The API group of the system's own resources.
    pub fn group(self) -> &'static str {
        match self {
            System::Seccompd => apimetrics::SECCOMPD_GROUP,
            System::Spo => SPO_GROUP,
        }
    }

    /// Its SeccompProfile resource (cluster-scoped in both).
    pub fn profile_resource(self) -> ApiResource {
        match self {
            System::Seccompd => ApiResource::erase::<seccompd_api::SeccompProfile>(&()),
            System::Spo => ApiResource {
                group: SPO_GROUP.into(),
                version: "v1".into(),
                api_version: format!("{SPO_GROUP}/v1"),
                kind: "SeccompProfile".into(),
                plural: "seccompprofiles".into(),
            },
        }
    }

    /// The namespace of its pods.
    pub fn namespace(self) -> &'static str {
        match self {
            System::Seccompd => "seccompd-system",
            System::Spo => "security-profiles-operator",
        }
    }

    /// Label selector of its per-node daemon's pods; the namespace's other pods are its
    /// controllers (seccompd's controller; SPO's operator and webhook).
    pub fn daemon_selector(self) -> &'static str {
        match self {
            System::Seccompd => "app.kubernetes.io/component=agent",
            System::Spo => "name=spod",
        }
    }

    /// `localhostProfile` of profile `name`, relative to the kubelet's seccomp directory.
    pub fn localhost_profile(self, name: &str) -> String {
        match self {
            System::Seccompd => format!("seccompd/{name}.json"),
            System::Spo => format!("operator/{name}.json"),
        }
    }

    /// Where the file of profile `name` on `node` is on this host.
    pub fn node_file(self, node: &Node, name: &str) -> PathBuf {
        node.file(&Path::new("seccomp").join(self.localhost_profile(name)))
    }

    /// Whether nodes should register with seccompd's taint (docs/operations.md) when this
    /// system runs: seccompd asks its users to; SPO has no such step, and with seccompd paused
    /// nothing would remove the taint.
    pub fn register_taint(self) -> bool {
        self == System::Seccompd
    }

    /// Whether the object's status says the profile is installed (on every node).
    pub fn installed(self, obj: &DynamicObject, nodes: usize) -> bool {
        let status = &obj.data["status"];
        match self {
            System::Seccompd => {
                status["phase"] == "Installed"
                    && status["installedNodes"].as_u64() >= Some(nodes as u64)
            }
            System::Spo => status["status"] == "Installed",
        }
    }

    /// Whether the system has finished with the change of a profile's spec that made its
    /// `generation`, as the system itself tells it: seccompd's status (of `obj`, the profile
    /// read now) describes that generation or a later one and says `Installed` on every node;
    /// SPO's status does not follow spec changes (it stays `Installed`), and its daemons
    /// announce each file they save with a `SavedSeccompProfile` Event, so for SPO it is such
    /// an Event from every node that `seen_before` (the Events' resource versions before the
    /// change) does not hold.
    pub fn settled(
        self,
        obj: Option<&DynamicObject>,
        generation: Option<i64>,
        events: &[Event],
        seen_before: &BTreeSet<String>,
        nodes: &[Node],
    ) -> bool {
        match self {
            System::Seccompd => obj.is_some_and(|obj| {
                obj.data["status"]["observedGeneration"].as_i64() >= generation
                    && self.installed(obj, nodes.len())
            }),
            System::Spo => nodes.iter().all(|n| {
                events.iter().any(|e| {
                    let new = e
                        .metadata
                        .resource_version
                        .as_ref()
                        .is_some_and(|v| !seen_before.contains(v));
                    let from_node = e
                        .message
                        .as_deref()
                        .is_some_and(|m| m.ends_with(&format!(" on {}", n.name)));
                    new && from_node
                })
            }),
        }
    }

    /// The field selector of the Events that say the system saved profile `name`'s file on a
    /// node (SPO's `reasonSavedProfile`); seccompd says it in the status, not with Events.
    pub fn saved_events(self, name: &str) -> Option<String> {
        match self {
            System::Seccompd => None,
            System::Spo => Some(format!(
                "involvedObject.name={name},reason=SavedSeccompProfile"
            )),
        }
    }

    /// What the status says, in one line, for the bad-profile table.
    pub fn status_line(self, obj: &DynamicObject) -> String {
        let status = &obj.data["status"];
        let text = match self {
            System::Seccompd => format!(
                "{} {}",
                status["phase"].as_str().unwrap_or("(no status)"),
                status["message"].as_str().unwrap_or("")
            ),
            System::Spo => format!(
                "{} {}",
                status["status"].as_str().unwrap_or("(no status)"),
                status["conditions"][0]["message"].as_str().unwrap_or("")
            ),
        };
        text.trim().to_string()
    }

    /// A SeccompProfile object of this system with `spec`.
    pub fn object(self, name: &str, run: &str, spec: Value) -> DynamicObject {
        let ar = self.profile_resource();
        let mut obj = DynamicObject::new(name, &ar);
        obj.metadata = ObjectMeta {
            name: Some(name.into()),
            labels: Some([(BENCH_LABEL.to_string(), run.to_string())].into()),
            ..ObjectMeta::default()
        };
        obj.data = json!({ "spec": spec });
        obj
    }

    /// The spec each system is given for a JSON profile file, the way its users would apply it:
    /// seccompd's users convert Docker-format files with `seccompd import` (its library
    /// function here); SPO's users paste the JSON into the spec as it is (its API server then
    /// drops the fields its schema lacks).
    pub fn spec_from_file(self, bytes: &[u8]) -> anyhow::Result<Value> {
        match self {
            System::Seccompd => {
                let docs = decode::decode(bytes).context("decoding the profile")?;
                let Some(Document::Json(profile)) = docs.into_iter().next() else {
                    anyhow::bail!("not a JSON seccomp profile");
                };
                let target = Target {
                    arch: native_arch().context("this machine's architecture is unknown")?,
                    capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
                    kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                        .ok()
                        .and_then(|s| parse_kernel(&s))
                        .unwrap_or((0, 0)),
                };
                let (spec, _notes) = import(&profile, &target).context("importing")?;
                Ok(serde_json::to_value(spec)?)
            }
            System::Spo => Ok(serde_json::from_slice(bytes)?),
        }
    }
}

/// The calls the updates answer with ENOSYS, one more per round (neither is in a shared
/// profile): the first round adds a rule for `uselib`, the second one for `ustat` too.
const UPDATE_CALLS: [&str; 2] = ["uselib", "ustat"];

/// How many rounds of updates [`updated`] can make, each changing every profile's bytes.
const UPDATE_ROUNDS: usize = UPDATE_CALLS.len();

/// `spec` after update round `round` (0-based, below [`UPDATE_ROUNDS`]): one more rule per
/// round, each answering one more call with ENOSYS.
pub fn updated(spec: &Value, round: usize) -> Value {
    let mut spec = spec.clone();
    let calls = &UPDATE_CALLS[..=round.min(UPDATE_ROUNDS - 1)];
    let rule = json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 38, "names": calls});
    match spec["syscalls"].as_array_mut() {
        Some(rules) => rules.push(rule),
        None => spec["syscalls"] = json!([rule]),
    }
    spec
}

/// Calls the generated profiles allow besides their base's, one each (none is in
/// centos8-ls.json), so that they differ.
const EXTRA_CALLS: [&str; 10] = [
    "uname",
    "getrandom",
    "getcwd",
    "lseek",
    "sysinfo",
    "getuid",
    "getgid",
    "geteuid",
    "getegid",
    "umask",
];

/// Generated profile `i`: `base` allowing one more call.
pub fn generated(base: &Value, i: usize) -> Value {
    let mut spec = base.clone();
    let rule = json!({"action": "SCMP_ACT_ALLOW", "names": [EXTRA_CALLS[i % EXTRA_CALLS.len()]]});
    if let Some(rules) = spec["syscalls"].as_array_mut() {
        rules.push(rule);
    }
    spec
}

/// The three bad profiles: name, what is wrong, spec. Each allows everything else, so that a
/// pod using it fails only because of what is wrong.
pub fn bad_profiles() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "unknown-syscall",
            "an unknown syscall name (mkdirr)",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"action": "SCMP_ACT_ERRNO", "names": ["mkdir", "mkdirr"]}]}),
        ),
        (
            "bad-arch",
            "an unsupported architecture (SCMP_ARCH_AMD64)",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "architectures": ["SCMP_ARCH_AMD64"],
                   "syscalls": [{"action": "SCMP_ACT_ERRNO", "names": ["mkdir"]}]}),
        ),
        (
            "errno-5000",
            "errnoRet 5000 (beyond the kernel's largest errno, 4095)",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"action": "SCMP_ACT_ERRNO", "errnoRet": 5000, "names": ["mkdir"]}]}),
        ),
    ]
}
