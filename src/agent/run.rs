//! The agent's event loop: every trigger (a SeccompProfile change, a file changed behind its
//! back, a timer) wakes one level-triggered pass over the whole desired state.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::AgentArgs;
use super::desired::ProfileInput;
use super::health;
use super::publish::ReportPublisher;
use super::sync::NodeSync;
use crate::api::{SeccompNodeReportSpec, SeccompProfile};
use crate::node::dir::ProfileDir;
use crate::telemetry::{self, Metrics};

/// How soon a failed report is tried again.
const PUBLISH_RETRY: Duration = Duration::from_secs(2);

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    telemetry::init_logging();
    let client = Client::try_default()
        .await
        .context("cannot configure the Kubernetes client")?;
    let dir = ProfileDir::open(args.profile_dir())
        .with_context(|| format!("cannot use {}", args.profile_dir().display()))?;
    info!(node = %args.node_name, dir = %dir.path().display(), "seccompd agent starting");

    let metrics = Arc::new(Metrics::default());
    let wake = Arc::new(Notify::new());
    let (store, writer) = reflector::store::<SeccompProfile>();
    let profiles = Api::<SeccompProfile>::all(client.clone());
    let wake_on_change = wake.clone();
    tokio::spawn(
        watcher(profiles, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .for_each(move |event| {
                match event {
                    Ok(_) => wake_on_change.notify_one(),
                    // The store keeps its last complete state; files are never touched on errors.
                    Err(err) => warn!(%err, "SeccompProfile watch failed; retrying"),
                }
                std::future::ready(())
            }),
    );
    let _dir_watch = watch_dir(dir.path(), wake.clone())?;
    let health_addr = args.health_addr;
    let health_metrics = metrics.clone();
    tokio::spawn(async move {
        if let Err(err) = health::serve(health_addr, health_metrics).await {
            warn!(%err, %health_addr, "health endpoint stopped");
        }
    });
    tokio::spawn(crate::status::writer::run_elected(
        client.clone(),
        args.namespace.clone(),
        args.node_name.clone(),
    ));

    // Nothing is planned before the first complete list: an unknown state must never look
    // like "no profiles" and empty the directory.
    store
        .wait_until_ready()
        .await
        .context("the SeccompProfile watch ended before its first list")?;
    info!(profiles = store.len(), "first complete list received");

    let mut sync = NodeSync::new(dir, node_check);
    let mut publisher = ReportPublisher::new(client, &args.node_name);
    let resync = Duration::from_secs(args.resync_seconds);
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let snapshot = store.state();
        let inputs: Vec<ProfileInput<'_>> = snapshot
            .iter()
            .map(|p| ProfileInput {
                name: p.metadata.name.as_deref().unwrap_or_default(),
                generation: p.metadata.generation,
                spec: &p.spec.0,
            })
            .filter(|p| !p.name.is_empty())
            .collect();
        let mut wait = resync;
        match sync.pass(&inputs, &BTreeSet::new(), &metrics) {
            Ok(profiles) => {
                metrics.record_pass();
                metrics.set_synced();
                let report = SeccompNodeReportSpec {
                    synced: true,
                    profiles,
                };
                if let Err(err) = publisher.publish(report).await {
                    warn!(%err, "cannot publish the node report; retrying");
                    wait = PUBLISH_RETRY;
                }
            }
            Err(err) => {
                warn!(%err, "sync pass failed; retrying");
                metrics.record_error();
                wait = PUBLISH_RETRY;
            }
        }
        drop(snapshot);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => {
                info!("shutting down; profile files stay in place");
                return Ok(());
            }
        }
    }
}

/// Judges a resolved profile for this node: structure, then the node's seccomp library.
fn node_check(profile: &crate::profile::render::OciProfile) -> Result<(), String> {
    crate::profile::check_for_node(profile).map(|_warnings| ())
}

/// Wakes the loop whenever anything in the directory changes, so drift is repaired at once.
fn watch_dir(path: &Path, wake: Arc<Notify>) -> anyhow::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            wake.notify_one();
        }
    })
    .context("cannot start the file watcher")?;
    watcher
        .watch(path, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", path.display()))?;
    Ok(watcher)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
