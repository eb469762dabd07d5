//! The agent's event loop: every trigger (a SeccompProfile change, a pod on this node coming or
//! going, a file changed behind its back, a timer) wakes one level-triggered pass over the
//! whole desired state. The loop touches only the disk; reports, events and the taint go to
//! tasks of their own, so an unreachable API server never delays a repair.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::AgentArgs;
use super::decide::builtin::{api_reports, default_spec, record_spec, with_builtins};
use super::decide::desired::{Accepted, ProfileInput, floor_of};
use super::decide::floors::{PodStart, pods_started_before};
use super::decide::liveness::StallLimit;
use super::decide::notices::Announcer;
use super::decide::pods::{PodRef, profile_users, referenced_profiles};
use super::decide::report::{
    bounded_warnings, report_spec, retained_reports, unknown_entries, unknown_state_reports,
};
use super::decide::runtime::{RuntimeChoice, choose as choose_runtime};
use super::events::EventSender;
use super::metrics::AgentMetrics;
use super::probes::AgentProbes;
use super::readiness::Readiness;
use super::sources::{Sources, watch_dir};
use super::sync::{NodeSync, PassOutcome, SyncError};
use super::{events, node_identity, publish, taint};
use crate::node::dir::ProfileDir;
use seccompd_api::SeccompNodeReportSpec;
use seccompd_api::reason::bounded_reason;
use seccompd_profile::check::{NodeCheckError, check_for_node_with};
use seccompd_profile::compile::native_arch;
use seccompd_profile::floor::Floor;
use seccompd_profile::model::ProfileSpec;
use seccompd_runtime::health;
use seccompd_runtime::telemetry;

/// How soon a pass whose directory could not be listed is tried again.
const RETRY: Duration = Duration::from_secs(2);

/// How long the loop must stay quiet after a pass before freed heap is handed back: a burst
/// of changes (1,000 profiles applied at once) costs one release at its end, not one per pass.
const RELEASE_AFTER_QUIET: Duration = Duration::from_millis(200);

/// Hands heap the allocator keeps but no longer uses back to the kernel.
///
/// The binary provides it, because the allocator is the binary's choice (and the library
/// crates forbid unsafe code). glibc keeps the pages a burst freed in its arenas: while 1,000
/// profiles arrive, the passes (each renders every profile again) and the watches' decoding
/// free far more than the agent keeps, and without this the agent's resident memory stays at
/// that peak even after the profiles are deleted (docs/scale.md).
pub type ReleaseFreedHeap = fn();

