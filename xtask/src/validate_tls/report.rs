//! The results table on stdout and `report.json`.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use super::cases::CaseResult;

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

fn shorten(text: &str, width: usize) -> String {
    match text.char_indices().nth(width) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}...", &text[..end]),
    }
}
