//! The gate's judgement: a candidate against every rule of every policy. Pure functions.
//!
//! Rules of judgement:
//! - `slack = max(|baseline| * tolerance_pct / 100, tolerance_abs)`.
//! - higher_is_better passes when `candidate >= baseline - slack`; lower_is_better when
//!   `candidate <= baseline + slack`; must_equal when `|candidate - baseline| <= slack`.
//! - A metric missing from the candidate (absent, `null`, not a number) fails: a missing
//!   figure is never read as 0.
//! - A baseline of 0: lower_is_better and must_equal then allow only `tolerance_abs` (the
//!   metric must stay 0 unless an absolute tolerance is given); higher_is_better with a
//!   baseline `<= 0` sets no floor at all, which is how the original gate passed with
//!   metrics it never measured, so such a rule fails and asks for a real baseline.
//! - A metric missing from the baseline fails the rule.
//! - A candidate whose `status` is not `"ok"` fails (a row of its own), whatever its figures.
//! - A ratio rule with `max_spread_pct` is judged on the median over the candidate's blocks,
//!   and only when that median is known well enough: a confidence interval wider than
//!   ± `max_spread_pct` makes the row "too noisy to judge", neither pass nor failure.
//! - The router ÷ raw echo ratios that no rule names are shown as rows of their own
//!   (policy `info`, verdict "report only") when the candidate has them: neither pass nor
//!   failure, and never part of the verdict. A rule that names one judges it like any ratio.
//! - The whole: any failure fails; else anything too noisy makes the run unjudgeable; else
//!   it passes.

use crate::figures::{BlockFigures, Ratio, Spread};
use serde_json::Value;

use super::policy::{Direction, LoadedPolicy, Rule};

/// Absorbs floating-point noise at the limit (e.g. 62 * 0.9).
const EPSILON: f64 = 1e-9;

/// The judgement of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Within the limit.
    Pass,
    /// Beyond the limit.
    Regression,
    /// The candidate lacks the metric.
    MissingInCandidate,
    /// The baseline lacks the metric.
    MissingInBaseline,
    /// The baseline cannot express a floor (higher_is_better with a baseline <= 0).
    UnusableBaseline,
    /// The candidate's run failed; holds the reason.
    RunFailed(String),
    /// The figure is not known well enough to judge: ± this percent, over the limit.
    TooNoisy {
        /// The spread found, ± percent of the median.
        spread_pct: f64,
        /// The most the rule accepts.
        max_pct: f64,
    },
    /// Shown, not judged: a figure no rule names (the router ÷ raw echo ratios).
    ReportOnly,
}

impl Verdict {
    /// True only for [`Verdict::Pass`].
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// True for a judgement against the candidate (not a pass, not too noisy, not a row
    /// that is only reported).
    pub fn failed(&self) -> bool {
        !matches!(
            self,
            Verdict::Pass | Verdict::TooNoisy { .. } | Verdict::ReportOnly
        )
    }

    /// True for a row that is part of the verdict (every row but [`Verdict::ReportOnly`]).
    pub fn judged(&self) -> bool {
        !matches!(self, Verdict::ReportOnly)
    }

    /// Short text for the table.
    pub fn describe(&self) -> String {
        match self {
            Verdict::Pass => "pass".to_owned(),
            Verdict::Regression => "FAIL: regression".to_owned(),
            Verdict::MissingInCandidate => "FAIL: missing in candidate".to_owned(),
            Verdict::MissingInBaseline => "FAIL: missing in baseline".to_owned(),
            Verdict::UnusableBaseline => {
                "FAIL: baseline <= 0 sets no floor; measure a real baseline".to_owned()
            }
            Verdict::RunFailed(reason) => format!("FAIL: run failed: {reason}"),
            Verdict::TooNoisy {
                spread_pct,
                max_pct,
            } => format!("TOO NOISY: ±{spread_pct:.1} % > ±{max_pct} %"),
            Verdict::ReportOnly => "report only".to_owned(),
        }
    }
}

/// The limit a rule puts on the candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Candidate must be at least this.
    AtLeast(f64),
    /// Candidate must be at most this.
    AtMost(f64),
    /// Candidate must be within `slack` of `value`.
    Within {
        /// The baseline.
        value: f64,
        /// Allowed distance.
        slack: f64,
    },
}

impl Limit {
    fn for_rule(rule: &Rule, baseline: f64) -> Limit {
        let slack = rule.slack(baseline);
        match rule.direction {
            Direction::HigherIsBetter => Limit::AtLeast(baseline - slack),
            Direction::LowerIsBetter => Limit::AtMost(baseline + slack),
            Direction::MustEqual => Limit::Within {
                value: baseline,
                slack,
            },
        }
    }

    fn admits(&self, candidate: f64) -> bool {
        let eps = |v: f64| EPSILON * v.abs().max(1.0);
        match *self {
            Limit::AtLeast(floor) => candidate >= floor - eps(floor),
            Limit::AtMost(ceiling) => candidate <= ceiling + eps(ceiling),
            Limit::Within { value, slack } => (candidate - value).abs() <= slack + eps(value),
        }
    }
}

/// One line of the gate's table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Policy name (`run` for the status row).
    pub policy: String,
    /// Metric name.
    pub metric: String,
    /// Baseline value, when known.
    pub baseline: Option<f64>,
    /// Candidate value, when present.
    pub candidate: Option<f64>,
    /// The limit, when one could be set.
    pub limit: Option<Limit>,
    /// For a figure measured over blocks: its ~90 % interval, ± percent of the median.
    pub spread_pct: Option<f64>,
    /// The judgement.
    pub verdict: Verdict,
}

