//! What wakes the agent's loop: the SeccompProfiles (all of them), the pods bound to this
//! node, and the profile directory itself. Each source keeps its last complete state through
//! API errors and outages, so the loop always plans from the last known truth.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

use super::decide::{desired, pods};
use super::node::dir::ProfileDir;
use super::node::own_events::OwnEvents;
use seccompd_api::{SeccompFloor, SeccompProfile};
use seccompd_runtime::apiserver::{Wake, WatchTask, reflect, reflect_specs};
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

/// Wakes the loop whenever anything in `dir` changes that the agent did not change itself
/// ([`OwnEvents`]), so drift is repaired at once and the agent's own writes cost no second
/// pass. Keep the returned watcher alive.
pub fn watch_dir(
    dir: &ProfileDir,
    wake: impl Wake + Sync,
) -> notify::Result<notify::RecommendedWatcher> {
    let mut own = OwnEvents::new(dir.own_removals());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(e) if own.is_own(&e, Instant::now()) => {}
            // A change, or an error such as a queue overflow: look at the directory again.
            _ => wake.wake(),
        }
    })?;
    watcher.watch(dir.path(), RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Counts wakes and lets a test wait for the next one.
    #[derive(Clone, Default)]
    struct CountingWake {
        count: Arc<AtomicUsize>,
        notify: Arc<Notify>,
    }

    impl Wake for CountingWake {
        fn wake(&self) {
            self.count.fetch_add(1, Ordering::SeqCst);
            self.notify.notify_one();
        }
    }

    #[tokio::test]
    async fn the_agents_own_writes_and_removals_wake_nothing_and_anothers_change_wakes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ProfileDir::open(tmp.path().join("seccompd")).unwrap();
        let wake = CountingWake::default();
        let _watch = watch_dir(&dir, wake.clone()).unwrap();

        for round in 0..3 {
            dir.write_atomic(OsStr::new("a.json"), format!("{round}").as_bytes())
                .unwrap();
        }
        dir.write_atomic(OsStr::new("b.json"), b"b").unwrap();
        dir.remove(OsStr::new("b.json")).unwrap();
        dir.remove(OsStr::new("never-there.json")).unwrap();
        // Someone else's change after the agent's: the kernel reports events in order, so
        // when its wake arrives every event of the agent's writes has been judged.
        std::fs::write(dir.path().join("a.json"), b"edited").unwrap();
        tokio::time::timeout(Duration::from_secs(10), wake.notify.notified())
            .await
            .expect("another's edit wakes the agent");
        // The edit itself may be reported as more than one event (opened for writing, then
        // written); none of the agent's own made any.
        let after_edit = wake.count.load(Ordering::SeqCst);
        std::fs::remove_file(dir.path().join("a.json")).unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while wake.count.load(Ordering::SeqCst) == after_edit {
                wake.notify.notified().await;
            }
        })
        .await
        .expect("another's removal wakes the agent");
        assert!(
            after_edit <= 2,
            "own writes woke the agent: {after_edit} wakes"
        );
    }
}
