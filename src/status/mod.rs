//! Status: pure decisions about what a SeccompProfile's status says, and the elected task that
//! writes it.

pub mod rate;
pub mod summary;
pub mod writer;
