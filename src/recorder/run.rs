//! The recorder's loop: notes what the reading thread attributes, and every tick writes this
//! node's part of each active recording and, when every part is in, the recording's outcome
//! and its SeccompProfile.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::{Notify, mpsc};
use tracing::{info, warn};

use super::RecorderArgs;
use super::audit_socket::audit_status;
use super::decide::cgroup::PodUid;
use super::decide::outcome::{PodView, SelectedPod, Selection, node_part, outcome};
use super::decide::tally::NodeTally;
use super::reader::{self, Seen};
use crate::api::{
    NodeRecording, RecordingPhase, SeccompProfile, SeccompProfileRecording, SeccompProfileSpec,
};
use crate::apiserver::reflect;
use crate::profile::compile::native_arch;
use crate::profile::model::Arch;

/// How often parts and outcomes are brought up to date.
const TICK: Duration = Duration::from_secs(1);

/// How many attributed records may wait for the loop before the reader blocks.
const BACKLOG: usize = 65_536;

/// How long a deleted pod's calls are kept for recordings that still want them.
const GONE_POD_MEMORY: Duration = Duration::from_secs(3600);

/// The field manager of the recordings' outcomes and the recorded profiles: the same for
/// every recorder, since any of them may write the (same) outcome.
const OUTCOME_MANAGER: &str = "seccompd-recorder";

/// Annotation on a recorded SeccompProfile naming the recording that wrote it.
pub const RECORDED_BY: &str = "seccompd.dev/recorded-by";

/// Runs the recorder until SIGTERM or SIGINT.
pub async fn run(args: RecorderArgs) -> anyhow::Result<()> {
    crate::telemetry::init_logging();
    let arch = native_arch().context("this machine's architecture is not one seccompd knows")?;
    let (to_loop, mut seen) = mpsc::channel(BACKLOG);
    // First, so that missing privileges fail the pod at once.
    reader::spawn(args.proc_root.clone(), to_loop)
        .context("cannot read the kernel's audit records")?;
    let kernel_lost = match audit_status() {
        Ok(status) => {
            info!(
                lost = status.lost,
                backlog_limit = status.backlog_limit,
                "the kernel's audit queue"
            );
            Some(status.lost)
        }
        Err(err) => {
            warn!(%err, "cannot read the kernel's count of dropped audit records; only this recorder's own losses are reported");
            None
        }
    };
    let client = Client::try_default()
        .await
        .context("cannot configure the Kubernetes client")?;
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
        wake,
    );
    pods.wait_until_ready()
        .await
        .context("the pod watch ended before its first list")?;
    recordings
        .wait_until_ready()
        .await
        .context("the recording watch ended before its first list")?;
    info!(node = %args.node_name, "seccompd recorder reading audit records");

    let mut recorder = Recorder {
        client,
        node: args.node_name,
        arch,
        tally: NodeTally::default(),
        pods: HashMap::new(),
        written: HashMap::new(),
        kernel_lost_readable: kernel_lost.is_some(),
    };
    let mut tick = tokio::time::interval(TICK);
    let mut shutdown = std::pin::pin!(crate::agent::run::shutdown_signal());
    loop {
        tokio::select! {
            biased;
            Some(s) = seen.recv() => recorder.note(s),
            _ = tick.tick() => {
                // Everything read so far counts before a part is declared final.
                while let Ok(s) = seen.try_recv() {
                    recorder.note(s);
                }
                recorder.tick(&pods, &recordings).await;
            }
            _ = &mut shutdown => {
                info!("shutting down");
                return Ok(());
            }
        }
    }
}

/// Keeps what the recorder reads of a pod: names, labels, phase and container statuses.
fn trim_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.metadata.annotations = None;
    pod.spec = pod.spec.take().map(|s| PodSpec {
        node_name: s.node_name,
        ..Default::default()
    });
    pod.status = pod.status.take().map(|s| PodStatus {
        phase: s.phase,
        container_statuses: s.container_statuses,
        init_container_statuses: s.init_container_statuses,
        ephemeral_container_statuses: s.ephemeral_container_statuses,
        ..Default::default()
    });
}

