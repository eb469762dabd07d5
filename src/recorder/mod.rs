//! The recorder (`seccompd recorder`): an opt-in DaemonSet that reads the kernel's seccomp
//! audit records on its node, attributes them to the containers of the pods that
//! SeccompProfileRecordings select, and writes the recorded SeccompProfiles.
//!
//! [`decide`] holds the pure decisions; the modules beside it do the I/O.

pub mod decide;
