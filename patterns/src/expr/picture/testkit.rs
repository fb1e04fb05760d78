//! Test helper: runs many table-driven checks and reports every failure at once.

/// Collects check failures so one test can report all mismatching cases together.
#[derive(Default)]
pub(crate) struct Checks {
    failures: Vec<String>,
    total: usize,
}

impl Checks {
    /// Records one comparison of `actual` against `expected` for the case `label`.
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, label: &str, actual: T, expected: T) {
        self.total += 1;
        if actual != expected {
            self.failures
                .push(format!("{label}: got {actual:?}, expected {expected:?}"));
        }
    }

    /// Panics listing every failure, if there was any.
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} cases failed:\n{}",
            self.failures.len(),
            self.total,
            self.failures.join("\n")
        );
    }
}
