//! Watched caches: a reflector store that keeps its last complete state through API errors
//! and outages, wakes a loop on every change, and retries as [`WatchRetry`] says.

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use tokio::sync::Notify;
use tokio_util::task::AbortOnDropHandle;
use tracing::warn;

use super::watch_retry::WatchRetry;

/// The task that keeps a [`Store`] up to date; it stops when this is dropped, so a store's
/// owner decides how long its watch lives (the status writer's end with its lease).
pub type WatchTask = AbortOnDropHandle<()>;

/// What a watch does on every change: wake a loop, and possibly note when (see
/// [`crate::telemetry::ChangeClock`]).
pub trait Wake: Send + 'static {
    /// A change arrived.
    fn wake(&self);
}

impl Wake for Arc<Notify> {
    fn wake(&self) {
        self.notify_one();
    }
}

/// Mirrors `api` into a store that keeps its last complete state through errors; every
/// change wakes `wake`, and `trim` shrinks each object before it is stored. The watch runs
/// until the returned task is dropped.
pub fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    wake: impl Wake,
) -> (Store<K>, WatchTask)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let kind = K::kind(&()).into_owned();
    let events = watcher(api, config).modify(trim).reflect(writer);
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        let mut retry = WatchRetry::new();
        while let Some(event) = events.next().await {
            match &event {
                Ok(_) => wake.wake(),
                // The store keeps its last complete state: readers never see a partial one.
                Err(err) => warn!(%err, %kind, "watch failed; retrying"),
            }
            retry.settle(&event).await;
        }
    });
    (store, AbortOnDropHandle::new(task))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::{Client, Config};

    use super::*;

    #[tokio::test]
    async fn dropping_the_task_ends_the_watch() {
        // Nothing listens on port 1: the watch retries for as long as its task lives.
        let config = Config::new("http://127.0.0.1:1".parse().expect("a URI"));
        let client = Client::try_from(config).expect("a client");
        let (store, task) = reflect(
            Api::<ConfigMap>::all(client),
            watcher::Config::default(),
            |_| {},
            Arc::new(Notify::new()),
        );
        let still_watching =
            tokio::time::timeout(Duration::from_millis(300), store.wait_until_ready()).await;
        assert!(still_watching.is_err(), "no list can have succeeded");
        drop(task);
        let ended = tokio::time::timeout(Duration::from_secs(5), store.wait_until_ready())
            .await
            .expect("the store hears of the end at once");
        assert!(ended.is_err(), "the watch ended without a list");
    }
}
