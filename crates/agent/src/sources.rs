//! What wakes the agent's loop: the SeccompProfiles (all of them), the pods bound to this
//! node, and the profile directory itself. Each source keeps its last complete state through
//! API errors and outages, so the loop always plans from the last known truth.

use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

use super::decide::{desired, pods};
use seccompd_api::{SeccompFloor, SeccompProfile};
use seccompd_runtime::apiserver::{WatchTask, reflect, reflect_specs};
use seccompd_runtime::telemetry::{ChangeClock, ClockedWake};

/// The reflector stores the loop reads.
pub struct Sources {
    /// Every SeccompProfile.
    pub profiles: Store<SeccompProfile>,
    /// The pods bound to this node, slimmed to what the agent reads.
    pub pods: Store<Pod>,
    /// Every SeccompFloor.
    pub floors: Store<SeccompFloor>,
    /// The watches behind the stores; they run as long as the sources live.
    _watches: [WatchTask; 3],
}

impl Sources {
    /// Starts both watches; every change wakes `wake`, and a profile change is noted on
    /// `profile_changes` (for the change-to-file latency).
    pub fn start(
        client: &Client,
        node_name: &str,
        wake: &Arc<Notify>,
        profile_changes: Arc<ChangeClock>,
    ) -> Self {
        // Specs only: the status writer's writes would otherwise wake every agent for nothing.
        let (profiles, profiles_watch) = reflect_specs(
            Api::<SeccompProfile>::all(client.clone()),
            watcher::Config::default(),
            desired::slim,
            ClockedWake::new(wake.clone(), profile_changes),
        );
        // Only this node's pods: the API server filters, so no agent sees the whole cluster.
        let (pods, pods_watch) = reflect(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().fields(&format!("spec.nodeName={node_name}")),
            pods::slim,
            wake.clone(),
        );
        // A floor change wakes one pass that renders every profile again.
        let (floors, floors_watch) = reflect_specs(
            Api::<SeccompFloor>::all(client.clone()),
            watcher::Config::default(),
            desired::slim_floor,
            wake.clone(),
        );
        Self {
            profiles,
            pods,
            floors,
            _watches: [profiles_watch, pods_watch, floors_watch],
        }
    }

    /// Waits until every watch has delivered its first complete list. Nothing may be
    /// planned before: an unknown state must never look like "no profiles", "no pods" or
    /// "no floors" (which would install files without the floors' rules).
    pub async fn wait_until_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.profiles.wait_until_ready().await?;
        self.floors.wait_until_ready().await?;
        self.pods.wait_until_ready().await
    }
}

/// Wakes the loop whenever anything in the directory changes, so drift is repaired at once.
/// Keep the returned watcher alive.
pub fn watch_dir(path: &Path, wake: Arc<Notify>) -> notify::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            // Reads (the agent's own scans among them) change nothing.
            Ok(e) if e.kind.is_access() => {}
            // A change, or an error such as a queue overflow: look at the directory again.
            _ => wake.notify_one(),
        }
    })?;
    watcher.watch(path, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