/// What this recorder wrote last for one recording.
struct Written {
    /// Losses (the kernel's and this recorder's) when the recording was first seen.
    lost_base: u64,
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
}

impl Recorder {
    fn note(&mut self, seen: Seen) {
        match seen {
            Seen::Call(at, call) => self.tally.note(&at, &call),
            Seen::Unmapped => self.tally.note_unmapped(),
            Seen::Overflow => self.tally.note_overflow(),
        }
    }

    /// The node's losses so far: the kernel's (when readable) and this recorder's.
    fn losses(&mut self) -> u64 {
        let kernel = if self.kernel_lost_readable {
            match audit_status() {
                Ok(status) => u64::from(status.lost),
                Err(err) => {
                    warn!(%err, "cannot read the kernel's count of dropped audit records any more");
                    self.kernel_lost_readable = false;
                    0
                }
            }
        } else {
            0
        };
        kernel + self.tally.losses()
    }

    async fn tick(&mut self, pods: &Store<Pod>, recordings: &Store<SeccompProfileRecording>) {
        self.remember_pods(pods);
        let losses = self.losses();
        let views: Vec<PodView> = self.pods.values().map(|p| p.view.clone()).collect();
        let active: Vec<Arc<SeccompProfileRecording>> = recordings
            .state()
            .into_iter()
            .filter(|r| {
                !matches!(
                    r.status.as_ref().and_then(|s| s.phase),
                    Some(RecordingPhase::Completed | RecordingPhase::Failed)
                )
            })
            .collect();
        self.written
            .retain(|uid, _| active.iter().any(|r| r.uid().as_deref() == Some(uid)));
        for rec in active {
            if let Err(err) = self.tick_one(&rec, &views, losses).await {
                warn!(recording = %rec.name_any(), namespace = ?rec.namespace(), err = %format!("{err:#}"), "recording not brought up to date; retrying");
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
        let api: Api<SeccompProfileRecording> = Api::namespaced(self.client.clone(), &namespace);
        let selection = match Selection::new(&namespace, &rec.spec) {
            Ok(s) => s,
            Err(message) => return self.fail(&api, rec, message).await,
        };
        let written = self.written.entry(uid).or_insert(Written {
            lost_base: losses,
            part: None,
        });
        let part = node_part(
            &self.node,
            &rec.spec,
            &selection,
            pods,
            &self.tally,
            losses.saturating_sub(written.lost_base),
        );
        if written.part.as_ref() != Some(&part) {
            apply_part(&api, rec, &part).await?;
            written.part = Some(part);
        }
        self.decide(&api, rec, &selection).await
    }

    /// Decides the recording from every node's part, as written, and writes the outcome
    /// (first the profile, when there is one) if it differs from the status.
    async fn decide(
        &self,
        api: &Api<SeccompProfileRecording>,
        rec: &SeccompProfileRecording,
        selection: &Selection,
    ) -> anyhow::Result<()> {
        let name = rec.name_any();
        let fresh = api
            .get_status(&name)
            .await
            .context("reading the recording")?;
        let status = fresh.status.clone().unwrap_or_default();
        if matches!(
            status.phase,
            Some(RecordingPhase::Completed | RecordingPhase::Failed)
        ) {
            return Ok(());
        }
        let pods: Api<Pod> =
            Api::namespaced(self.client.clone(), &rec.namespace().unwrap_or_default());
        let selected: Vec<SelectedPod> = pods
            .list(&ListParams::default().labels_from(selection.selector()))
            .await
            .context("listing the selected pods")?
            .items
            .iter()
            .map(|p| SelectedPod {
                node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
                ended: PodView::of(p).is_some_and(|v| v.ended),
            })
            .collect();
        let out = outcome(&fresh.spec, &status.nodes, &selected, self.arch);
        if let Some(spec) = out.profile {
            apply_profile(&self.client, &fresh, spec).await?;
            info!(recording = %name, profile = %fresh.spec.profile_name, calls = out.status.calls_recorded, "recorded profile written");
        }
        let mut current = status;
        current.nodes.clear();
        if current != out.status {
            apply_outcome(api, &fresh, &out.status).await?;
        }
        Ok(())
    }

    async fn fail(
        &self,
        api: &Api<SeccompProfileRecording>,
        rec: &SeccompProfileRecording,
        message: String,
    ) -> anyhow::Result<()> {
        let status = crate::api::SeccompProfileRecordingStatus {
            phase: Some(RecordingPhase::Failed),
            message: Some(message),
            ..Default::default()
        };
        apply_outcome(api, rec, &status).await
    }
}

/// The object header every apply carries.
fn header(rec: &SeccompProfileRecording) -> serde_json::Value {
    json!({
        "apiVersion": SeccompProfileRecording::api_version(&()),
        "kind": SeccompProfileRecording::kind(&()),
        "metadata": {"name": rec.name_any(), "namespace": rec.namespace()},
    })
}

/// Writes this node's part, owned by this node's recorder alone (`status.nodes` is a map
/// keyed by node name, so each recorder's entry is its own).
async fn apply_part(
    api: &Api<SeccompProfileRecording>,
    rec: &SeccompProfileRecording,
    part: &NodeRecording,
) -> anyhow::Result<()> {
    let mut body = header(rec);
    body["status"] = json!({ "nodes": [part] });
    let manager: String = format!("{OUTCOME_MANAGER}-{}", part.node_name)
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

/// Writes the outcome, only over the status it was decided from (the resourceVersion is a
/// precondition): a recorder that decided from an older state retries on its next tick.
async fn apply_outcome(
    api: &Api<SeccompProfileRecording>,
    decided_from: &SeccompProfileRecording,
    status: &crate::api::SeccompProfileRecordingStatus,
) -> anyhow::Result<()> {
    let mut body = header(decided_from);
    body["metadata"]["resourceVersion"] = json!(decided_from.resource_version());
    body["status"] = serde_json::to_value(status).context("serializing the outcome")?;
    api.patch_status(
        &decided_from.name_any(),
        &PatchParams::apply(OUTCOME_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .context("writing the recording's outcome")?;
    Ok(())
}

/// Creates or replaces the recorded SeccompProfile.
async fn apply_profile(
    client: &Client,
    rec: &SeccompProfileRecording,
    spec: crate::profile::model::ProfileSpec,
) -> anyhow::Result<()> {
    let name = &rec.spec.profile_name;
    let mut profile = SeccompProfile::new(name, SeccompProfileSpec(spec));
    profile.metadata.annotations = Some(
        [(
            RECORDED_BY.to_string(),
            format!("{}/{}", rec.namespace().unwrap_or_default(), rec.name_any()),
        )]
        .into(),
    );
    let mut body = serde_json::to_value(&profile).context("serializing the profile")?;
    body["apiVersion"] = json!(SeccompProfile::api_version(&()));
    body["kind"] = json!(SeccompProfile::kind(&()));
    Api::<SeccompProfile>::all(client.clone())
        .patch(
            name,
            &PatchParams::apply(OUTCOME_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .with_context(|| format!("writing SeccompProfile {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use http::{Method, StatusCode};
    use serde_json::Value;

    use super::*;
    use crate::apiserver::mock::mock_client;
    use crate::recorder::decide::audit::NamedCall;
    use crate::recorder::decide::cgroup::{Attribution, ContainerId};

    const RECORDING: &str =
        "/apis/seccompd.dev/v1alpha1/namespaces/default/seccompprofilerecordings/rec/status";
    const ID: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn recording(status: Value, version: &str) -> Value {
        json!({
            "apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfileRecording",
            "metadata": {"name": "rec", "namespace": "default", "uid": "rec-uid",
                         "resourceVersion": version},
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

    /// One tick of a recording whose only pod has ended: this node's part, then (every part
    /// being final) the profile and the outcome, over the status it was decided from; the next
    /// tick finds it Completed and writes nothing.
    #[tokio::test]
    async fn an_ended_pod_gives_the_part_the_profile_and_the_outcome_in_that_order() {
        let (client, mut api) = mock_client();
        let mut recorder = Recorder {
            client,
            node: "node1".to_string(),
            arch: Arch::X86_64,
            tally: NodeTally::default(),
            pods: HashMap::new(),
            written: HashMap::new(),
            kernel_lost_readable: false,
        };
        let at = Attribution {
            pod: PodUid("pod-uid".to_string()),
            container: ContainerId(ID.to_string()),
        };
        for name in ["write", "read"] {
            let call = NamedCall {
                arch: Arch::X86_64,
                name: name.to_string(),
            };
            recorder.note(Seen::Call(at.clone(), call));
        }
        let pod: Pod = serde_json::from_value(ended_pod()).unwrap();
        let views = vec![PodView::of(&pod).unwrap()];
        let rec: SeccompProfileRecording =
            serde_json::from_value(recording(json!({}), "6")).unwrap();

        let server = tokio::spawn(async move {
            let part = api
                .expect(
                    Method::PATCH,
                    RECORDING,
                    &["fieldManager=seccompd-recorder-node1", "force=true"],
                    StatusCode::OK,
                    recording(json!({}), "7"),
                )
                .await;
            let want_part = json!({"nodeName": "node1", "pods": ["ls-1"],
                "calls": [{"arch": "SCMP_ARCH_X86_64", "names": ["read", "write"]}],
                "finished": true, "lostRecords": 0});
            assert_eq!(part.body["status"], json!({"nodes": [want_part.clone()]}));
            assert_eq!(part.body["metadata"]["name"], "rec");
            api.expect(
                Method::GET,
                RECORDING,
                &[],
                StatusCode::OK,
                recording(json!({"nodes": [want_part]}), "7"),
            )
            .await;
            api.expect(
                Method::GET,
                "/api/v1/namespaces/default/pods",
                &["labelSelector=app%3Dls"],
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
                       "items": [ended_pod()]}),
            )
            .await;
            let profile = api
                .expect(
                    Method::PATCH,
                    "/apis/seccompd.dev/v1alpha1/seccompprofiles/ls",
                    &["fieldManager=seccompd-recorder", "force=true"],
                    StatusCode::OK,
                    json!({"apiVersion": "seccompd.dev/v1alpha1", "kind": "SeccompProfile",
                           "metadata": {"name": "ls"}, "spec": {"defaultAction": "SCMP_ACT_ERRNO"}}),
                )
                .await;
            assert_eq!(profile.body["kind"], "SeccompProfile");
            assert_eq!(profile.body["spec"]["defaultAction"], "SCMP_ACT_ERRNO");
            let names = profile.body["spec"]["syscalls"][0]["names"].clone();
            for name in ["read", "write", "rt_sigreturn"] {
                assert!(names.as_array().unwrap().contains(&json!(name)), "{names}");
            }
            assert_eq!(
                profile.body["metadata"]["annotations"][RECORDED_BY],
                "default/rec"
            );
            let outcome = api
                .expect(
                    Method::PATCH,
                    RECORDING,
                    &["fieldManager=seccompd-recorder", "force=true"],
                    StatusCode::OK,
                    recording(json!({}), "8"),
                )
                .await;
            assert_eq!(outcome.body["metadata"]["resourceVersion"], "7");
            let status = &outcome.body["status"];
            assert_eq!(status["phase"], "Completed");
            assert_eq!(status["profile"], "ls");
            assert_eq!(
                (&status["podsSeen"], &status["callsRecorded"]),
                (&json!(1), &json!(2))
            );
            assert!(
                status.get("nodes").is_none(),
                "each node writes its own part"
            );
            // The next tick: the part is as written; the recording is Completed.
            api.expect(
                Method::GET,
                RECORDING,
                &[],
                StatusCode::OK,
                recording(json!({"phase": "Completed"}), "8"),
            )
            .await;
            api
        });
        recorder.tick_one(&rec, &views, 0).await.unwrap();
        recorder.tick_one(&rec, &views, 0).await.unwrap();
        drop(recorder);
        server.await.unwrap().expect_no_more().await;
    }
}
