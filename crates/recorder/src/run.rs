//! The recorder's loop: notes what the reading thread attributes and, when something changed,
//! writes this node's part of each active recording. Nothing else: the elected controller
//! decides each recording's outcome from the parts (the controller crate's `recordings`), so the
//! API requests a recording costs grow with the nodes that run its pods and with what they
//! see, not with time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::{Notify, mpsc};
use tracing::{info, warn};

use super::RecorderArgs;
use super::audit_socket::audit_status;
use super::denials::{self, ReportState};
use super::events::{DenialNotice, EventSender};
use super::health::{Readiness, RecorderProbes};
use super::metrics::{LostCause, RecorderMetrics};
use super::probe::{self, Hearing};
use super::reader::{self, Seen};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use seccompd_api::{LostRecords, NodeRecording, SeccompProfileRecording};
use seccompd_profile::compile::native_arch;
use seccompd_profile::model::Arch;
use seccompd_recording::audit::HostPid;
use seccompd_recording::cgroup::PodUid;
use seccompd_recording::denials::{EventGate, NodeDenials, Outcome};
use seccompd_recording::part::{
    NodeView, Pass, PodView, RecordingView, Selection, node_part, trim_pod, worth_writing,
};
use seccompd_recording::tally::NodeTally;
use seccompd_runtime::apiserver::reflect;

/// How often the tally is looked at for parts to bring up to date (no API request unless a
/// part changed).
const TICK: Duration = Duration::from_secs(1);

/// How many attributed records may wait for the loop before the reader blocks.
const BACKLOG: usize = 65_536;

/// How long a deleted pod's calls are kept for recordings that still want them.
const GONE_POD_MEMORY: Duration = Duration::from_secs(3600);

/// Prefix of each recorder's field manager; the node's name follows, so that each owns its
/// own entry of `status.nodes`.
const PART_MANAGER: &str = "seccompd-recorder";

