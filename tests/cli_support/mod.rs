//! Running the seccompd binary as a user does, for the offline CLI tests.

use std::ffi::OsStr;
use std::process::Command;

/// How one run of seccompd ended.
pub struct Run {
    /// Exit code (-1 when ended by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts that standard output contains `text`, showing the output otherwise.
    pub fn assert_stdout_has(&self, text: &str) {
        assert!(
            self.stdout.contains(text),
            "{:?} not in:\n{}",
            text,
            self.stdout
        );
    }

    /// Asserts that standard error contains `text`, showing it otherwise.
    #[allow(dead_code)] // not every test binary looks at standard error
    pub fn assert_stderr_has(&self, text: &str) {
        assert!(
            self.stderr.contains(text),
            "{:?} not in:\n{}",
            text,
            self.stderr
        );
    }
}

/// Runs `seccompd ARGS...` to its end.
pub fn seccompd<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_seccompd"))
        .args(args)
        .output()
        .expect("running seccompd");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Compiles `tests/programs/<source>` with `cc` and `flags` into `dir`, named after the source
/// without `.c`.
#[allow(dead_code)] // not every test binary compiles a program
pub fn compile_program(dir: &std::path::Path, source: &str, flags: &[&str]) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(source);
    let binary = dir.join(source.trim_end_matches(".c"));
    let status = Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(&binary)
        .arg(&path)
        .status()
        .expect("running cc (Debian: gcc, libc6-dev)");
    assert!(status.success(), "cc failed on {}", path.display());
    binary
}