/// What the whole judgement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every row passed.
    Pass,
    /// At least one row failed.
    Regression,
    /// No row failed, but at least one was too noisy to judge.
    TooNoisy,
}

/// The whole judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Every row, status first, then the policies in order.
    pub rows: Vec<Row>,
}

impl Report {
    /// True when every judged row passed.
    #[cfg(test)]
    pub fn passed(&self) -> bool {
        self.judged().all(|r| r.verdict.passed())
    }

    /// The rows that are part of the verdict (all but the report-only ones).
    pub fn judged(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict.judged())
    }

    /// Judged rows that did not pass.
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.judged().filter(|r| !r.verdict.passed())
    }

    /// The whole judgement: a failure wins over noise, noise over a pass.
    pub fn outcome(&self) -> Outcome {
        if self.rows.iter().any(|r| r.verdict.failed()) {
            Outcome::Regression
        } else if self.failures().next().is_some() {
            Outcome::TooNoisy
        } else {
            Outcome::Pass
        }
    }
}

/// Judges `candidate` (the candidate JSON) and its `blocks` against every policy.
pub fn judge(policies: &[LoadedPolicy], candidate: &Value, blocks: &[BlockFigures]) -> Report {
    let mut rows = vec![status_row(candidate)];
    for loaded in policies {
        for rule in &loaded.policy.rules {
            let baseline = loaded.baseline.metrics.get(&rule.metric).copied();
            let row = match (rule.max_spread_pct, Ratio::from_key(&rule.metric)) {
                (Some(max_pct), Some(ratio)) => {
                    let spread = Spread::of(ratio, blocks);
                    let mut row = judge_rule(
                        &loaded.policy.name,
                        rule,
                        baseline,
                        spread.as_ref().map(|s| s.median),
                    );
                    row.spread_pct = spread.map(|s| s.relative_half_width * 100.0);
                    if let Some(spread_pct) = row.spread_pct.filter(|p| *p > max_pct) {
                        if !matches!(row.verdict, Verdict::MissingInBaseline) {
                            row.verdict = Verdict::TooNoisy {
                                spread_pct,
                                max_pct,
                            };
                        }
                    }
                    row
                }
                _ => judge_rule(
                    &loaded.policy.name,
                    rule,
                    baseline,
                    metric(candidate, &rule.metric),
                ),
            };
            rows.push(row);
        }
    }
    rows.extend(report_only_rows(policies, blocks));
    Report { rows }
}

/// A row for each router ÷ raw echo ratio that the blocks have and no rule names.
fn report_only_rows(policies: &[LoadedPolicy], blocks: &[BlockFigures]) -> Vec<Row> {
    let named = |ratio: Ratio| {
        policies
            .iter()
            .flat_map(|p| &p.policy.rules)
            .any(|rule| rule.metric == ratio.key())
    };
    Ratio::TO_RAW_ECHO
        .into_iter()
        .filter(|ratio| !named(*ratio))
        .filter_map(|ratio| {
            let spread = Spread::of(ratio, blocks)?;
            Some(Row {
                policy: "info".to_owned(),
                metric: ratio.key().to_owned(),
                baseline: None,
                candidate: Some(spread.median),
                limit: None,
                spread_pct: Some(spread.relative_half_width * 100.0),
                verdict: Verdict::ReportOnly,
            })
        })
        .collect()
}

/// Judges one rule.
pub fn judge_rule(policy: &str, rule: &Rule, baseline: Option<f64>, candidate: Option<f64>) -> Row {
    let baseline = baseline.filter(|b| b.is_finite());
    let limit = baseline.map(|b| Limit::for_rule(rule, b));
    let verdict = match (baseline, candidate) {
        (None, _) => Verdict::MissingInBaseline,
        (Some(b), _) if rule.direction == Direction::HigherIsBetter && b <= 0.0 => {
            Verdict::UnusableBaseline
        }
        (Some(_), None) => Verdict::MissingInCandidate,
        (Some(_), Some(c)) => match limit {
            Some(limit) if limit.admits(c) => Verdict::Pass,
            _ => Verdict::Regression,
        },
    };
    Row {
        policy: policy.to_owned(),
        metric: rule.metric.clone(),
        baseline,
        candidate,
        limit,
        spread_pct: None,
        verdict,
    }
}

/// The row for the candidate's own `status`.
fn status_row(candidate: &Value) -> Row {
    let status = candidate.get("status").and_then(Value::as_str);
    let verdict = match status {
        Some("ok") => Verdict::Pass,
        Some(other) => Verdict::RunFailed(
            candidate
                .get("reason")
                .and_then(Value::as_str)
                .map_or_else(|| format!("status `{other}`"), str::to_owned),
        ),
        None => Verdict::RunFailed("the candidate has no `status`".to_owned()),
    };
    Row {
        policy: "run".to_owned(),
        metric: "status".to_owned(),
        baseline: None,
        candidate: None,
        limit: None,
        spread_pct: None,
        verdict,
    }
}

/// Reads a numeric metric by name or dotted path; `None` unless it is a finite number.
pub fn metric(candidate: &Value, name: &str) -> Option<f64> {
    let direct = candidate.get(name);
    let value = match direct {
        Some(v) => v,
        None => name
            .split('.')
            .try_fold(candidate, |node, key| node.get(key))?,
    };
    value.as_f64().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests;