/// Runs the recorder until SIGTERM or SIGINT.
pub async fn run(args: RecorderArgs) -> anyhow::Result<()> {
    seccompd_runtime::telemetry::init_logging();
    let arch = native_arch().context("this machine's architecture is not one seccompd knows")?;
    let metrics = Arc::new(RecorderMetrics::new());
    let readiness = Arc::new(Readiness::default());
    serve_probes(args.health_addr, metrics.clone(), readiness.clone());
    let (to_loop, mut seen) = mpsc::channel(BACKLOG);
    // First, so that missing privileges fail the pod at once.
    reader::spawn(
        args.proc_root.clone(),
        HostPid(std::process::id()),
        metrics.records_read.clone(),
        to_loop,
    )
    .context("cannot read the kernel's audit records")?;
    let kernel_lost = match audit_status() {
        Ok(status) => {
            info!(
                lost = status.lost,
                backlog_limit = status.backlog_limit,
                "the kernel's audit queue"
            );
            metrics.set_kernel_lost(status.lost);
            Some(status.lost)
        }
        Err(err) => {
            warn!(%err, "cannot read the kernel's count of dropped audit records; only this recorder's own losses are reported");
            None
        }
    };
    let client = seccompd_runtime::apiserver::client()
        .await
        .context("cannot configure the Kubernetes client")?;
    let events = super::events::spawn(client.clone(), &args.node_name, metrics.clone());
    let wake = Arc::new(Notify::new());
    let (pods, _pods_watch) = reflect(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields(&format!("spec.nodeName={}", args.node_name)),
        trim_pod,
        wake.clone(),
    );
    let (recordings, _recordings_watch) = reflect(
        Api::<SeccompProfileRecording>::all(client.clone()),
        watcher::Config::default(),
        |r| r.metadata.managed_fields = None,
        wake.clone(),
    );
    pods.wait_until_ready()
        .await
        .context("the pod watch ended before its first list")?;
    recordings
        .wait_until_ready()
        .await
        .context("the recording watch ended before its first list")?;
    readiness.set_watching();
    info!(node = %args.node_name, "seccompd recorder reading audit records");

    let mut recorder = Recorder {
        client,
        node: args.node_name,
        arch,
        tally: NodeTally::default(),
        pods: HashMap::new(),
        written: HashMap::new(),
        kernel_lost_readable: kernel_lost.is_some(),
        hearing: probe_now(),
        metrics,
        pass: Pass(0),
        denials: NodeDenials::default(),
        report: ReportState::new(now(), kernel_lost),
        event_gate: EventGate::default(),
        events: Some(events),
    };
    let mut tick = tokio::time::interval(TICK);
    let mut shutdown = std::pin::pin!(seccompd_runtime::shutdown_signal());
    loop {
        tokio::select! {
            biased;
            Some(s) = seen.recv() => recorder.note(s),
            _ = tick.tick() => recorder.tick(&pods, &recordings).await,
            _ = wake.notified() => recorder.tick(&pods, &recordings).await,
            _ = &mut shutdown => {
                info!("shutting down");
                return Ok(());
            }
        }
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `addr` in a task of its own.
fn serve_probes(addr: SocketAddr, metrics: Arc<RecorderMetrics>, readiness: Arc<Readiness>) {
    tokio::spawn(async move {
        let probes = Arc::new(RecorderProbes { metrics, readiness });
        if let Err(err) = seccompd_runtime::health::serve_probes(addr, probes).await {
            warn!(%err, %addr, "health endpoint stopped");
        }
    });
}

/// Makes a probe record now; what the recorder hears of it decides [`Hearing`].
fn probe_now() -> Hearing {
    let now = Instant::now();
    match probe::fire() {
        Ok(()) => Hearing::probed(now),
        Err(err) => Hearing::unprobed(&err, now),
    }
}

/// What this recorder knows of one recording, by uid: a recording recreated under the same
/// name is another recording, and starts from nothing.
struct Written {
    /// Losses (the kernel's and this recorder's) when the recording was first seen.
    lost_base: u64,
    /// The pass in which it was first seen.
    first_seen: Pass,
    /// This node's part as the recording's status held it when first seen: what an earlier
    /// run of this recorder wrote, and this one cannot see again.
    carried: Option<NodeRecording>,
    /// The part last applied.
    part: Option<NodeRecording>,
}

/// A pod of this node as last seen, and since when it is gone.
struct Remembered {
    view: PodView,
    gone_since: Option<Instant>,
}

struct Recorder {
    client: Client,
    node: String,
    arch: Arch,
    tally: NodeTally,
    pods: HashMap<PodUid, Remembered>,
    /// By recording uid.
    written: HashMap<String, Written>,
    kernel_lost_readable: bool,
    hearing: Hearing,
    metrics: Arc<RecorderMetrics>,
    /// The current pass (see [`Pass`]).
    pass: Pass,
    /// What seccompd profiles refused on this node (or would have, in Audit mode).
    denials: NodeDenials,
    /// This node's denial report, as last written.
    report: ReportState,
    /// Which denials get an Event.
    event_gate: EventGate,
    /// Where Events go (`None`: sent nowhere, in unit tests).
    events: Option<EventSender>,
}

/// The time now, as the API writes it.
fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

impl Recorder {
    fn note(&mut self, seen: Seen) {
        match seen {
            Seen::Call(at, call, action) => {
                self.metrics.record_attributed();
                self.tally.note(&at, &call);
                if let Some(action) = action {
                    let view = self.pods.get(&at.pod).map(|p| &p.view);
                    let outcome = self.denials.note(&at, &call.name, action, &now(), view);
                    self.counted(&outcome);
                }
            }
            Seen::Unmapped => {
                self.metrics.record_lost(LostCause::Unmapped);
                self.tally.note_unmapped();
            }
            Seen::Overflow => {
                self.metrics.record_lost(LostCause::Overflow);
                self.tally.note_overflow();
            }
            Seen::Probe => {
                if !self.hearing.is_heard() {
                    info!(
                        "heard the audit record of this recorder's own probe: recording works on this node"
                    );
                }
                self.hearing.heard();
                self.metrics.set_audit_available(true);
            }
        }
    }

    /// The node's losses so far: the kernel's (when readable) and this recorder's.
    fn losses(&mut self) -> u64 {
        self.kernel_lost() + self.tally.losses()
    }

    /// The kernel's `audit_lost` now; 0 when it cannot be read.
    fn kernel_lost(&mut self) -> u64 {
        if self.kernel_lost_readable {
            match audit_status() {
                Ok(status) => {
                    self.metrics.set_kernel_lost(status.lost);
                    u64::from(status.lost)
                }
                Err(err) => {
                    warn!(%err, "cannot read the kernel's count of dropped audit records any more");
                    self.kernel_lost_readable = false;
                    0
                }
            }
        } else {
            0
        }
    }

    /// Whether this node can hear audit records, moved on with the clock (and a new probe
    /// made when one is due).
    fn listen(&mut self) {
        let now = Instant::now();
        if self.hearing.tick(now)
            && let Some(reason) = self.hearing.deaf_reason()
        {
            warn!(%reason, "this recorder cannot hear the kernel's audit records: recordings of pods on this node will fail");
            self.metrics.set_audit_available(false);
        }
        if self.hearing.probe_due(now) {
            self.hearing = probe_now();
        }
    }

    async fn tick(&mut self, pods: &Store<Pod>, recordings: &Store<SeccompProfileRecording>) {
        self.pass = Pass(self.pass.0 + 1);
        self.listen();
        self.remember_pods(pods);
        self.count_denials().await;
        let active: Vec<Arc<SeccompProfileRecording>> = recordings
            .state()
            .into_iter()
            .filter(|r| !r.is_over())
            .collect();
        // A deleted (or finished) recording's state goes with it.
        self.written
            .retain(|uid, _| active.iter().any(|r| r.uid().as_deref() == Some(uid)));
        if active.is_empty() {
            return;
        }
        let losses = self.losses();
        let views: Vec<PodView> = self.pods.values().map(|p| p.view.clone()).collect();
        for rec in active {
            if let Err(err) = self.tick_one(&rec, &views, losses).await {
                self.metrics.record_api_error();
                warn!(recording = %rec.name_any(), namespace = ?rec.namespace(), err = %format!("{err:#}"), "this node's part not written; retrying");
            }
        }
    }

    /// Counts what the tally made of records in the metrics, and tells the pod of its first
    /// denial of each call (rate-limited).
    fn counted(&mut self, outcome: &Outcome) {
        denials::count(&self.metrics, outcome);
        if let Outcome::Tallied {
            key, pod_uid, pod, ..
        } = outcome
            && let Some(events) = &self.events
            && self
                .event_gate
                .admit(pod_uid, &key.syscall, key.action, Instant::now())
        {
            events.send(DenialNotice {
                pod: pod.clone(),
                uid: pod_uid.clone(),
                profile: key.profile.clone(),
                syscall: key.syscall.clone(),
                action: key.action,
            });
        }
    }

    /// Counts the records that waited for their pod, and writes this node's denial report
    /// when it is due and changed.
    async fn count_denials(&mut self) {
        let pods = &self.pods;
        let outcomes = self
            .denials
            .resolve_pending(&now(), |uid| pods.get(uid).map(|p| &p.view));
        for outcome in &outcomes {
            self.counted(outcome);
        }
        let at = Instant::now();
        if !self.report.due(at) {
            return;
        }
        let kernel = match self.report.kernel_lost_base {
            Some(base) => self.kernel_lost().saturating_sub(u64::from(base)),
            None => 0,
        };
        let lost = LostRecords {
            kernel,
            overflows: self.tally.overflows(),
            unattributed: self.tally.unmapped(),
            ..Default::default()
        };
        let report = self.denials.report(
            Some(self.report.since.clone()),
            self.hearing.deaf_reason().map(str::to_string),
            self.metrics.records_read.get(),
            lost,
        );
        if !self.report.changed(&report) {
            return;
        }
        match denials::apply_report(&self.client, &self.node, &report).await {
            Ok(()) => {
                self.metrics.record_denial_report_write();
                self.report.written(report, at);
            }
            Err(err) => {
                self.metrics.record_api_error();
                warn!(%err, "this node's denial report not written; retrying");
            }
        }
    }

    /// Keeps every pod of the node seen since it started, for recordings that select a pod
    /// already gone; forgets those gone for [`GONE_POD_MEMORY`].
    fn remember_pods(&mut self, pods: &Store<Pod>) {
        let now = Instant::now();
        let current: HashMap<PodUid, PodView> = pods
            .state()
            .iter()
            .filter_map(|p| PodView::of(p))
            .map(|v| (v.uid.clone(), v))
            .collect();
        for remembered in self.pods.values_mut() {
            if !current.contains_key(&remembered.view.uid) && remembered.gone_since.is_none() {
                remembered.view.ended = true;
                remembered.view.gone_at = Some(self.pass);
                remembered.gone_since = Some(now);
            }
        }
        for (uid, view) in current {
            self.pods.insert(
                uid,
                Remembered {
                    view,
                    gone_since: None,
                },
            );
        }
        let forgotten: Vec<PodUid> = self
            .pods
            .iter()
            .filter(|(_, p)| {
                p.gone_since
                    .is_some_and(|t| now.duration_since(t) > GONE_POD_MEMORY)
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in forgotten {
            self.pods.remove(&uid);
            self.event_gate.forget(&uid);
            self.tally.forget(&uid);
        }
    }

    async fn tick_one(
        &mut self,
        rec: &SeccompProfileRecording,
        pods: &[PodView],
        losses: u64,
    ) -> anyhow::Result<()> {
        let (Some(uid), Some(namespace)) = (rec.uid(), rec.namespace()) else {
            return Ok(());
        };
        // An unusable selector: the controller fails the recording.
        let Ok(selection) = Selection::new(&namespace, &rec.spec) else {
            return Ok(());
        };
        let pass = self.pass;
        let written = self.written.entry(uid.clone()).or_insert_with(|| Written {
            lost_base: losses,
            first_seen: pass,
            carried: rec
                .status
                .as_ref()
                .and_then(|s| s.nodes.iter().find(|p| p.node_name == self.node))
                .cloned(),
            part: None,
        });
        let node = NodeView {
            node: &self.node,
            arch: self.arch,
            pods,
            tally: &self.tally,
            audit_unavailable: self.hearing.deaf_reason(),
        };
        let view = RecordingView {
            spec: &rec.spec,
            selection: &selection,
            first_seen: Some(written.first_seen),
            carried: written.carried.as_ref(),
        };
        let Some(part) = node_part(&node, &view, losses.saturating_sub(written.lost_base)) else {
            return Ok(());
        };
        if !worth_writing(written.part.as_ref(), &part) {
            return Ok(());
        }
        let api: Api<SeccompProfileRecording> = Api::namespaced(self.client.clone(), &namespace);
        apply_part(&api, rec, &uid, &part).await?;
        self.metrics.record_part_write();
        written.part = Some(part);
        Ok(())
    }
}

/// Writes this node's part, owned by this node's recorder alone (`status.nodes` is a map
/// keyed by node name, so each recorder's entry is its own), to the recording with `uid`
/// only: the API server refuses the write if the name now belongs to another recording.
async fn apply_part(
    api: &Api<SeccompProfileRecording>,
    rec: &SeccompProfileRecording,
    uid: &str,
    part: &NodeRecording,
) -> anyhow::Result<()> {
    let body = json!({
        "apiVersion": SeccompProfileRecording::api_version(&()),
        "kind": SeccompProfileRecording::kind(&()),
        "metadata": {"name": rec.name_any(), "namespace": rec.namespace(), "uid": uid},
        "status": {"nodes": [part]},
    });
    let manager: String = format!("{PART_MANAGER}-{}", part.node_name)
        .chars()
        .take(128)
        .collect();
    api.patch_status(
        &rec.name_any(),
        &PatchParams::apply(&manager).force(),
        &Patch::Apply(body),
    )
    .await
    .context("writing this node's part")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use http::{Method, StatusCode};
    use serde_json::Value;

    use super::*;
    use seccompd_profile::model::Action;
    use seccompd_recording::audit::NamedCall;
    use seccompd_recording::cgroup::{Attribution, ContainerId};
    use seccompd_runtime::apiserver::mock::{MockApi, Received, mock_client};

    const RECORDING: &str =
        "/apis/seccompd.dev/v1alpha1/namespaces/default/seccompprofilerecordings/rec/status";
    const ID: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn recording(status: Value, version: &str) -> Value {
        json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileRecording",
            "metadata": {"name": "rec", "namespace": "default", "uid": "rec-uid",
                         "resourceVersion": version,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"podSelector": {"matchLabels": {"app": "ls"}}, "profileName": "ls"},
            "status": status,
        })
    }

    fn ended_pod() -> Value {
        json!({
            "metadata": {"name": "ls-1", "namespace": "default", "uid": "pod-uid",
                         "labels": {"app": "ls"}},
            "spec": {"nodeName": "node1", "containers": [{"name": "main"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "containerID": format!("containerd://{ID}")}]},
        })
    }

    fn recorder(client: Client) -> Recorder {
        Recorder {
            client,
            node: "node1".to_string(),
            arch: Arch::X86_64,
            tally: NodeTally::default(),
            pods: HashMap::new(),
            written: HashMap::new(),
            kernel_lost_readable: false,
            hearing: Hearing::Heard,
            metrics: Arc::new(RecorderMetrics::new()),
            pass: Pass(0),
            denials: NodeDenials::default(),
            report: ReportState::new(now(), None),
            event_gate: EventGate::default(),
            events: None,
        }
    }

    /// A recording whose only pod has ended: this node's part, once, to the recording's uid;
    /// nothing else (no read, no list, no outcome: the controller decides), and nothing at
    /// all on the next ticks while nothing changes.
    #[tokio::test]
    async fn a_node_writes_its_part_once_and_nothing_else() {
        let (client, mut api) = mock_client();
        let mut recorder = recorder(client);
        let at = Attribution {
            pod: PodUid("pod-uid".to_string()),
            container: ContainerId(ID.to_string()),
        };
        for name in ["write", "read"] {
            let call = NamedCall {
                arch: Arch::X86_64,
                name: name.to_string(),
            };
            recorder.note(Seen::Call(at.clone(), call, Some(Action::Log)));
        }
        let (views, rec) = ended_pod_and_recording();

        let server = tokio::spawn(async move {
            let part = applied_part(&mut api).await;
            let want_part = json!({"nodeName": "node1", "pods": ["ls-1"],
                "calls": [{"arch": "SCMP_ARCH_X86_64", "names": ["read", "write"]}],
                "finished": true, "lostRecords": 0, "arch": "SCMP_ARCH_X86_64"});
            assert_eq!(part.body["status"], json!({"nodes": [want_part]}));
            assert_eq!(part.body["metadata"]["name"], "rec");
            assert_eq!(
                part.body["metadata"]["uid"], "rec-uid",
                "written to this recording only"
            );
            api
        });
        for _ in 0..3 {
            recorder.tick_one(&rec, &views, 0).await.unwrap();
        }
        drop(recorder);
        server.await.unwrap().expect_no_more().await;
    }

    /// The view of an ended pod and recording `rec` at resourceVersion 6.
    fn ended_pod_and_recording() -> (Vec<PodView>, SeccompProfileRecording) {
        let pod: Pod = serde_json::from_value(ended_pod()).unwrap();
        let rec = serde_json::from_value(recording(json!({}), "6")).unwrap();
        (vec![PodView::of(&pod).unwrap()], rec)
    }

    /// Takes the recorder's server-side apply of its node's part.
    async fn applied_part(api: &mut MockApi) -> Received {
        api.expect(
            Method::PATCH,
            RECORDING,
            &["fieldManager=seccompd-recorder-node1", "force=true"],
            StatusCode::OK,
            recording(json!({}), "7"),
        )
        .await
    }

    /// A call refused under a seccompd profile is written to this node's denial report with
    /// its pod; the next pass, within the interval, makes no request.
    #[tokio::test]
    async fn a_denial_under_a_seccompd_profile_is_reported_with_its_pod_once_per_interval() {
        let (client, mut api) = mock_client();
        let mut recorder = recorder(client);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "default", "uid": "pod-uid"},
            "spec": {"nodeName": "node1", "containers": [{"name": "main"}],
                     "securityContext": {"seccompProfile": {
                         "type": "Localhost", "localhostProfile": "seccompd/ls.json"}}},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "main", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
                "containerID": format!("containerd://{ID}")}]},
        }))
        .unwrap();
        let at = Attribution {
            pod: PodUid("pod-uid".to_string()),
            container: ContainerId(ID.to_string()),
        };
        let mkdir = NamedCall {
            arch: Arch::X86_64,
            name: "mkdir".to_string(),
        };
        // The record comes before the pod's container status: it waits for it.
        recorder.note(Seen::Call(at.clone(), mkdir.clone(), Some(Action::Errno)));
        recorder.pods.insert(
            at.pod.clone(),
            Remembered {
                view: PodView::of(&pod).unwrap(),
                gone_since: None,
            },
        );
        recorder.note(Seen::Call(at, mkdir, Some(Action::Errno)));
        let server = tokio::spawn(async move {
            let body = applied_report(&mut api).await;
            assert_eq!(body["metadata"]["name"], "node1");
            let entries = &body["spec"]["entries"];
            assert_eq!(entries.as_array().unwrap().len(), 1, "{body}");
            assert_eq!(entries[0]["profile"], "ls");
            assert_eq!(entries[0]["syscall"], "mkdir");
            assert_eq!(entries[0]["action"], "SCMP_ACT_ERRNO");
            assert_eq!(entries[0]["count"], 2);
            assert_eq!(
                entries[0]["pods"],
                json!([{"namespace": "default", "name": "web-1", "container": "main"}])
            );
            api
        });
        recorder.count_denials().await;
        recorder.count_denials().await;
        drop(recorder);
        server.await.unwrap().expect_no_more().await;
    }

    /// Takes the recorder's server-side apply of its node's denial report.
    async fn applied_report(api: &mut MockApi) -> Value {
        api.expect_apply(
            "/apis/seccompd.dev/v1alpha1/seccompdenialreports/node1",
            "seccompd-recorder",
            json!({"apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompDenialReport",
                   "metadata": {"name": "node1"}, "spec": {}}),
        )
        .await
    }

    /// Records whose process was gone, and socket overflows, are counted lost in the report.
    #[tokio::test]
    async fn lost_records_are_reported_not_dropped() {
        let (client, mut api) = mock_client();
        let mut recorder = recorder(client);
        recorder.note(Seen::Unmapped);
        recorder.note(Seen::Unmapped);
        recorder.note(Seen::Overflow);
        let server = tokio::spawn(async move {
            let body = applied_report(&mut api).await;
            assert_eq!(
                body["spec"]["lost"],
                json!({"total": 3, "kernel": 0, "overflows": 1, "unattributed": 2, "unresolved": 0})
            );
            api
        });
        recorder.count_denials().await;
        drop(recorder);
        server.await.unwrap().expect_no_more().await;
    }

    /// A node that cannot hear audit records says so in its part, and lists no calls.
    #[tokio::test]
    async fn a_deaf_node_says_so_in_its_part() {
        let (client, mut api) = mock_client();
        let mut recorder = recorder(client);
        recorder.hearing = Hearing::Waiting {
            since: Instant::now() - probe::PROBE_WAIT,
        };
        recorder.listen();
        let (views, rec) = ended_pod_and_recording();
        let server = tokio::spawn(async move {
            let part = applied_part(&mut api).await;
            let node = &part.body["status"]["nodes"][0];
            assert!(
                node["auditUnavailable"]
                    .as_str()
                    .unwrap()
                    .contains("initial network namespace"),
                "{node}"
            );
            assert!(node.get("calls").is_none(), "{node}");
            api
        });
        recorder.tick_one(&rec, &views, 0).await.unwrap();
        drop(recorder);
        server.await.unwrap().expect_no_more().await;
    }
}
