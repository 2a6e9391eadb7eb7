//! The CP1 invariants that can be read from the repository's files without running anything.

use std::path::Path;

use serde_json::Value;

use super::report::Check;

/// The figures frozen by CP1, as `perf/baseline_cp1.json` must keep them.
const FROZEN: &[(&str, f64)] = &[
    ("rps", 62.0),
    ("latency_p95_ms", 99.0),
    ("latency_p99_ms", 200.0),
    ("mem_mb", 94.0),
    ("errors_total", 0.0),
    ("backpressure_active_total", 0.0),
];

/// The frozen rules of `perf/policy_cp1.json`: metric and tolerance in percent (`None`:
/// must equal the baseline).
const FROZEN_RULES: &[(&str, Option<f64>)] = &[
    ("rps", Some(10.0)),
    ("latency_p95_ms", Some(15.0)),
    ("latency_p99_ms", Some(20.0)),
    ("mem_mb", Some(15.0)),
    ("errors_total", None),
    ("backpressure_active_total", None),
];

/// Every invariant check, in order.
pub fn check_all(root: &Path) -> Vec<Check> {
    vec![
        client_certificates_required(root),
        frozen_baseline(root),
        frozen_policy(root),
        gate_job_blocking(root),
    ]
}

fn read(root: &Path, file: &str) -> Result<String, String> {
    std::fs::read_to_string(root.join(file)).map_err(|e| format!("cannot read {file}: {e}"))
}

fn read_json(root: &Path, file: &str) -> Result<Value, String> {
    let text = read(root, file)?;
    serde_json::from_str(&text).map_err(|e| format!("{file} is not JSON: {e}"))
}

fn client_certificates_required(root: &Path) -> Check {
    const NAME: &str = "invariant: client certificates required";
    const FILE: &str = "config/nats_tls.conf";
    match read(root, FILE) {
        Ok(text) if text.lines().any(|l| l.trim() == "verify_and_map: true") => Check::ok(
            NAME,
            format!("{FILE} has `verify_and_map: true` (a client certificate is required and is the user)"),
        ),
        Ok(_) => Check::failed(
            NAME,
            format!("{FILE} lost `verify_and_map: true`: restore it"),
        ),
        Err(e) => Check::failed(NAME, e),
    }
}

fn frozen_baseline(root: &Path) -> Check {
    const NAME: &str = "invariant: CP1 baseline figures";
    const FILE: &str = "perf/baseline_cp1.json";
    let value = match read_json(root, FILE) {
        Ok(value) => value,
        Err(e) => return Check::failed(NAME, e),
    };
    let changed: Vec<String> = FROZEN
        .iter()
        .filter(|(metric, frozen)| value["metrics"][metric].as_f64() != Some(*frozen))
        .map(|(metric, frozen)| format!("{metric} (frozen {frozen})"))
        .collect();
    if changed.is_empty() {
        Check::ok(
            NAME,
            format!("{FILE}: 62 rps, p95 99 ms, p99 200 ms, 94 MB, 0 errors, 0 backpressure"),
        )
    } else {
        Check::failed(
            NAME,
            format!(
                "{FILE} changed: {}; a baseline change needs CP2",
                changed.join(", ")
            ),
        )
    }
}

fn frozen_policy(root: &Path) -> Check {
    const NAME: &str = "invariant: CP1 gate policy";
    const FILE: &str = "perf/policy_cp1.json";
    let value = match read_json(root, FILE) {
        Ok(value) => value,
        Err(e) => return Check::failed(NAME, e),
    };
    let rules = value["rules"].as_array().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    if value["baseline"] != "baseline_cp1.json" {
        problems.push("baseline is not baseline_cp1.json".to_owned());
    }
    for (metric, tolerance) in FROZEN_RULES {
        let rule = rules.iter().find(|r| r["metric"] == *metric);
        match (rule, tolerance) {
            (None, _) => problems.push(format!("no rule for {metric}")),
            (Some(rule), Some(pct)) if rule["tolerance_pct"].as_f64() != Some(*pct) => {
                problems.push(format!("{metric} tolerance is not {pct} %"))
            }
            (Some(rule), None) if rule["direction"] != "must_equal" => {
                problems.push(format!("{metric} is not must_equal"))
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        Check::ok(NAME, format!("{FILE}: rps -10 %, p95 +15 %, p99 +20 %, memory +15 %, errors = 0, backpressure = 0"))
    } else {
        Check::failed(
            NAME,
            format!("{FILE}: {}; a policy change needs CP2", problems.join(", ")),
        )
    }
}

fn gate_job_blocking(root: &Path) -> Check {
    const NAME: &str = "invariant: perf gate job blocking";
    const FILE: &str = ".gitlab-ci.perf.example.yml";
    // Blocking: failures never allowed; only exit 3 (too noisy to judge) may be a warning.
    let blocking = |text: &str| {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let allowed_codes = lines
            .windows(2)
            .any(|w| w[0] == "allow_failure:" && w[1] == "exit_codes: [3]");
        (lines.contains(&"allow_failure: false") || allowed_codes)
            && !lines.contains(&"allow_failure: true")
    };
    match read(root, FILE) {
        Ok(text) if blocking(&text) && text.contains("cargo xtask perf-gate") => Check::ok(
            NAME,
            format!("{FILE}: blocking (only exit 3, too noisy, is a warning), runs cargo xtask perf-gate"),
        ),
        Ok(_) => Check::failed(
            NAME,
            format!(
                "{FILE} must run `cargo xtask perf-gate` blocking: `allow_failure: false`, or \
                 `allow_failure: exit_codes: [3]`"
            ),
        ),
        Err(e) => Check::failed(NAME, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_keeps_every_invariant() {
        for check in check_all(&crate::paths::project_root()) {
            assert_eq!(check.passed, Some(true), "{check:?}");
        }
    }

    #[test]
    fn a_changed_baseline_or_policy_fails() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir_all(root.path().join("perf"))?;
        std::fs::write(
            root.path().join("perf/baseline_cp1.json"),
            r#"{"metrics": {"rps": 100, "latency_p95_ms": 99, "latency_p99_ms": 200,
                "mem_mb": 94, "errors_total": 0, "backpressure_active_total": 0}}"#,
        )?;
        std::fs::write(
            root.path().join("perf/policy_cp1.json"),
            r#"{"baseline": "baseline_cp1.json", "rules": [{"metric": "rps", "tolerance_pct": 50}]}"#,
        )?;
        let baseline = frozen_baseline(root.path());
        assert_eq!(baseline.passed, Some(false));
        assert!(baseline.detail.contains("rps (frozen 62)"), "{baseline:?}");
        let policy = frozen_policy(root.path());
        assert_eq!(policy.passed, Some(false));
        assert!(
            policy.detail.contains("rps tolerance is not 10 %"),
            "{policy:?}"
        );
        assert!(client_certificates_required(root.path()).passed == Some(false));
        Ok(())
    }
}
