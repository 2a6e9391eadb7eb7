//! The gate's conclusion as printed: the provisional-baseline notes, the table and the
//! one-line verdict, with the exit status that goes with it.

use std::fmt::Write as _;

use super::evaluate::{self, Outcome, Report};
use super::exit::GateExit;
use super::policy::LoadedPolicy;
use super::table;
use crate::report::Candidate;

/// What the gate prints and the status it exits with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The text, each line ending in a newline.
    pub text: String,
    /// The exit status.
    pub exit: GateExit,
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
    let line = match outcome {
        Outcome::Pass => format!("perf-gate: PASS ({} checks)", report.rows.len()),
        Outcome::Regression => {
            let failed: Vec<_> = report.rows.iter().filter(|r| r.verdict.failed()).collect();
            format!(
                "perf-gate: FAIL: {} of {} checks failed: {}. See perf/README.md for what each \
                 metric means and how a baseline is updated.",
                failed.len(),
                report.rows.len(),
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
        exit: outcome.into(),
    }
}