/// Runs the agent until SIGTERM or SIGINT; `release_freed_heap` is called once the loop has
/// been quiet for a moment after passes.
pub async fn run(args: AgentArgs, release_freed_heap: ReleaseFreedHeap) -> anyhow::Result<()> {
    telemetry::init_logging();
    let client = seccompd_runtime::apiserver::client()
        .await
        .context("cannot configure the Kubernetes client")?;
    let arch = native_arch().context("this machine's architecture is not one seccompd knows")?;
    let dir = ProfileDir::open(args.profile_dir())
        .with_context(|| format!("cannot use {}", args.profile_dir().display()))?;
    info!(node = %args.node_name, dir = %dir.path().display(), "seccompd agent starting");

    let readiness = Arc::new(Readiness::default());
    let metrics = Arc::new(AgentMetrics::new(&readiness));
    let wake = Arc::new(Notify::new());
    let sources = Sources::start(&client, &args.node_name, &wake, metrics.profile_changes());
    let _dir_watch = watch_dir(&dir, wake.clone())
        .with_context(|| format!("cannot watch {}", dir.path().display()))?;
    let health_addr = args.health_addr;
    let resync = Duration::from_secs(args.resync_seconds);
    let probes = Arc::new(AgentProbes {
        readiness: readiness.clone(),
        metrics: metrics.clone(),
        stall: StallLimit::for_longest_wait(resync.max(RETRY)),
    });
    tokio::spawn(async move {
        if let Err(err) = health::serve_probes(health_addr, probes).await {
            warn!(%err, %health_addr, "health endpoint stopped");
        }
    });
    // This node's identity (replaced when the Node is recreated) and its taint, from one watch.
    let node = node_identity::watch_node(client.clone(), &args.node_name);
    let (synced, synced_rx) = watch::channel(false);
    tokio::spawn(taint::keep_node_untainted(
        client.clone(),
        args.node_name.clone(),
        synced_rx,
        node.tainted.clone(),
        metrics.clone(),
        readiness.clone(),
    ));

    sources
        .wait_until_ready()
        .await
        .context("a watch ended before its first list")?;
    info!(
        profiles = sources.profiles.len(),
        pods = sources.pods.len(),
        "first complete lists received"
    );
    // Profiles are judged for this node's runtime, which its Node's label may name: wait for
    // the Node (briefly: without it the strictest runtime is assumed) before the first pass.
    let mut runtime_label = node.runtime_label.clone();
    let mut tainted = node.tainted.clone();
    if tokio::time::timeout(NODE_WAIT, tainted.wait_for(Option::is_some))
        .await
        .is_err()
    {
        warn!(wait = ?NODE_WAIT, "this node's Node object not seen yet; judging for the strictest runtime until it is");
    }
    let runtime = choose_runtime(
        runtime_label.borrow_and_update().as_deref(),
        args.node_runtime,
    );
    let mut sync = NodeSync::new(dir, node_check(&runtime));
    sync.trust_reported(publish::last_report(&client, &args.node_name).await);
    let mut agent = Agent {
        sync,
        announcer: Announcer::default(),
        reports: publish::spawn(
            client.clone(),
            &args.node_name,
            node.identity.clone(),
            metrics.clone(),
        ),
        events: events::spawn(
            client,
            &args.node_name,
            node.identity.clone(),
            metrics.clone(),
        ),
        synced,
        metrics,
        readiness,
        record_profile: args.recording.then(|| record_spec(arch)),
        default_profile: default_profile(arch),
        runtime: bounded_reason(runtime.source),
    };

    let mut shutdown = std::pin::pin!(seccompd_runtime::shutdown_signal());
    // Passes are synchronous and may take seconds; this future is the one the binary's
    // runtime blocks on (src/main.rs), so they never occupy a worker that spawned tasks need.
    loop {
        let wait = match agent.pass(&sources) {
            Ok(None) => resync,
            // Only what failed is retried then; a wake-up before it finds it waiting.
            Ok(Some(due)) => due.saturating_duration_since(Instant::now()).min(resync),
            Err(PassFailed::Retry) => RETRY,
            // The binary's edge prints why, and exits non-zero.
            Err(PassFailed::Refused(err)) => return Err(err.into()),
        };
        let next_pass = tokio::time::sleep(wait);
        let mut next_pass = std::pin::pin!(next_pass);
        let release = tokio::time::sleep(RELEASE_AFTER_QUIET.min(wait));
        let mut release = std::pin::pin!(release);
        let mut released = false;
        // Waits for the next pass's trigger; the heap release on the way is not one.
        loop {
            tokio::select! {
                _ = wake.notified() => break,
                Ok(()) = runtime_label.changed() => {
                    let runtime = choose_runtime(runtime_label.borrow_and_update().as_deref(), args.node_runtime);
                    agent.sync.replace_check(node_check(&runtime));
                    agent.runtime = bounded_reason(runtime.source);
                    break;
                }
                _ = &mut next_pass => break,
                _ = &mut release, if !released => {
                    release_freed_heap();
                    released = true;
                }
                _ = &mut shutdown => {
                    info!("shutting down; profile files stay in place");
                    return Ok(());
                }
            }
        }
    }
}

