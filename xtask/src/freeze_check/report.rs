//! One line per check: check, result, detail.

use std::fmt::Write as _;

/// The result of one check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// `Some(true)` passed (a warning counts as passed), `Some(false)` failed, `None`
    /// skipped.
    pub passed: Option<bool>,
    /// Passed, but with something to look at (the perf gate could not judge).
    pub warning: bool,
    /// What was found.
    pub detail: String,
}

impl Check {
    /// A passed check.
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            passed: Some(true),
            warning: false,
            detail: detail.into(),
        }
    }

    /// A check that did not fail but could not conclude either.
    pub fn warning(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            warning: true,
            ..Self::ok(name, detail)
        }
    }

    /// A failed check.
    pub fn failed(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            passed: Some(false),
            warning: false,
            detail: detail.into(),
        }
    }

    /// A skipped check.
    pub fn skipped(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            passed: None,
            warning: false,
            detail: detail.into(),
        }
    }
}

/// The table, with a header line.
pub fn render(checks: &[Check]) -> String {
    let width = checks
        .iter()
        .map(|c| c.name.len())
        .chain(std::iter::once("check".len()))
        .max()
        .unwrap_or(5);
    let mut out = String::new();
    let _ = writeln!(out, "{:<width$}  {:<7}  detail", "check", "result");
    for check in checks {
        let result = match (check.passed, check.warning) {
            (Some(true), true) => "WARNING",
            (Some(true), false) => "ok",
            (Some(false), _) => "FAILED",
            (None, _) => "skipped",
        };
        let _ = writeln!(out, "{:<width$}  {result:<7}  {}", check.name, check.detail);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_check() {
        let table = render(&[
            Check::ok("artifact perf/baseline_cp1.json", "file, 705 bytes"),
            Check::failed("perf-gate", "exit 1"),
            Check::skipped("heavy", "--skip heavy"),
            Check::warning("perf-gate", "exit 3: too noisy to judge"),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[4].contains("WARNING"));
        assert!(lines[1].contains(" ok ") && lines[1].ends_with("file, 705 bytes"));
        assert!(lines[2].starts_with("perf-gate") && lines[2].contains("FAILED"));
        assert!(lines[3].contains("skipped"));
    }
}
