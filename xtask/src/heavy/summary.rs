//! The summary table of a `heavy` run: one row per suite.

use std::fmt::Write as _;
use std::time::Duration;

/// How one suite ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `cargo test` exited 0.
    Passed,
    /// Failed, then passed on a retry (`--retries`).
    Flaky,
    /// `cargo test` exited non-zero (or could not run).
    Failed,
    /// Stopped by a signal.
    Interrupted,
    /// Never started (an earlier step failed or a signal came first).
    NotRun,
}

impl Verdict {
    /// True for a suite that passed, at once or on a retry.
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Passed | Verdict::Flaky)
    }

    /// The word shown in the table.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Passed => "ok",
            Verdict::Flaky => "flaky",
            Verdict::Failed => "FAILED",
            Verdict::Interrupted => "interrupted",
            Verdict::NotRun => "not run",
        }
    }
}

/// One row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Suite name.
    pub suite: String,
    /// Outcome.
    pub verdict: Verdict,
    /// Tests passed, failed, ignored, when libtest printed them.
    pub counts: Option<(u64, u64, u64)>,
    /// Time spent in `cargo test`.
    pub elapsed: Option<Duration>,
}

/// The table as text, with a header line.
pub fn render(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.suite.len())
        .chain(std::iter::once("suite".len()))
        .max()
        .unwrap_or(5);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<11}  {:<30}  {:>8}",
        "suite", "result", "tests", "duration"
    );
    for row in rows {
        let tests = match row.counts {
            Some((passed, failed, ignored)) => {
                let mut text = format!("{passed} passed, {failed} failed");
                if ignored > 0 {
                    let _ = write!(text, ", {ignored} ignored");
                }
                text
            }
            None => "-".to_owned(),
        };
        let time = row
            .elapsed
            .map_or_else(|| "-".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
        let _ = writeln!(
            out,
            "{:<width$}  {:<11}  {:<30}  {:>8}",
            row.suite,
            row.verdict.label(),
            tests,
            time
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_line_per_suite() {
        let table = render(&[
            Row {
                suite: "decide".into(),
                verdict: Verdict::Passed,
                counts: Some((14, 0, 0)),
                elapsed: Some(Duration::from_millis(5120)),
            },
            Row {
                suite: "lifecycle".into(),
                verdict: Verdict::Flaky,
                counts: Some((14, 0, 0)),
                elapsed: Some(Duration::from_secs(4)),
            },
            Row {
                suite: "hostile_input".into(),
                verdict: Verdict::NotRun,
                counts: None,
                elapsed: None,
            },
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[1].starts_with("decide ") && lines[1].contains("14 passed, 0 failed"));
        assert!(lines[1].ends_with("5.1s"), "{table}");
        assert!(lines[2].contains("flaky"), "{table}");
        assert!(lines[3].contains("not run"), "{table}");
        assert!(Verdict::Flaky.passed() && !Verdict::Failed.passed());
    }
}