/// Why a pass did not complete.
enum PassFailed {
    /// The directory could not be listed (or its manifest written): tried again soon.
    Retry,
    /// The directory is not one the agent may work in: it stops, having changed nothing.
    Refused(SyncError),
}

/// The loop's state and where its results go.
struct Agent {
    sync: NodeSync,
    announcer: Announcer,
    reports: watch::Sender<Option<SeccompNodeReportSpec>>,
    events: EventSender,
    synced: watch::Sender<bool>,
    metrics: Arc<AgentMetrics>,
    readiness: Arc<Readiness>,
    /// The built-in recording profile for this node's architecture, where recording is on.
    record_profile: Option<ProfileSpec>,
    /// The built-in default profile for this node (`None`: it could not be built; logged).
    default_profile: Option<ProfileSpec>,
    /// The runtime profiles are judged for and why, for the report.
    runtime: String,
}

impl Agent {
    /// Hands `report` to the publisher, saying which runtime this node judges for.
    fn publish(&self, report: SeccompNodeReportSpec) {
        self.reports.send_replace(Some(SeccompNodeReportSpec {
            runtime: Some(self.runtime.clone()),
            ..report
        }));
    }

    /// One pass from the sources' current state. `Ok` with when something that failed is due
    /// again (if anything); `Err` when the directory could not be listed at all, or is refused.
    fn pass(&mut self, sources: &Sources) -> Result<Option<Instant>, PassFailed> {
        self.metrics.pass_begins();
        let snapshot = sources.profiles.state();
        let inputs: Vec<ProfileInput<'_>> = with_builtins(
            snapshot.iter().filter_map(|p| ProfileInput::of(p)),
            self.record_profile.as_ref(),
            self.default_profile.as_ref(),
        );
        let existing: BTreeSet<&str> = inputs.iter().map(|p| p.name).collect();
        let pods = sources.pods.state();
        let users = profile_users(pods.iter().map(|p| p.as_ref()));
        // Referenced but not in the API: deleted profiles to keep, or profiles never created.
        let unknown: BTreeSet<String> = users
            .keys()
            .filter(|name| !existing.contains(name.as_str()))
            .cloned()
            .collect();
        let floor_objects = sources.floors.state();
        let floors: Vec<Floor<'_>> = floor_objects.iter().filter_map(|f| floor_of(f)).collect();
        let now = Instant::now();
        let outcome =
            match self
                .sync
                .pass_with_floors(&inputs, &floors, &unknown, &self.metrics, now)
            {
                Ok(outcome) => outcome,
                Err(err) if err.is_refusal() => return Err(PassFailed::Refused(err)),
                Err(err) => {
                    warn!(%err, "sync pass failed; retrying");
                    self.metrics.record_error();
                    // Nothing on disk is known now: no profile may still be reported Installed.
                    let reason = format!("the profile directory cannot be listed: {err}");
                    self.publish(report_spec(
                        self.readiness.synced(),
                        api_reports(unknown_state_reports(&inputs, &reason)),
                    ));
                    return Err(PassFailed::Retry);
                }
            };
        self.metrics.record_pass(outcome.retry_at.is_none());
        self.readiness.progressed(Instant::now());
        let (retained, missing) = split_unknown(&users, &unknown, &outcome);
        self.metrics.set_retained(retained.len());
        let notices = self
            .announcer
            .update(&retained, &missing, existing.iter().copied());
        for notice in notices {
            self.events.send(notice);
        }
        let retry_at = outcome.retry_at;
        let mut outcome = outcome;
        self.count_pods_without_floors(&mut outcome, &floors, &pods);
        self.publish(node_report(outcome, &users));
        // Every profile has its outcome now, installed or an error of its own: one profile
        // that cannot be written must not keep the node tainted.
        if !self.readiness.synced() {
            info!("first complete sync: every profile has its outcome on this node");
            self.readiness.set_synced();
            self.synced.send_replace(true);
        }
        Ok(retry_at)
    }
}

