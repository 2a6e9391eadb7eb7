//! `validate-tls.log`: one line per event.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A line-per-event log file.
pub struct RunLog {
    file: std::fs::File,
    path: PathBuf,
}

impl RunLog {
    /// Creates (or truncates) the log at `path`.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("could not create {}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends one line (a failure to log is reported once on stderr, not fatal).
    pub fn line(&mut self, text: &str) {
        let now = time::OffsetDateTime::now_utc();
        let stamp = format!(
            "{:02}:{:02}:{:02}.{:03}",
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond()
        );
        if let Err(err) = writeln!(self.file, "{stamp} {text}") {
            eprintln!(
                "validate-tls: could not write {}: {err}",
                self.path.display()
            );
        }
    }
}
