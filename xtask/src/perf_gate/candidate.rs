//! Finding and reading the candidate JSON the gate judges.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;

/// File name pattern of bench outputs under `_artifacts/`: `perf_*.json`.
const PREFIX: &str = "perf_";
const SUFFIX: &str = ".json";

/// Reads and parses a candidate; it must be a JSON object.
pub fn read(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the candidate {}: run `cargo xtask bench` to produce one",
            path.display()
        )
    })?;
    let value: Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "parsing the candidate {}: it is not JSON (was the bench interrupted?)",
            path.display()
        )
    })?;
    if !value.is_object() {
        bail!(
            "the candidate {} is not a JSON object as router-bench writes it",
            path.display()
        );
    }
    Ok(value)
}

/// The newest `perf_*.json` in `dir` (by modification time, then name).
pub fn latest(dir: &Path) -> anyhow::Result<PathBuf> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "listing {} for perf_*.json: run `cargo xtask bench` first",
            dir.display()
        )
    })?;
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .with_context(|| format!("reading the time of {}", entry.path().display()))?;
        let candidate = (modified, entry.path());
        if newest.as_ref().is_none_or(|best| candidate > *best) {
            newest = Some(candidate);
        }
    }
    newest.map(|(_, path)| path).with_context(|| {
        format!(
            "no perf_*.json in {}: run `cargo xtask bench` first, or pass --candidate FILE",
            dir.display()
        )
    })
}

/// Produces a candidate by running `cargo xtask bench` with its defaults.
pub fn run_bench_for_candidate() -> anyhow::Result<PathBuf> {
    crate::bench_cmd::bench(&crate::bench_cmd::Args::defaults())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn touch(path: &Path, age: Duration) {
        std::fs::write(path, "{}").expect("write");
        let file = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        file.set_modified(SystemTime::now() - age)
            .expect("set time");
    }

    #[test]
    fn latest_picks_the_newest_bench_output() {
        let dir = tempfile::tempdir().expect("temp dir");
        touch(&dir.path().join("perf_a.json"), Duration::from_secs(100));
        touch(&dir.path().join("perf_b.json"), Duration::from_secs(10));
        touch(&dir.path().join("other.json"), Duration::ZERO);
        touch(&dir.path().join("perf_c.md"), Duration::ZERO);
        assert_eq!(
            latest(dir.path()).expect("found"),
            dir.path().join("perf_b.json")
        );
    }

    #[test]
    fn latest_in_an_empty_folder_says_what_to_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = latest(dir.path()).expect_err("nothing there");
        assert!(format!("{err:#}").contains("cargo xtask bench"));
        let err = latest(&dir.path().join("missing")).expect_err("no folder");
        assert!(format!("{err:#}").contains("cargo xtask bench"));
    }

    #[test]
    fn unreadable_candidates() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{ not json").expect("write");
        assert!(read(&bad).is_err());
        std::fs::write(&bad, "[1, 2]").expect("write");
        assert!(read(&bad).is_err());
        assert!(read(&dir.path().join("absent.json")).is_err());
        std::fs::write(&bad, r#"{"status":"ok"}"#).expect("write");
        assert!(read(&bad).is_ok());
    }
}
