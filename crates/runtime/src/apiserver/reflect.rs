//! Watched caches: a reflector store that keeps its last complete state through API errors
//! and outages, wakes a loop on every change, and retries as [`WatchRetry`] says.

use std::collections::HashMap;
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

/// What a watched cache can hold: a cluster-known kind, read from JSON, shared across tasks.
pub trait Watched:
    Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

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

/// Two waiters on the same changes (a notification wakes one waiter only).
impl<A: Wake + Sync, B: Wake + Sync> Wake for (A, B) {
    fn wake(&self) {
        self.0.wake();
        self.1.wake();
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
    K: Watched,
{
    reflect_filtered(api, config, trim, wake, |_| true)
}

/// Like [`reflect`], but wakes `wake` only when an object's spec changed (a new
/// `metadata.generation` or uid), appeared or went, and once a (re)list is complete: status
/// and metadata updates, such as the status writer's, are stored without waking anyone.
pub fn reflect_specs<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    wake: impl Wake,
) -> (Store<K>, WatchTask)
where
    K: Watched,
{
    let mut specs = SpecVersions::default();
    reflect_filtered(api, config, trim, wake, move |event| specs.changed(event))
}

/// An object's namespace and name.
type ObjectKey = (Option<String>, Option<String>);

/// An object's uid and generation: they change together with its spec.
type SpecVersion = (Option<String>, Option<i64>);

/// Each object's spec version, to tell spec changes from the rest.
#[derive(Debug, Default)]
struct SpecVersions(HashMap<ObjectKey, SpecVersion>);

impl SpecVersions {
    /// Whether `event` changes a spec (or ends a list), noting what it brings.
    fn changed<K: Resource>(&mut self, event: &watcher::Event<K>) -> bool {
        let key = |o: &K| (o.meta().namespace.clone(), o.meta().name.clone());
        match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                let version = (o.meta().uid.clone(), o.meta().generation);
                self.0.insert(key(o), version.clone()) != Some(version)
            }
            watcher::Event::Delete(o) => {
                self.0.remove(&key(o));
                true
            }
            watcher::Event::Init => false,
            // The store drops what the list no longer had, without an event of its own.
            watcher::Event::InitDone => true,
        }
    }
}

fn reflect_filtered<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    wake: impl Wake,
    mut wakes: impl FnMut(&watcher::Event<K>) -> bool + Send + 'static,
) -> (Store<K>, WatchTask)
where
    K: Watched,
{
    let (store, writer) = reflector::store::<K>();
    let kind = K::kind(&()).into_owned();
    let events = watcher(api, config).modify(trim).reflect(writer);
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        let mut retry = WatchRetry::new();
        while let Some(event) = events.next().await {
            match &event {
                Ok(event) if wakes(event) => wake.wake(),
                Ok(_) => {}
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

    fn map(name: &str, uid: &str, generation: Option<i64>, data: &str) -> ConfigMap {
        let mut m = ConfigMap::default();
        m.metadata.name = Some(name.into());
        m.metadata.uid = Some(uid.into());
        m.metadata.generation = generation;
        m.data = Some([("k".to_string(), data.to_string())].into());
        m
    }

    #[test]
    fn only_spec_changes_wake() {
        let mut specs = SpecVersions::default();
        assert!(!specs.changed(&watcher::Event::<ConfigMap>::Init));
        assert!(specs.changed(&watcher::Event::InitApply(map("a", "u1", Some(1), "x"))));
        assert!(specs.changed(&watcher::Event::InitDone::<ConfigMap>));
        assert!(
            !specs.changed(&watcher::Event::Apply(map(
                "a",
                "u1",
                Some(1),
                "status moved"
            ))),
            "same generation: a status or metadata update"
        );
        assert!(specs.changed(&watcher::Event::Apply(map("a", "u1", Some(2), "x"))));
        assert!(
            specs.changed(&watcher::Event::Apply(map("a", "u2", Some(2), "x"))),
            "deleted and created again"
        );
        assert!(specs.changed(&watcher::Event::Delete(map("a", "u2", Some(2), "x"))));
        assert!(specs.changed(&watcher::Event::Apply(map("a", "u2", Some(2), "x"))));
        // A relist after a watch gap: unchanged objects wake nobody, the list's end does.
        assert!(!specs.changed(&watcher::Event::<ConfigMap>::Init));
        assert!(!specs.changed(&watcher::Event::InitApply(map("a", "u2", Some(2), "x"))));
        assert!(specs.changed(&watcher::Event::InitDone::<ConfigMap>));
    }

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
