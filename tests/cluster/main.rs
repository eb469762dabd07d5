//! The tests that need the test cluster (`make cluster-up`), as one binary: one module per
//! area, the shared helpers in the `seccompd-e2e` crate (`crates/e2e`). They share one
//! cluster, so they run one at a time:
//!
//! ```sh
//! make integration                                  # all of them, against a running cluster
//! cargo test --test cluster -- --test-threads=1     # the same
//! cargo test --test cluster lifecycle_drift -- --test-threads=1   # one module
//! ```
//!
//! Plain `cargo test` leaves this binary out (`test = false` in Cargo.toml). The admin
//! kubeconfig comes from `SECCOMPD_KUBECONFIG` (default `.cluster/kubeconfig`); when no API
//! server answers there, every test fails at once saying to run `make cluster-up`.

mod agent_e2e;
mod apply_validation;
mod binding;
mod cluster_smoke;
mod denials_cluster;
mod fault_control_plane;
mod fault_disk;
mod fault_partition;
mod fault_status_writer;
mod floor_cluster;
mod helm_chart;
mod import_e2e;
mod least_privilege;
mod lifecycle_drift;
mod lifecycle_hostile;
mod lifecycle_in_use;
mod lifecycle_kill_storm;
mod lifecycle_long_names;
mod lifecycle_missing_profile;
mod lifecycle_new_node;
mod lifecycle_outage;
mod lifecycle_own_files;
mod lifecycle_unreadable;
mod mixed_fleet;
mod prometheus_scrape;
mod recording_cluster;
mod seed_walkthrough;
mod two_nodes;
