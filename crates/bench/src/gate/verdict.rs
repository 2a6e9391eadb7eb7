//! The gate's conclusion as printed: the provisional-baseline notes, the table and the
//! one-line verdict, with the exit status that goes with it; and how noisy the machine was
//! (the intervals of the pooled medians, the echo A/A check) to print beside it.

use std::fmt::Write as _;

use super::evaluate::{self, Outcome, Report};
use super::exit::GateExit;
use super::policy::LoadedPolicy;
use super::table;
use crate::figures::{Ratio, Spread};
use crate::report::Candidate;

/// What the gate prints and the status it exits with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The text, each line ending in a newline; its last line is [`Verdict::line`].
    pub text: String,
    /// The one-line verdict (`perf-gate: PASS ...`), without its newline.
    pub line: String,
    /// The exit status.
    pub exit: GateExit,
}

impl Verdict {
    /// The text before the verdict line: the notes and the table.
    pub fn before_line(&self) -> &str {
        self.text
            .strip_suffix('\n')
            .and_then(|text| text.strip_suffix(self.line.as_str()))
            .unwrap_or(&self.text)
    }
}

/// Judges `candidate` against `policies`.
pub fn judge(policies: &[LoadedPolicy], candidate: &Candidate) -> Report {
    let value = serde_json::to_value(candidate).unwrap_or_default();
    evaluate::judge(policies, &value, &candidate.blocks)
}

/// The notes on provisional baselines, the table and the verdict of `candidate`.
pub fn of(policies: &[LoadedPolicy], candidate: &Candidate) -> Verdict {
    let mut notes = String::new();
    for loaded in policies {
        if loaded.baseline.provisional {
            let _ = writeln!(
                notes,
                "perf-gate: note: baseline `{}` ({}) is provisional: {}",
                loaded.baseline.name,
                loaded.path.display(),
                loaded.baseline.note.as_deref().unwrap_or("re-measure it")
            );
        }
    }
    let mut verdict = conclude(&judge(policies, candidate));
    verdict.text.insert_str(0, &notes);
    verdict
}

