//! Where things live: the project root and the git-ignored `_artifacts/` folder.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of the `xtask` crate).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// `_artifacts/` under the project root: logs, pid files, certificates, bench output.
pub fn artifacts_dir() -> PathBuf {
    project_root().join("_artifacts")
}
