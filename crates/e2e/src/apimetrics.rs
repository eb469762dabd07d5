//! The API server's own counters (`/metrics`, read with the admin client): requests by verb and
//! resource, watch events and their bytes by resource, request body bytes by resource and verb.
//! A bench takes a [`Scrape`] before and after a phase and works with the difference.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kube::Client;
use prometheus_parse::{Sample, Value};

/// The API group of seccompd's resources.
pub const SECCOMPD_GROUP: &str = "seccompd.dev";

/// Verbs of `apiserver_request_total` that change something.
const WRITE_VERBS: [&str; 6] = [
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// A group and resource, with the subresource where the metric has one (`status`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Resource {
    pub group: String,
    pub resource: String,
    pub subresource: String,
}

impl Resource {
    fn of(sample: &Sample) -> Self {
        let get = |k: &str| sample.labels.get(k).unwrap_or("").to_string();
        Self {
            group: get("group"),
            resource: get("resource"),
            subresource: get("subresource"),
        }
    }

    /// `resource[/subresource][.group]`, or `(non-resource)` for paths like /metrics.
    pub fn label(&self) -> String {
        if self.resource.is_empty() {
            return "(non-resource)".into();
        }
        let mut s = self.resource.clone();
        if !self.subresource.is_empty() {
            s = format!("{s}/{}", self.subresource);
        }
        if !self.group.is_empty() {
            s = format!("{s}.{}", self.group);
        }
        s
    }

    /// Whether this is one of seccompd's resources.
    pub fn is_seccompd(&self) -> bool {
        self.group == SECCOMPD_GROUP
    }
}

/// The counters of one read of `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// `apiserver_request_total`, by verb and resource (summed over codes and scopes).
    pub requests: BTreeMap<(String, Resource), f64>,
    /// `apiserver_watch_events_total`, by resource.
    pub watch_events: BTreeMap<Resource, f64>,
    /// `apiserver_watch_events_sizes_sum` (bytes), by resource.
    pub watch_bytes: BTreeMap<Resource, f64>,
    /// `apiserver_request_body_size_bytes_sum`, by resource and verb.
    pub body_bytes: BTreeMap<(String, Resource), f64>,
}

impl Scrape {
    /// Reads the API server's `/metrics`.
    pub async fn read(client: &Client) -> anyhow::Result<Self> {
        let request = http::Request::get("/metrics")
            .body(Vec::new())
            .context("building the /metrics request")?;
        let text = client
            .request_text(request)
            .await
            .context("reading the API server's /metrics")?;
        Ok(Self::parse(&text))
    }

    /// Picks the bench's counters out of Prometheus text.
    pub fn parse(text: &str) -> Self {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let samples = prometheus_parse::Scrape::parse(lines)
            .map(|s| s.samples)
            .unwrap_or_default();
        let mut scrape = Self::default();
        for sample in &samples {
            let value = match sample.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => continue,
            };
            let verb = || sample.labels.get("verb").unwrap_or("").to_string();
            let target = match sample.metric.as_str() {
                "apiserver_request_total" => scrape.requests.entry((verb(), Resource::of(sample))),
                "apiserver_request_body_size_bytes_sum" => {
                    scrape.body_bytes.entry((verb(), Resource::of(sample)))
                }
                "apiserver_watch_events_total" => {
                    *scrape.watch_events.entry(Resource::of(sample)).or_default() += value;
                    continue;
                }
                "apiserver_watch_events_sizes_sum" => {
                    *scrape.watch_bytes.entry(Resource::of(sample)).or_default() += value;
                    continue;
                }
                _ => continue,
            };
            *target.or_default() += value;
        }
        scrape
    }

    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Scrape) -> Scrape {
        fn diff<K: Ord + Clone>(a: &BTreeMap<K, f64>, b: &BTreeMap<K, f64>) -> BTreeMap<K, f64> {
            a.iter()
                .map(|(k, v)| (k.clone(), v - b.get(k).copied().unwrap_or(0.0)))
                .filter(|(_, v)| *v > 0.0)
                .collect()
        }
        Scrape {
            requests: diff(&self.requests, &before.requests),
            watch_events: diff(&self.watch_events, &before.watch_events),
            watch_bytes: diff(&self.watch_bytes, &before.watch_bytes),
            body_bytes: diff(&self.body_bytes, &before.body_bytes),
        }
    }

    /// Adds another difference to this one.
    pub fn add(&mut self, other: &Scrape) {
        fn add<K: Ord + Clone>(a: &mut BTreeMap<K, f64>, b: &BTreeMap<K, f64>) {
            for (k, v) in b {
                *a.entry(k.clone()).or_default() += v;
            }
        }
        add(&mut self.requests, &other.requests);
        add(&mut self.watch_events, &other.watch_events);
        add(&mut self.watch_bytes, &other.watch_bytes);
        add(&mut self.body_bytes, &other.body_bytes);
    }

    /// Writes to seccompd's resources.
    pub fn seccompd_writes(&self) -> f64 {
        self.writes_where(Resource::is_seccompd)
    }

    /// Writes to the resources `which` picks.
    pub fn writes_where(&self, which: impl Fn(&Resource) -> bool) -> f64 {
        self.requests
            .iter()
            .filter(|((verb, r), _)| which(r) && WRITE_VERBS.contains(&verb.as_str()))
            .map(|(_, v)| v)
            .sum()
    }

    /// Watch events sent for seccompd's resources.
    pub fn seccompd_watch_events(&self) -> f64 {
        self.watch_events_where(Resource::is_seccompd)
    }

    /// Watch events sent for the resources `which` picks.
    pub fn watch_events_where(&self, which: impl Fn(&Resource) -> bool) -> f64 {
        self.watch_events
            .iter()
            .filter(|(r, _)| which(r))
            .map(|(_, v)| v)
            .sum()
    }

    /// Watch bytes sent for seccompd's resources.
    pub fn seccompd_watch_bytes(&self) -> f64 {
        self.watch_bytes
            .iter()
            .filter(|(r, _)| r.is_seccompd())
            .map(|(_, v)| v)
            .sum()
    }

    /// Request body bytes sent to `resource` of seccompd's group.
    pub fn seccompd_body_bytes(&self, resource: &str) -> f64 {
        self.body_bytes
            .iter()
            .filter(|((_, r), _)| r.is_seccompd() && r.resource == resource)
            .map(|(_, v)| v)
            .sum()
    }
}

/// Waits until seccompd's writes and watch events have stopped for a second (two reads of the
/// counters a second apart agree), so that a phase's difference holds all it caused; returns
/// the last read. Gives up quietly after `limit` and returns the last read.
pub async fn quiet(client: &Client, limit: Duration) -> anyhow::Result<Scrape> {
    quiet_where(client, limit, Resource::is_seccompd).await
}

/// [`quiet`] for the resources `which` picks.
pub async fn quiet_where(
    client: &Client,
    limit: Duration,
    which: impl Fn(&Resource) -> bool,
) -> anyhow::Result<Scrape> {
    let start = Instant::now();
    let mut last = Scrape::read(client).await?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = Scrape::read(client).await?;
        let d = now.since(&last);
        if (d.writes_where(&which) == 0.0 && d.watch_events_where(&which) == 0.0)
            || start.elapsed() > limit
        {
            return Ok(now);
        }
        last = now;
    }
}