impl Agent {
    /// Fills in, per floor, how many running pods here started before the floor reached the
    /// file of a profile they use (from the pods' start times and the files' write times).
    fn count_pods_without_floors(
        &self,
        outcome: &mut PassOutcome,
        floors: &[Floor<'_>],
        pods: &[Arc<k8s_openapi::api::core::v1::Pod>],
    ) {
        if outcome.floors.is_empty() {
            return;
        }
        let starts: Vec<PodStart> = pods
            .iter()
            .filter_map(|pod| {
                let profiles = referenced_profiles(pod);
                let started = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| SystemTime::from(t.0));
                (!profiles.is_empty()).then_some(PodStart { profiles, started })
            })
            .collect();
        let used: BTreeSet<&str> = starts
            .iter()
            .flat_map(|p| p.profiles.iter().map(String::as_str))
            .collect();
        let written = self.sync.written_at(used);
        for report in &mut outcome.floors {
            let floor = floors.iter().find(|f| f.name == report.name);
            report.pods_started_before = pods_started_before(
                report,
                |p| floor.is_some_and(|f| f.exempts(p)),
                &starts,
                &written,
            );
        }
    }
}

/// Splits the referenced profiles the API does not have into those whose file is kept
/// (retained) and those with no file at all (missing), each with its pods.
fn split_unknown(
    users: &BTreeMap<String, Vec<PodRef>>,
    unknown: &BTreeSet<String>,
    outcome: &PassOutcome,
) -> (BTreeMap<String, Vec<PodRef>>, BTreeMap<String, Vec<PodRef>>) {
    users
        .iter()
        .filter(|(name, _)| unknown.contains(*name))
        .map(|(name, pods)| (name.clone(), pods.clone()))
        .partition(|(name, _)| outcome.kept.contains_key(name))
}

/// The report: every profile's outcome plus the retained ones, and the entries left alone.
fn node_report(
    outcome: PassOutcome,
    users: &BTreeMap<String, Vec<PodRef>>,
) -> SeccompNodeReportSpec {
    let mut profiles = api_reports(outcome.reports);
    profiles.extend(retained_reports(&outcome.kept, users));
    let (warnings, warnings_omitted) = bounded_warnings(outcome.warnings);
    SeccompNodeReportSpec {
        unknown_entries: unknown_entries(&outcome.unknown),
        floors: outcome.floors,
        largest_filter: outcome.largest_filter,
        warnings,
        warnings_omitted,
        ..report_spec(true, profiles)
    }
}

/// The built-in default profile for this node: Docker's default for its architecture and
/// kernel, as Docker would evaluate it there. Without it the agent goes on with the API's
/// profiles (the vendored file is checked by unit tests, so this is not expected).
fn default_profile(arch: seccompd_profile::model::Arch) -> Option<ProfileSpec> {
    // The kernel decides which of Docker's `minKernel` rules apply; an unreadable release
    // keeps only the rules without one.
    let kernel = crate::node::kernel_release().unwrap_or((0, 0));
    default_spec(arch, kernel)
        .inspect_err(|err| warn!(%err, "not installing seccompd/default.json"))
        .ok()
}

/// How long the first pass waits for this node's Node object, for its runtime label.
const NODE_WAIT: Duration = Duration::from_secs(10);

/// Judges a resolved profile for this node: structure, what the chosen runtime refuses, then
/// the node's seccomp library. Logs the choice and where it came from.
fn node_check(
    choice: &RuntimeChoice,
) -> impl Fn(&seccompd_profile::render::OciProfile) -> Result<Accepted, NodeCheckError>
+ Send
+ Sync
+ 'static {
    if let Some(problem) = &choice.problem {
        warn!(%problem, "cannot read this node's runtime label");
    }
    info!(runtime = %choice.source, "judging profiles for this node's runtime");
    let runtime = choice.runtime;
    move |profile| check_for_node_with(profile, &runtime).map(Accepted::from)
}
