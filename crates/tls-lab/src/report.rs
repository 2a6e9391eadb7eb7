//! The results table on stdout and `report.json`.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::result::CaseResult;

/// The report's file name in the output folder.
pub const REPORT: &str = "report.json";

/// Longest `observed` text shown in the table (the log and report.json hold all of it).
const OBSERVED_WIDTH: usize = 110;

/// Prints case, expected, observed, verdict.
pub fn print_table(results: &[CaseResult]) {
    let case_width = results
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let expected_width = results
        .iter()
        .map(|r| r.expected.len())
        .max()
        .unwrap_or(8)
        .max(8);
    println!();
    println!(
        "{:<case_width$}  {:<expected_width$}  {:<7}  observed",
        "case", "expected", "verdict"
    );
    for result in results {
        println!(
            "{:<case_width$}  {:<expected_width$}  {:<7}  {}",
            result.name,
            result.expected,
            result.verdict(),
            shorten(&result.observed, OBSERVED_WIDTH)
        );
    }
}

/// Writes every row, untruncated, as JSON.
pub fn write_json(path: &Path, results: &[CaseResult]) -> anyhow::Result<()> {
    let rows: Vec<_> = results
        .iter()
        .map(|r| {
            json!({
                "case": r.name,
                "expected": r.expected,
                "observed": r.observed,
                "verdict": r.verdict(),
            })
        })
        .collect();
    let failed = results.iter().filter(|r| !r.passed()).count();
    let doc = json!({"cases": rows, "failed": failed, "passed": results.len() - failed});
    let text = serde_json::to_string_pretty(&doc).context("could not encode the report")?;
    std::fs::write(path, text + "\n").with_context(|| format!("could not write {}", path.display()))
}

/// How many cases of a `report.json` passed and failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Cases that behaved as expected.
    pub passed: u64,
    /// Cases that did not.
    pub failed: u64,
}

impl Summary {
    /// Reads the counts of the report at `path` (written by [`write_json`]).
    pub fn read(path: &Path) -> anyhow::Result<Summary> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let count = |key: &str| {
            doc[key]
                .as_u64()
                .with_context(|| format!("{} has no count `{key}`", path.display()))
        };
        Ok(Summary {
            passed: count("passed")?,
            failed: count("failed")?,
        })
    }

    /// Every case.
    pub fn total(&self) -> u64 {
        self.passed + self.failed
    }
}

fn shorten(text: &str, width: usize) -> String {
    match text.char_indices().nth(width) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}...", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_reads_back_what_was_written() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(REPORT);
        let results = [
            CaseResult::new("a", "x", "x", true),
            CaseResult::new("b", "x", "y", false),
            CaseResult::new("c", "x", "x", true),
        ];
        write_json(&path, &results)?;
        assert_eq!(
            Summary::read(&path)?,
            Summary {
                passed: 2,
                failed: 1
            }
        );
        assert!(Summary::read(&dir.path().join("absent.json")).is_err());
        assert_eq!(shorten("abcdef", 3), "abc...");
        assert_eq!(shorten("abc", 3), "abc");
        Ok(())
    }
}
