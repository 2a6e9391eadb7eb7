//! The policy and baseline file formats, and loading them from the baseline folder.
//!
//! A policy names its baseline file and lists rules; each rule names a candidate metric, the
//! direction in which it may move, and how far (relative and/or absolute) it may move the
//! wrong way. See `perf/README.md` for the full description.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// Policy files the gate checks, in order: the frozen CP1 floor, then this router's own.
pub const POLICY_FILES: [&str; 2] = ["policy_cp1.json", "policy.json"];

/// Which way a metric may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Throughput-like: the candidate must not fall below `baseline - slack`.
    HigherIsBetter,
    /// Latency/memory-like: the candidate must not rise above `baseline + slack`.
    LowerIsBetter,
    /// Counters such as errors: the candidate must be within `slack` of the baseline.
    MustEqual,
}

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Candidate metric name (a top-level key, or a dotted path such as `phases.echo.rps`).
    pub metric: String,
    /// Which way the metric may move.
    pub direction: Direction,
    /// Allowed move the wrong way, in percent of the baseline.
    #[serde(default)]
    pub tolerance_pct: f64,
    /// Allowed move the wrong way, in the metric's own unit. The slack is the larger of the
    /// two tolerances, so an absolute tolerance also covers a baseline of 0.
    #[serde(default)]
    pub tolerance_abs: f64,
    /// For a ratio measured over blocks: the widest ~90 % confidence interval of its median,
    /// ± this percent of the median, at which the rule can judge. A wider one makes the row
    /// "too noisy to judge" instead of a pass or a failure.
    #[serde(default)]
    pub max_spread_pct: Option<f64>,
    /// Why the rule exists (shown nowhere, for the reader of the file).
    #[serde(default)]
    pub why: Option<String>,
}

impl Rule {
    /// How far the metric may move the wrong way from `baseline`.
    pub fn slack(&self, baseline: f64) -> f64 {
        (baseline.abs() * self.tolerance_pct / 100.0).max(self.tolerance_abs)
    }
}

/// A policy file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Policy {
    /// Short name shown in the gate's table (`cp1`, `own`).
    pub name: String,
    /// The baseline file, relative to the policy file's folder.
    pub baseline: String,
    /// What the policy is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The rules; all must pass.
    pub rules: Vec<Rule>,
}

/// A baseline file: the reference figures.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Baseline {
    /// Short name.
    pub name: String,
    /// True while the figures are estimates waiting to be measured.
    #[serde(default)]
    pub provisional: bool,
    /// Where the figures come from.
    #[serde(default)]
    pub note: Option<String>,
    /// Metric name to reference value.
    pub metrics: BTreeMap<String, f64>,
}

/// A policy with its baseline, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPolicy {
    /// The policy file.
    pub policy: Policy,
    /// Its baseline file.
    pub baseline: Baseline,
    /// Where the policy was read from (for messages).
    pub path: PathBuf,
}

impl Policy {
    /// Checks the rules are usable; the error names the rule.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.rules.is_empty() {
            bail!("policy `{}` has no rules", self.name);
        }
        for rule in &self.rules {
            if rule.metric.trim().is_empty() {
                bail!("policy `{}` has a rule without a metric", self.name);
            }
            for (what, value) in [
                ("tolerance_pct", rule.tolerance_pct),
                ("tolerance_abs", rule.tolerance_abs),
                ("max_spread_pct", rule.max_spread_pct.unwrap_or(0.0)),
            ] {
                if !value.is_finite() || value < 0.0 {
                    bail!(
                        "policy `{}`, rule `{}`: {what} must be a number >= 0",
                        self.name,
                        rule.metric
                    );
                }
            }
        }
        Ok(())
    }
}

/// Reads every file of [`POLICY_FILES`] in `dir` with its baseline.
pub fn load_all(dir: &Path) -> anyhow::Result<Vec<LoadedPolicy>> {
    POLICY_FILES
        .iter()
        .map(|name| load(&dir.join(name)))
        .collect()
}

/// Reads one policy file and the baseline it names.
pub fn load(path: &Path) -> anyhow::Result<LoadedPolicy> {
    let policy: Policy = read_json(path, "policy")?;
    policy
        .validate()
        .with_context(|| format!("checking {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let baseline_path = dir.join(&policy.baseline);
    let baseline: Baseline = read_json(&baseline_path, "baseline")?;
    Ok(LoadedPolicy {
        policy,
        baseline,
        path: path.to_path_buf(),
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the {what} file {}: is --baseline-dir the folder holding perf/{}?",
            path.display(),
            POLICY_FILES.join(", perf/")
        )
    })?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "parsing the {what} file {} (see perf/README.md)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_is_the_larger_tolerance() {
        let rule = Rule {
            metric: "m".into(),
            direction: Direction::LowerIsBetter,
            tolerance_pct: 10.0,
            tolerance_abs: 2.0,
            max_spread_pct: None,
            why: None,
        };
        assert_eq!(rule.slack(100.0), 10.0);
        assert_eq!(rule.slack(5.0), 2.0);
        assert_eq!(rule.slack(0.0), 2.0);
    }

    #[test]
    fn parses_the_documented_format() {
        let policy: Policy = serde_json::from_str(
            r#"{"name":"x","baseline":"b.json","rules":[
                {"metric":"rps","direction":"higher_is_better","tolerance_pct":10},
                {"metric":"errors_total","direction":"must_equal"},
                {"metric":"mem_mb","direction":"lower_is_better","tolerance_pct":15,"tolerance_abs":8}]}"#,
        )
        .expect("valid policy");
        policy.validate().expect("valid rules");
        assert_eq!(policy.rules[1].tolerance_pct, 0.0);
        assert_eq!(policy.rules[2].direction, Direction::LowerIsBetter);
    }

    #[test]
    fn rejects_bad_rules() {
        let bad_direction = serde_json::from_str::<Policy>(
            r#"{"name":"x","baseline":"b","rules":[{"metric":"m","direction":"up"}]}"#,
        );
        assert!(bad_direction.is_err());
        let typo = serde_json::from_str::<Policy>(
            r#"{"name":"x","baseline":"b","rules":[{"metric":"m","direction":"must_equal","tolerance":5}]}"#,
        );
        assert!(typo.is_err(), "unknown rule fields are refused");
        let negative: Policy = serde_json::from_str(
            r#"{"name":"x","baseline":"b","rules":[{"metric":"m","direction":"must_equal","tolerance_pct":-1}]}"#,
        )
        .expect("parses");
        assert!(negative.validate().is_err());
        let empty: Policy =
            serde_json::from_str(r#"{"name":"x","baseline":"b","rules":[]}"#).expect("parses");
        assert!(empty.validate().is_err());
    }

    #[test]
    fn missing_files_say_where_to_look() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = load_all(dir.path()).expect_err("empty folder");
        assert!(format!("{err:#}").contains("policy_cp1.json"), "{err:#}");
    }
}
