//! How seccompd talks to the API server: one retry policy and one kind of watched cache, used
//! by the agent and the status writer alike.

pub mod backoff;
pub mod client;
#[cfg(feature = "test-support")]
pub mod mock;
pub mod reflect;
pub mod watch_retry;

pub use backoff::{MAX_API_BACKOFF, api_backoff, api_retry, is_transient};
pub use client::client;
pub use reflect::{Wake, WatchTask, reflect, reflect_specs};
