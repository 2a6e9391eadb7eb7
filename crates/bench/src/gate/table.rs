//! The gate's table: policy, metric, baseline, candidate, its spread, limit, verdict.

use std::fmt::Write as _;

use super::evaluate::{Limit, Report, Row};

const HEADERS: [&str; 7] = [
    "policy",
    "metric",
    "baseline",
    "candidate",
    "±",
    "limit",
    "verdict",
];

/// Renders the report as an aligned Markdown table.
pub fn render(report: &Report) -> String {
    let cells: Vec<[String; 7]> = report.rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &[String]| {
        let padded: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "| {} |", padded.join(" | "));
    };
    line(&mut out, &HEADERS.map(str::to_owned));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut out, &rule);
    for row in &cells {
        line(&mut out, row);
    }
    out
}

fn cells(row: &Row) -> [String; 7] {
    [
        row.policy.clone(),
        row.metric.clone(),
        row.baseline.map_or_else(|| "—".to_owned(), number),
        row.candidate.map_or_else(|| "—".to_owned(), number),
        row.spread_pct
            .map_or_else(|| "—".to_owned(), |p| format!("{p:.1} %")),
        row.limit.map_or_else(|| "—".to_owned(), limit),
        row.verdict.describe(),
    ]
}

fn limit(limit: Limit) -> String {
    match limit {
        Limit::AtLeast(v) => format!(">= {}", number(v)),
        Limit::AtMost(v) => format!("<= {}", number(v)),
        Limit::Within { value, slack } => {
            if slack > 0.0 {
                format!("{} ± {}", number(value), number(slack))
            } else {
                format!("= {}", number(value))
            }
        }
    }
}

/// A number with at most four decimals and no trailing zeros.
pub fn number(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::evaluate::Verdict;
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(62.0), "62");
        assert_eq!(number(55.800000000001), "55.8");
        assert_eq!(number(0.24), "0.24");
        assert_eq!(number(113.85), "113.85");
        assert_eq!(number(-0.0), "0");
    }

    #[test]
    fn table_has_every_column() {
        let report = Report {
            rows: vec![Row {
                policy: "cp1".into(),
                metric: "rps".into(),
                baseline: Some(62.0),
                candidate: Some(50.0),
                limit: Some(Limit::AtLeast(55.8)),
                spread_pct: Some(2.5),
                verdict: Verdict::Regression,
            }],
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("| policy | metric | baseline | candidate | ±"));
        assert!(lines[2].contains("| 2.5 % "));
        assert!(lines[2].contains("| 62 "));
        assert!(lines[2].contains(">= 55.8"));
        assert!(lines[2].contains("FAIL: regression"));
    }

    #[test]
    fn limits_read_naturally() {
        assert_eq!(limit(Limit::AtMost(113.85)), "<= 113.85");
        assert_eq!(
            limit(Limit::Within {
                value: 0.0,
                slack: 0.0
            }),
            "= 0"
        );
        assert_eq!(
            limit(Limit::Within {
                value: 0.0,
                slack: 2.0
            }),
            "0 ± 2"
        );
    }
}
