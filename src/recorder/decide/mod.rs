//! The recorder's pure decisions: reading audit records, attributing processes to containers,
//! tallying calls per container, and deciding each recording's node part and outcome.

pub mod audit;
pub mod cgroup;
pub mod part;
pub mod tally;
