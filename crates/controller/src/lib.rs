//! The controller: a Deployment off the nodes whose replicas elect one status writer through a
//! Lease; the elected one summarizes every node's report into each SeccompProfile's status,
//! decides each recording from its nodes' parts ([`recordings`]), sums the nodes' denial
//! reports into each profile's `status.denials` ([`denials`]) and says in each
//! SeccompProfileBinding's status whether its profile is there ([`bindings`]).
//! Agents only write their own node's report, so a compromised node cannot forge the status
//! of the cluster (docs/security-model.md).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt as _;
use tracing::{info, warn};

pub mod bindings;
pub mod denials;
pub mod metrics;
pub mod probes;
pub mod recordings;
pub mod status;

use crate::metrics::ControllerMetrics;
use crate::probes::ControllerProbes;
use crate::status::writer::{self, WriterSettings};
use seccompd_profile::compile::native_arch;
use seccompd_runtime::health;
use seccompd_runtime::shutdown_signal;
use seccompd_runtime::telemetry;

/// Command-line options of `seccompd controller`.
#[derive(Clone, Debug, clap::Args)]
pub struct ControllerArgs {
    /// Name of this replica (its pod's name, from the downward API); its identity in the
    /// election adds the process's start time (see `writer::candidate_identity`).
    #[arg(long, env = "POD_NAME")]
    pub identity: String,

    /// Namespace of the election Lease and of the agents' DaemonSet.
    #[arg(long, env = "POD_NAMESPACE", default_value = "seccompd-system")]
    pub namespace: String,

    /// The agents' DaemonSet: only the nodes its node selector matches count in a status.
    #[arg(long, env = "AGENT_DAEMONSET", default_value = "seccompd-agent")]
    pub agent_daemonset: String,

    /// Address of the /healthz, /readyz and /metrics endpoint.
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:9810")]
    pub health_addr: SocketAddr,
}

/// Runs the controller until SIGTERM or SIGINT.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    telemetry::init_logging();
    let client = seccompd_runtime::apiserver::client()
        .await
        .context("cannot configure the Kubernetes client")?;
    info!(identity = %args.identity, namespace = %args.namespace, "seccompd controller starting");
    let metrics = Arc::new(ControllerMetrics::new());
    let health_addr = args.health_addr;
    let probes = Arc::new(ControllerProbes {
        metrics: metrics.clone(),
    });
    tokio::spawn(async move {
        if let Err(err) = health::serve_probes(health_addr, probes).await {
            warn!(%err, %health_addr, "health endpoint stopped");
        }
    });
    let arch = native_arch().context("this machine's architecture is not one seccompd knows")?;
    let settings = WriterSettings {
        namespace: args.namespace,
        identity: writer::candidate_identity(&args.identity, std::time::SystemTime::now()),
        agent_daemonset: args.agent_daemonset,
    };
    tokio::select! {
        () = writer::run_elected(client, settings, metrics, move |client| {
            futures::future::join3(
                recordings::decide_recordings(client.clone(), arch),
                denials::write_denials(client.clone()),
                bindings::write_binding_statuses(client),
            )
            .map(drop)
        }) => Ok(()),
        () = shutdown_signal() => {
            info!("shutting down");
            Ok(())
        }
    }
}
