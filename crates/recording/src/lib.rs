//! The pure decisions of recording, shared by the recorder and the controller: reading audit records, attributing processes to containers,
//! tallying calls per container, and deciding each recording's node part and outcome.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod cgroup;
pub mod denials;
pub mod part;
pub mod tally;
