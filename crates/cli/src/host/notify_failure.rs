//! What a failed seccomp notification receive or respond means for a recording.
//!
//! Tasks of the recorded command end, and take signals, at any moment; the kernel then drops
//! the notification of the call they were waiting in, and a receive or respond that comes a
//! moment later finds nothing (ENOENT). That is part of recording, not a failure of it.
//!
//! libseccomp 2.5 reports every failed ioctl behind `seccomp_notify_receive` and
//! `seccomp_notify_respond` as ECANCELED, whatever the kernel said. `SCMP_FLTATR_API_SYSRAWRC`
//! cannot change that: it is an attribute of a filter context, and these calls take only the
//! listener's file descriptor (the recorder holds no context at all; its listener comes from
//! the helper through `pidfd_getfd`). libseccomp does leave the thread's errno as the ioctl
//! set it, which is also what the `libseccomp` crate reads to retry on EINTR; so the kernel's
//! answer is read there.

/// What to do after a receive or respond failed with a given errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyFailure {
    /// The task that made the call is gone, or a signal ended its wait: the kernel dropped the
    /// notification (ENOENT). Nothing is lost: a call dropped before it was received never ran
    /// (a restarted one comes again as a new notification), and one dropped after was received
    /// and noted.
    TaskGone,
    /// The recorder's own wait was interrupted by a signal (EINTR): make the same receive or
    /// respond again.
    Interrupted,
    /// Anything else: the recording cannot go on.
    Failed,
}

/// What a receive or respond that failed with the kernel's `errno` means.
pub fn classify(errno: i32) -> NotifyFailure {
    match errno {
        libc::ENOENT => NotifyFailure::TaskGone,
        libc::EINTR => NotifyFailure::Interrupted,
        _ => NotifyFailure::Failed,
    }
}

/// The kernel's errno behind a failed receive or respond: `library_rc` is libseccomp's
/// (negative) return code, `thread_errno` the thread's errno read right after the call.
///
/// ECANCELED is libseccomp's "the kernel call failed", so the thread's errno says why; any
/// other code is the library's own answer (or, from a libseccomp that passes it through, the
/// kernel's), and stands. With no errno set, ECANCELED itself stands, and is a failure.
pub fn kernel_errno(library_rc: i32, thread_errno: Option<i32>) -> i32 {
    let library_errno = library_rc.saturating_neg();
    match thread_errno {
        Some(errno) if library_errno == libc::ECANCELED && errno > 0 => errno,
        _ => library_errno,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_notification_is_a_task_gone_and_an_interrupted_wait_is_made_again() {
        assert_eq!(classify(libc::ENOENT), NotifyFailure::TaskGone);
        assert_eq!(classify(libc::EINTR), NotifyFailure::Interrupted);
    }

    #[test]
    fn every_other_errno_is_a_failure() {
        for errno in [
            libc::EINVAL,
            libc::EFAULT,
            libc::EBADF,
            libc::ENOTTY,
            libc::EINPROGRESS,
            libc::ECANCELED,
            libc::EOPNOTSUPP,
            libc::ENOMEM,
        ] {
            assert_eq!(classify(errno), NotifyFailure::Failed, "errno {errno}");
        }
    }

    #[test]
    fn libseccomps_ecanceled_gives_way_to_the_threads_errno() {
        assert_eq!(
            kernel_errno(-libc::ECANCELED, Some(libc::ENOENT)),
            libc::ENOENT
        );
        assert_eq!(
            kernel_errno(-libc::ECANCELED, Some(libc::EINVAL)),
            libc::EINVAL
        );
    }

    #[test]
    fn without_a_threads_errno_ecanceled_stays_a_failure() {
        for thread_errno in [None, Some(0)] {
            let errno = kernel_errno(-libc::ECANCELED, thread_errno);
            assert_eq!(errno, libc::ECANCELED);
            assert_eq!(classify(errno), NotifyFailure::Failed);
        }
    }

    #[test]
    fn a_code_other_than_ecanceled_is_the_answer_whatever_the_threads_errno() {
        // A libseccomp passing the kernel's errno through.
        assert_eq!(kernel_errno(-libc::ENOENT, Some(libc::EBADF)), libc::ENOENT);
        // The library's own refusal (no notification support), not the kernel's.
        assert_eq!(
            kernel_errno(-libc::EOPNOTSUPP, Some(libc::ENOENT)),
            libc::EOPNOTSUPP
        );
    }
}
