//! `cargo xtask perf-gate`: judges a bench candidate against the CP1 floor and this
//! router's own baseline.
//!
//! Exit status: 0 every rule of every policy passed; 1 a regression (or a failed run, or a
//! missing metric); 2 the gate could not judge (no candidate, or a candidate, policy or
//! baseline file that cannot be read).

mod candidate;
mod evaluate;
mod policy;
mod table;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::paths;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Candidate JSON written by router-bench (`--out`).
    #[arg(long, conflicts_with = "latest")]
    pub candidate: Option<PathBuf>,
    /// Judge the newest `_artifacts/perf_*.json`.
    #[arg(long)]
    pub latest: bool,
    /// Folder holding policy_cp1.json, policy.json and the baselines they name.
    #[arg(long)]
    pub baseline_dir: Option<PathBuf>,
}

/// The gate's outcome, mapped to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateExit {
    /// Every rule passed.
    Pass = 0,
    /// At least one rule failed.
    Regression = 1,
    /// Nothing could be judged.
    CannotJudge = 2,
}

/// Runs the command. Without `--candidate` or `--latest` it first runs `cargo xtask bench`
/// with its defaults and judges that candidate.
pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if args.candidate.is_none() && !args.latest {
        println!("perf-gate: no candidate given; running the benchmark first");
        match candidate::run_bench_for_candidate() {
            Ok(path) => args.candidate = Some(path),
            Err(err) => {
                eprintln!("perf-gate: {err:#}");
                return Ok(ExitCode::from(GateExit::CannotJudge as u8));
            }
        }
    }
    let exit = gate(&args, &paths::artifacts_dir());
    Ok(ExitCode::from(exit as u8))
}

/// The whole gate, with `_artifacts/` passed in so tests can point elsewhere.
fn gate(args: &Args, artifacts: &Path) -> GateExit {
    let baseline_dir = args
        .baseline_dir
        .clone()
        .unwrap_or_else(|| paths::project_root().join("perf"));
    let policies = match policy::load_all(&baseline_dir) {
        Ok(policies) => policies,
        Err(err) => {
            eprintln!("perf-gate: {err:#}");
            return GateExit::CannotJudge;
        }
    };
    let path = match locate(args, artifacts) {
        Ok(path) => path,
        Err(err) => {
            eprintln!("perf-gate: {err:#}");
            return GateExit::CannotJudge;
        }
    };
    let value = match candidate::read(&path) {
        Ok(value) => value,
        Err(err) => {
            eprintln!("perf-gate: {err:#}");
            return GateExit::CannotJudge;
        }
    };

    println!("perf-gate: candidate {}", path.display());
    for loaded in &policies {
        if loaded.baseline.provisional {
            println!(
                "perf-gate: note: baseline `{}` ({}) is provisional: {}",
                loaded.baseline.name,
                loaded.path.display(),
                loaded.baseline.note.as_deref().unwrap_or("re-measure it")
            );
        }
    }
    let report = evaluate::judge(&policies, &value);
    print!("{}", table::render(&report));
    if report.passed() {
        println!("perf-gate: PASS ({} checks)", report.rows.len());
        GateExit::Pass
    } else {
        let failed: Vec<String> = report
            .failures()
            .map(|r| format!("{}/{}", r.policy, r.metric))
            .collect();
        println!(
            "perf-gate: FAIL: {} of {} checks failed: {}. See perf/README.md for what each \
             metric means and how a baseline is updated.",
            failed.len(),
            report.rows.len(),
            failed.join(", ")
        );
        GateExit::Regression
    }
}

