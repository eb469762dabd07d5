//! One pass of the agent: scan the directory, plan against the desired state, carry the plan
//! out, and say what the node now holds. The only place the agent changes files.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{info, warn};

use super::desired::{CheckCache, ProfileInput, desired_state};
use super::plan::{DesiredProfile, RemovalReason, Target, plan};
use super::report::node_reports;
use crate::api::ProfileReport;
use crate::node::dir::{DirError, ProfileDir};
use crate::profile::render::{OciProfile, Rendered};
use crate::telemetry::Metrics;

/// Judges a resolved profile for this node; `Err` holds the reason it cannot be installed.
pub type NodeCheck = Box<dyn Fn(&OciProfile) -> Result<(), String> + Send + Sync>;

/// The agent's memory between passes.
pub struct NodeSync {
    dir: ProfileDir,
    cache: CheckCache,
    /// The last valid rendering written per profile, to repair files of profiles whose spec
    /// has since become invalid.
    last_good: BTreeMap<String, Rendered>,
    check: NodeCheck,
}

impl NodeSync {
    /// Starts with an empty memory. `check` judges each resolved profile for this node.
    pub fn new(
        dir: ProfileDir,
        check: impl Fn(&OciProfile) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            dir,
            cache: CheckCache::default(),
            last_good: BTreeMap::new(),
            check: Box::new(check),
        }
    }

    /// Brings the directory in line with `profiles` (a complete list) and returns the node's
    /// report. `retained` names deleted profiles whose files stay because pods use them.
    pub fn pass(
        &mut self,
        profiles: &[ProfileInput<'_>],
        retained: &BTreeSet<String>,
        metrics: &Metrics,
    ) -> Result<Vec<ProfileReport>, DirError> {
        let desired = desired_state(profiles, &mut self.cache, &self.check);
        self.cache.retain_current(&desired);
        let actual = self.dir.scan()?;
        let todo = plan(&desired, &actual, &self.last_good, retained);
        let mut write_errors = BTreeMap::new();
        for write in todo.writes {
            match self
                .dir
                .write_atomic(&write.file_name, &write.rendered.bytes)
            {
                Ok(()) => {
                    let verb = if write.replaces {
                        "replaced"
                    } else {
                        "installed"
                    };
                    info!(profile = %write.profile, hash = %write.rendered.hash, "{verb} profile file");
                    metrics.record_write(write.replaces);
                }
                Err(err) => {
                    warn!(profile = %write.profile, %err, "cannot write profile file");
                    metrics.record_error();
                    write_errors.insert(write.profile, err.to_string());
                }
            }
        }
        for removal in todo.removals {
            let what = match removal.why {
                RemovalReason::ProfileGone => "profile deleted",
                RemovalReason::Foreign => "not written by seccompd",
            };
            match self.dir.remove(&removal.file_name) {
                Ok(()) => {
                    info!(file = ?removal.file_name, reason = what, "removed");
                    metrics.record_removal();
                }
                Err(err) => {
                    warn!(file = ?removal.file_name, %err, "cannot remove");
                    metrics.record_error();
                }
            }
        }
        remember_installed(&mut self.last_good, &desired, &write_errors);
        self.last_good
            .retain(|name, _| desired.contains_key(name) || retained.contains(name));
        Ok(node_reports(&desired, &write_errors))
    }
}

/// Files found already correct count as the last valid version too (after a restart the agent
/// learns them from disk).
fn remember_installed(
    last_good: &mut BTreeMap<String, Rendered>,
    desired: &BTreeMap<String, DesiredProfile>,
    write_errors: &BTreeMap<String, String>,
) {
    for (name, want) in desired {
        if let Target::Install(r) = &want.target
            && !write_errors.contains_key(name)
        {
            last_good.insert(name.clone(), r.clone());
        }
    }
}
