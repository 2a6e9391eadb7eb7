//! Finding and reading the candidate to judge: a named file, or the newest bench output
//! under `_artifacts/`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::report::Candidate;

/// File name pattern of bench outputs under `_artifacts/`: `perf_*.json`.
const PREFIX: &str = "perf_";
const SUFFIX: &str = ".json";

/// The candidate named by `file`, else (with `latest`) the newest one in `artifacts`, read;
/// with its path. An error says what to run or pass instead.
pub fn pick(
    file: Option<&Path>,
    latest: bool,
    artifacts: &Path,
) -> anyhow::Result<(PathBuf, Candidate)> {
    let path = match (file, latest) {
        (Some(path), _) => path.to_path_buf(),
        (None, true) => self::latest(artifacts)?,
        (None, false) => anyhow::bail!(
            "no candidate: pass --candidate FILE or --latest (or neither, to bench first)"
        ),
    };
    let candidate = Candidate::read(&path)?;
    Ok((path, candidate))
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
    fn without_a_file_or_latest_there_is_nothing_to_pick() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = pick(None, false, dir.path()).expect_err("nothing asked for");
        assert!(format!("{err:#}").contains("--candidate FILE or --latest"));
    }
}