/// The table and the one-line verdict of `report`.
pub fn conclude(report: &Report) -> Verdict {
    let mut text = table::render(report);
    let names = |rows: Vec<&evaluate::Row>| -> String {
        rows.iter()
            .map(|r| format!("{}/{}", r.policy, r.metric))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let outcome = report.outcome();
    let checks = report.judged().count();
    let line = match outcome {
        Outcome::Pass => format!("perf-gate: PASS ({checks} checks)"),
        Outcome::Regression => {
            let failed: Vec<_> = report.rows.iter().filter(|r| r.verdict.failed()).collect();
            format!(
                "perf-gate: FAIL: {} of {checks} checks failed: {}. See perf/README.md for what \
                 each metric means and how a baseline is updated.",
                failed.len(),
                names(failed)
            )
        }
        Outcome::TooNoisy => {
            let noisy: Vec<_> = report.failures().collect();
            format!(
                "perf-gate: CANNOT JUDGE: the spread between rounds is too large for {} (see \
                 the ± column); nothing failed. Run the gate again on a quieter machine, or \
                 pool more runs (RUNBOOK.md, Perf gate failure).",
                names(noisy)
            )
        }
    };
    text.push_str(&line);
    text.push('\n');
    Verdict {
        text,
        line,
        exit: outcome.into(),
    }
}

/// The rows too noisy to judge, with their spread and the most their rule accepts
/// (`rps_ratio_to_echo ±12.3 % > ±10 %`), joined by commas; empty when none is.
pub fn noisy_rows(report: &Report) -> String {
    report
        .failures()
        .filter_map(|row| match row.verdict {
            evaluate::Verdict::TooNoisy {
                spread_pct,
                max_pct,
            } => Some(format!(
                "{}/{} ±{spread_pct:.1} % > ±{max_pct} %",
                row.policy, row.metric
            )),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How noisy the machine was in `candidate` (pooled from `runs` runs): the ± of each ratio's
/// ~90 % interval, and the echo A/A ratio (second echo round ÷ first of each block) with its
/// interval. Each line ends in a newline; empty without blocks.
pub fn noise(candidate: &Candidate, runs: usize) -> String {
    let mut text = String::new();
    if candidate.blocks.is_empty() {
        return text;
    }
    let spread = |ratio: Ratio| candidate.ratios.get(ratio.key());
    let widths = |raw: bool| -> Vec<String> {
        Ratio::ALL
            .into_iter()
            .filter(|r| r.is_to_raw_echo() == raw && *r != Ratio::EchoAa)
            .filter_map(|r| {
                let s = spread(r)?;
                Some(format!(
                    "{} ±{:.1} %",
                    r.key(),
                    s.relative_half_width * 100.0
                ))
            })
            .collect()
    };
    let _ = writeln!(
        text,
        "noise: {} block(s) from {runs} run(s); the ~90 % interval of each median is",
        candidate.blocks.len()
    );
    for raw in [false, true] {
        let widths = widths(raw);
        if !widths.is_empty() {
            let _ = writeln!(text, "noise:   {}", widths.join(", "));
        }
    }
    if let Some(Spread {
        median,
        low,
        high,
        relative_half_width,
        ..
    }) = spread(Ratio::EchoAa)
    {
        let _ = writeln!(
            text,
            "noise: echo A/A (second echo round ÷ first, per block) {median:.3}, interval \
             {low:.3} – {high:.3} (±{:.1} %); 1.000 ± a few % is a quiet machine",
            relative_half_width * 100.0
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment::Environment;
    use crate::figures::BlockFigures;
    use crate::report::Measured;

    fn report_of(verdicts: Vec<evaluate::Verdict>) -> Report {
        Report {
            rows: verdicts
                .into_iter()
                .enumerate()
                .map(|(i, verdict)| evaluate::Row {
                    policy: "own".into(),
                    metric: format!("m{i}"),
                    baseline: Some(1.0),
                    candidate: Some(1.0),
                    limit: None,
                    spread_pct: None,
                    verdict,
                })
                .collect(),
        }
    }

    #[test]
    fn the_verdict_line_is_the_last_line() {
        let noisy = evaluate::Verdict::TooNoisy {
            spread_pct: 12.34,
            max_pct: 10.0,
        };
        let report = report_of(vec![evaluate::Verdict::Pass, noisy]);
        let verdict = conclude(&report);
        assert_eq!(verdict.exit, GateExit::TooNoisy);
        assert!(verdict.line.starts_with("perf-gate: CANNOT JUDGE"));
        assert!(verdict.text.ends_with(&format!("{}\n", verdict.line)));
        assert!(verdict.before_line().ends_with("|\n"), "{}", verdict.text);
        assert_eq!(noisy_rows(&report), "own/m1 ±12.3 % > ±10 %");
        let report = report_of(vec![evaluate::Verdict::Pass, evaluate::Verdict::ReportOnly]);
        let verdict = conclude(&report);
        assert_eq!(verdict.line, "perf-gate: PASS (1 checks)");
        assert_eq!(noisy_rows(&report), "");
    }

    #[test]
    fn noise_names_every_interval_and_the_echo_aa_check() {
        assert_eq!(
            noise(
                &Candidate::new(Environment::default(), &Measured::default()),
                1
            ),
            ""
        );
        let block = |aa: f64| BlockFigures {
            throughput: 0.8,
            p50: 1.2,
            p99: 1.1,
            cpu_per_request: Some(1.6),
            echo_aa: aa,
            throughput_to_raw_echo: Some(0.6),
            p50_to_raw_echo: Some(1.5),
            p99_to_raw_echo: Some(1.3),
            cpu_per_request_to_raw_echo: Some(2.5),
        };
        let mut candidate = Candidate::new(Environment::default(), &Measured::default());
        candidate.blocks = [0.9, 1.0, 1.1].into_iter().map(block).collect();
        candidate.ratios = Ratio::ALL
            .iter()
            .filter_map(|r| Some((r.key().to_owned(), Spread::of(*r, &candidate.blocks)?)))
            .collect();
        let text = noise(&candidate, 2);
        assert!(text.contains("3 block(s) from 2 run(s)"), "{text}");
        assert!(text.contains("rps_ratio_to_echo ±0.0 %"), "{text}");
        assert!(
            text.contains("cpu_per_request_ratio_to_raw_echo ±0.0 %"),
            "{text}"
        );
        assert!(
            text.contains("echo A/A (second echo round ÷ first, per block) 1.000, interval 0.900 – 1.100 (±10.0 %)"),
            "{text}"
        );
    }
}
