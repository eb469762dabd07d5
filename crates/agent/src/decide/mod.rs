//! The agent's decisions, pure: from the API's profiles, the node's pods and the directory as
//! scanned to what the node must hold, what to write and remove, what to report and announce,
//! and when to try a failed item again. No I/O and no clock: every rule is tested with plain
//! values, and the tasks one level up ([`super::sync`], [`mod@super::run`], [`super::publish`],
//! [`super::events`], [`super::taint`]) carry the decisions out.

pub mod builtin;
pub mod claim;
pub mod desired;
pub mod floors;
pub mod liveness;
pub mod notices;
pub mod plan;
pub mod pods;
pub mod renderings;
pub mod report;
pub mod retry;
pub mod runtime;
pub mod suggest;