fn locate(args: &Args, artifacts: &Path) -> anyhow::Result<PathBuf> {
    match (&args.candidate, args.latest) {
        (Some(path), _) => Ok(path.clone()),
        (None, true) => candidate::latest(artifacts),
        (None, false) => anyhow::bail!(
            "no candidate: pass --candidate FILE or --latest (or run without either to bench first)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn perf_dir() -> PathBuf {
        paths::project_root().join("perf")
    }

    fn args(candidate: Option<PathBuf>, latest: bool) -> Args {
        Args {
            candidate,
            latest,
            baseline_dir: Some(perf_dir()),
        }
    }

    /// A candidate built from the shipped baselines: the own baseline's figures, which
    /// are also inside the CP1 floor.
    fn candidate_at_baseline() -> Value {
        let own = policy::load(&perf_dir().join("policy.json")).expect("shipped own policy");
        let mut value = json!({"status": "ok", "exit_status": 0, "rps": 20000.0});
        for (metric, v) in &own.baseline.metrics {
            value[metric.as_str()] = json!(v);
        }
        value
    }

    fn write(dir: &Path, name: &str, value: &Value) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, value.to_string()).expect("write candidate");
        path
    }

    #[test]
    fn shipped_policies_load_and_cover_the_cp1_metrics() {
        let policies = policy::load_all(&perf_dir()).expect("shipped policies");
        let cp1 = &policies[0];
        for metric in [
            "rps",
            "latency_p95_ms",
            "latency_p99_ms",
            "errors_total",
            "backpressure_active_total",
            "mem_mb",
        ] {
            assert!(
                cp1.policy.rules.iter().any(|r| r.metric == metric),
                "cp1 gates {metric}"
            );
        }
        assert!(policies[1]
            .policy
            .rules
            .iter()
            .any(|r| r.metric == "rps_ratio_to_echo"));
    }

    #[test]
    fn shipped_baselines_pass_themselves() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(dir.path(), "c.json", &candidate_at_baseline());
        assert_eq!(gate(&args(Some(path), false), dir.path()), GateExit::Pass);
    }

    #[test]
    fn shipped_policy_fails_a_25_percent_slower_router() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut value = candidate_at_baseline();
        let ratio = value["rps_ratio_to_echo"]
            .as_f64()
            .expect("ratio in baseline");
        value["rps_ratio_to_echo"] = json!(ratio * 0.75);
        let path = write(dir.path(), "c.json", &value);
        assert_eq!(
            gate(&args(Some(path), false), dir.path()),
            GateExit::Regression
        );
    }

    #[test]
    fn shipped_policy_tolerates_ordinary_noise() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut value = candidate_at_baseline();
        let ratio = value["rps_ratio_to_echo"]
            .as_f64()
            .expect("ratio in baseline");
        value["rps_ratio_to_echo"] = json!(ratio * 0.88);
        let path = write(dir.path(), "c.json", &value);
        assert_eq!(gate(&args(Some(path), false), dir.path()), GateExit::Pass);
    }

    #[test]
    fn failed_run_is_a_regression() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut value = candidate_at_baseline();
        value["status"] = json!("failed");
        value["reason"] = json!("cannot connect");
        let path = write(dir.path(), "c.json", &value);
        assert_eq!(
            gate(&args(Some(path), false), dir.path()),
            GateExit::Regression
        );
    }

    #[test]
    fn no_candidate_exits_2() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Neither --candidate nor --latest reaching the gate itself (run() benches first).
        assert_eq!(gate(&args(None, false), dir.path()), GateExit::CannotJudge);
        // --latest with nothing in _artifacts/.
        assert_eq!(gate(&args(None, true), dir.path()), GateExit::CannotJudge);
        // A candidate that does not exist or is not JSON.
        let absent = dir.path().join("absent.json");
        assert_eq!(
            gate(&args(Some(absent), false), dir.path()),
            GateExit::CannotJudge
        );
        let garbage = dir.path().join("garbage.json");
        std::fs::write(&garbage, "not json").expect("write");
        assert_eq!(
            gate(&args(Some(garbage), false), dir.path()),
            GateExit::CannotJudge
        );
    }

    #[test]
    fn latest_finds_the_bench_output() {
        let dir = tempfile::tempdir().expect("temp dir");
        write(dir.path(), "perf_1.json", &candidate_at_baseline());
        assert_eq!(gate(&args(None, true), dir.path()), GateExit::Pass);
    }

    #[test]
    fn unreadable_policies_exit_2() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(dir.path(), "c.json", &candidate_at_baseline());
        let mut a = args(Some(path), false);
        a.baseline_dir = Some(dir.path().to_path_buf());
        assert_eq!(gate(&a, dir.path()), GateExit::CannotJudge);
    }
}
