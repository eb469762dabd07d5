//! Status: pure decisions about what a SeccompProfile's status says, and the elected task that
//! writes it.

pub mod progress;
pub mod rate;
pub mod summary;
pub mod tracker;
pub mod writer;
