//! Running a command on this host: under a profile's seccomp filter (`seccompd run`), or with
//! every system call of it and its descendants recorded (`seccompd record`).
//!
//! Both start the command through [`exec::exec_filtered`]: set `no_new_privs`, load a filter,
//! exec. So what runs between loading the filter and the program's first instruction (the
//! exec itself) is the same in both, and a recorded profile lets `run` start the command.

pub mod exec;
pub mod notify_failure;
pub mod program;
pub mod recorder;
