//! What a usable nats-server is ([`Binary`], labelled with its [`Source`]) and how one is
//! recognised on disk: an executable file, checked for its version.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::version::{version_of, Version, MIN_VERSION};

/// Where a nats-server binary came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `NATS_SERVER` environment variable.
    Env,
    /// Found on `PATH`.
    Path,
    /// The project-local copy under `target/nats-server/`.
    Local,
    /// Installed just now into `target/nats-server/`.
    Installed,
}

/// A usable nats-server (version at least [`MIN_VERSION`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// Absolute path of the executable.
    pub path: PathBuf,
    /// Its version.
    pub version: Version,
    /// How it was found.
    pub source: Source,
}

/// True for a regular file with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds an executable named `nats-server` below `dir` (at most four levels deep).
pub fn find_binary_in(dir: &Path) -> Option<PathBuf> {
    fn walk(dir: &Path, depth: usize) -> Option<PathBuf> {
        let candidate = dir.join("nats-server");
        if is_executable(&candidate) {
            return Some(candidate);
        }
        if depth == 0 {
            return None;
        }
        let entries = std::fs::read_dir(dir).ok()?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        dirs.iter().find_map(|d| walk(d, depth - 1))
    }
    walk(dir, 4)
}

impl Binary {
    /// Checks a binary found at `path` and labels it with `source`.
    pub fn check(path: PathBuf, source: Source) -> anyhow::Result<Self> {
        let version = version_of(&path)?;
        if version < MIN_VERSION {
            bail!(
                "{} is nats-server {version}, older than {MIN_VERSION}",
                path.display()
            );
        }
        Ok(Self {
            path,
            version,
            source,
        })
    }
}
