//! Status: pure decisions about what a SeccompProfile's status says and when it is written,
//! and the elected task that writes it.

#[cfg(test)]
mod fixtures;
pub mod floors;
pub mod plan;
pub mod progress;
pub mod rate;
pub mod summary;
pub mod tracker;
pub mod writer;
