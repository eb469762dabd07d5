//! Watched caches: a reflector store that keeps its last complete state through API errors
//! and outages, wakes a loop on every change, and retries as [`WatchRetry`] says.

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use tokio::sync::Notify;
use tracing::warn;

use super::watch_retry::WatchRetry;

/// Mirrors `api` into a store that keeps its last complete state through errors; every
/// change wakes `wake`, and `trim` shrinks each object before it is stored.
pub fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    wake: Arc<Notify>,
) -> Store<K>
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
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        let mut retry = WatchRetry::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(_) => {
                    retry.succeeded();
                    wake.notify_one();
                }
                // The store keeps its last complete state; files are never touched on errors.
                Err(err) => {
                    let pause = retry.pause_after(&err);
                    warn!(%err, %kind, ?pause, "watch failed; retrying");
                    // The watcher makes its next request only when polled again.
                    tokio::time::sleep(pause).await;
                }
            }
        }
    });
    store
}
