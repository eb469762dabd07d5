//! The bench's one watch on its own SeccompProfiles: records when each profile generation
//! first showed `Installed n/n`, the largest status seen per generation, and how many watch
//! events (and roughly how many bytes) the watch itself received, so that the bench's share
//! can be taken out of the API server's watch counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use seccompd_api::{Phase, SeccompProfile, SeccompProfileStatus};
use tokio_util::task::AbortOnDropHandle;

/// What the watch has seen.
#[derive(Default)]
struct Seen {
    /// Nodes a profile must be installed on to count as done.
    total_nodes: u32,
    /// (profile, generation) -> when it was first seen Installed on all `total_nodes`.
    installed: HashMap<(String, i64), Instant>,
    /// (profile, observed generation) -> the largest status (serialized JSON bytes).
    status_max: HashMap<(String, i64), usize>,
    /// (profile, observed generation) -> the last status seen.
    last: HashMap<String, SeccompProfileStatus>,
    /// Watch events received (not the initial list).
    events: u64,
    /// Their size as JSON, re-serialized (close to, not exactly, what the server sent).
    bytes: u64,
    /// The initial list is done.
    listed: bool,
}

/// A running watch of the profiles carrying a label selector.
pub struct Tracker {
    seen: Arc<Mutex<Seen>>,
    _task: AbortOnDropHandle<()>,
}

impl Tracker {
    /// Starts watching the profiles matching `selector`; a profile counts as installed when
    /// its status says Installed on `total_nodes` of `total_nodes`.
    pub async fn start(client: Client, selector: &str, total_nodes: u32) -> anyhow::Result<Self> {
        let seen = Arc::new(Mutex::new(Seen {
            total_nodes,
            ..Seen::default()
        }));
        let api: Api<SeccompProfile> = Api::all(client);
        let shared = seen.clone();
        let config = watcher::Config::default().labels(selector);
        let task = tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher(api, config));
            while let Some(event) = events.next().await {
                let now = Instant::now();
                let Ok(mut seen) = shared.lock() else { return };
                match event {
                    Ok(watcher::Event::Apply(p) | watcher::Event::Delete(p)) => {
                        seen.events += 1;
                        seen.bytes += serde_json::to_vec(&p).map(|b| b.len()).unwrap_or(0) as u64;
                        seen.observe(&p, now);
                    }
                    Ok(watcher::Event::InitApply(p)) => seen.observe(&p, now),
                    Ok(watcher::Event::InitDone) => seen.listed = true,
                    Ok(watcher::Event::Init) | Err(_) => {}
                }
            }
        });
        let tracker = Self {
            seen,
            _task: AbortOnDropHandle::new(task),
        };
        let start = Instant::now();
        while !tracker.lock().listed {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the watch of the bench's SeccompProfiles did not list within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(tracker)
    }

    fn lock(&self) -> MutexGuard<'_, Seen> {
        // A poisoned lock means the watch task panicked while holding it: its data is still
        // the best there is.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watch events received so far and their approximate bytes.
    pub fn received(&self) -> (u64, u64) {
        let seen = self.lock();
        (seen.events, seen.bytes)
    }

    /// How long after `start` generation `generation` of `name` was Installed everywhere;
    /// an error after `limit`.
    pub async fn installed_after(
        &self,
        name: &str,
        generation: i64,
        start: Instant,
        limit: Duration,
    ) -> anyhow::Result<Duration> {
        let key = (name.to_string(), generation);
        loop {
            if let Some(at) = self.lock().installed.get(&key) {
                return Ok(at.saturating_duration_since(start));
            }
            if start.elapsed() > limit {
                let last = self.lock().last.get(name).cloned();
                bail!(
                    "{name} generation {generation} not Installed within {limit:?}; last status: {}",
                    serde_json::to_string(&last).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// How many of `names` (at `generation`) are Installed everywhere, with the time the last
    /// of them got there.
    pub fn installed_count(&self, names: &[String], generation: i64) -> (usize, Option<Instant>) {
        let seen = self.lock();
        let times: Vec<Instant> = names
            .iter()
            .filter_map(|n| seen.installed.get(&(n.clone(), generation)).copied())
            .collect();
        (times.len(), times.into_iter().max())
    }

    /// Waits until the status of `name` describes `generation` and says it is installed on
    /// exactly `installed` nodes; returns the largest status seen for that generation, in
    /// bytes of JSON.
    pub async fn status_bytes_when(
        &self,
        name: &str,
        generation: i64,
        installed: u32,
        limit: Duration,
    ) -> anyhow::Result<usize> {
        let start = Instant::now();
        loop {
            {
                let seen = self.lock();
                let status = seen.last.get(name);
                if status.is_some_and(|s| {
                    s.observed_generation == Some(generation) && s.installed_nodes == installed
                }) {
                    return Ok(seen
                        .status_max
                        .get(&(name.to_string(), generation))
                        .copied()
                        .unwrap_or(0));
                }
                if start.elapsed() > limit {
                    bail!(
                        "{name}: no status for generation {generation} with {installed} nodes installed within {limit:?}; last: {}",
                        serde_json::to_string(&status).unwrap_or_default()
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Seen {
    fn observe(&mut self, p: &SeccompProfile, now: Instant) {
        let Some(status) = &p.status else { return };
        let name = p.name_any();
        if let Some(generation) = status.observed_generation {
            let size = serde_json::to_vec(status).map(|b| b.len()).unwrap_or(0);
            let max = self
                .status_max
                .entry((name.clone(), generation))
                .or_default();
            *max = (*max).max(size);
            let done = status.phase == Some(Phase::Installed)
                && status.installed_nodes == self.total_nodes
                && status.total_nodes == self.total_nodes
                && p.metadata.generation == Some(generation);
            if done {
                self.installed
                    .entry((name.clone(), generation))
                    .or_insert(now);
            }
        }
        self.last.insert(name, status.clone());
    }
}
