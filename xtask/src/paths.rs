//! Where things live: the project root and the git-ignored `_artifacts/` folder.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Environment variable that moves `_artifacts/` (tests use it to stay out of the
/// developer's folder). The `--artifacts-dir` option takes precedence.
pub const ARTIFACTS_ENV: &str = "BEAMLINE_ARTIFACTS";

/// The workspace root (the parent of the `xtask` crate).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` when set (made absolute), else `target/`
/// under the project root. Built binaries are under `<target>/debug` and `<target>/release`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(|dir| absolute(Path::new(&dir)))
        .unwrap_or_else(|| project_root().join("target"))
}

/// `_artifacts/` under the project root, or `$BEAMLINE_ARTIFACTS` when set: logs, pid
/// files, certificates, bench output.
pub fn artifacts_dir() -> PathBuf {
    match std::env::var_os(ARTIFACTS_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => absolute(Path::new(&dir)),
        None => project_root().join("_artifacts"),
    }
}

/// The artifacts directory chosen by an `--artifacts-dir` option (which clap also fills
/// from `$BEAMLINE_ARTIFACTS`), else [`artifacts_dir`]; created if missing, always absolute.
pub fn resolve_artifacts(option: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = option.map(absolute).unwrap_or_else(artifacts_dir);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("could not create the artifacts directory {}", dir.display()))?;
    Ok(dir)
}

/// `perf/` under the project root: the gate's policies and baselines.
pub fn perf_dir() -> PathBuf {
    project_root().join("perf")
}

/// `<artifacts>/certs`: where `cargo xtask certs` writes by default.
pub fn certs_dir(artifacts: &Path) -> PathBuf {
    artifacts.join("certs")
}

/// `path` made absolute against the current directory (unchanged if that fails).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `path` relative to the current directory when it lies below it, for shorter output.
pub fn display(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// The `--artifacts-dir` option shared by the commands that write into `_artifacts/`.
#[derive(Debug, Clone, clap::Args)]
pub struct ArtifactsArg {
    /// Use this folder instead of `_artifacts/` (also `$BEAMLINE_ARTIFACTS`).
    #[arg(long, env = ARTIFACTS_ENV, value_name = "DIR")]
    pub artifacts_dir: Option<PathBuf>,
}

impl ArtifactsArg {
    /// The resolved, existing, absolute artifacts directory.
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        resolve_artifacts(self.artifacts_dir.as_deref())
    }
}

/// The current UTC time as `2026-11-27T00:30:00Z`.
pub fn utc_stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// [`utc_stamp`] without separators, for file names: `20261127T003000Z`.
pub fn file_stamp() -> String {
    utc_stamp().replace([':', '-'], "")
}
