//! What `cargo test` printed, read back by the benches that run it.

/// The counts of the `test result:` lines cargo test printed.
#[derive(Debug, Default)]
pub struct TestCounts {
    /// Tests passed.
    pub passed: u64,
    /// Tests failed.
    pub failed: u64,
}

impl TestCounts {
    /// Adds a line such as `test result: FAILED. 63 passed; 2 failed; 0 ignored; ...`.
    pub fn add(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result:") else {
            return;
        };
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            if let (Some(n), Some(what)) = (words.next(), words.next()) {
                match (n.parse::<u64>(), what) {
                    (Ok(n), "passed") => self.passed += n,
                    (Ok(n), "failed") => self.failed += n,
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TestCounts;

    #[test]
    fn counts_add_up_over_test_result_lines() {
        let mut c = TestCounts::default();
        c.add("test result: FAILED. 63 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.0s");
        c.add("test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.0s");
        c.add("running 3 tests");
        assert_eq!((c.passed, c.failed), (66, 2));
    }
}
