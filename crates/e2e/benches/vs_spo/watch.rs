//! When something was first true of the objects of one watch: the bench's clock for what
//! only the API server shows (a status saying installed, a Node registered, a pod running).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use tokio_util::task::AbortOnDropHandle;

/// Longest wait for a watch's first list.
const LIST_LIMIT: Duration = Duration::from_secs(30);

/// What an observer records: when each key was first marked, and remarks (each once).
#[derive(Default)]
pub struct Seen {
    at: HashMap<String, Instant>,
    notes: Vec<String>,
}

impl Seen {
    pub fn mark(&mut self, key: impl Into<String>, now: Instant) {
        self.at.entry(key.into()).or_insert(now);
    }

    pub fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

/// One watch and what its observer recorded, from the object's arrival at this process.
pub struct FirstSeen {
    seen: Arc<Mutex<Seen>>,
    _task: AbortOnDropHandle<()>,
}

impl FirstSeen {
    /// Starts the watch and returns once its first list is done, so that every later change is
    /// observed.
    pub async fn start<K, F>(
        api: Api<K>,
        config: watcher::Config,
        observe: F,
    ) -> anyhow::Result<Self>
    where
        K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
        F: Fn(&K, Instant, &mut Seen) + Send + 'static,
    {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let listed = Arc::new(AtomicBool::new(false));
        let (shared, done) = (seen.clone(), listed.clone());
        let task = tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher(api, config));
            while let Some(event) = events.next().await {
                let now = Instant::now();
                match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                        if let Ok(mut seen) = shared.lock() {
                            observe(&o, now, &mut seen);
                        }
                    }
                    Ok(watcher::Event::InitDone) => done.store(true, Ordering::SeqCst),
                    _ => {}
                }
            }
        });
        let start = Instant::now();
        while !listed.load(Ordering::SeqCst) {
            if start.elapsed() > LIST_LIMIT {
                bail!("a watch did not list within {LIST_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Self {
            seen,
            _task: AbortOnDropHandle::new(task),
        })
    }

    pub fn at(&self, key: &str) -> Option<Instant> {
        self.seen.lock().ok()?.at.get(key).copied()
    }

    /// How many of `keys` were marked.
    pub fn count(&self, keys: &[String]) -> usize {
        self.seen
            .lock()
            .map(|s| keys.iter().filter(|k| s.at.contains_key(*k)).count())
            .unwrap_or(0)
    }

    pub fn notes(&self) -> Vec<String> {
        self.seen
            .lock()
            .map(|s| s.notes.clone())
            .unwrap_or_default()
    }
}
