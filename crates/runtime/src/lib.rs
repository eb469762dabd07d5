//! What the daemons (agent, controller, recorder) share and nothing else: API access with one
//! retry policy and one kind of watched cache ([`apiserver`]), logs and metrics
//! ([`telemetry`]), the health and readiness endpoints ([`health`]) and shutdown
//! ([`shutdown_signal`]). No seccompd decision lives here.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apiserver;
pub mod health;
pub mod shutdown;
pub mod telemetry;

pub use shutdown::shutdown_signal;
