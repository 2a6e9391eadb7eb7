//! Reading and writing a candidate: the JSON file, and its Markdown summary beside it.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::candidate::{Candidate, SCHEMA};

impl Candidate {
    /// Reads a candidate written by [`Candidate::write`].
    pub fn read(path: &Path) -> anyhow::Result<Candidate> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the candidate {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a {SCHEMA} candidate; run `cargo xtask bench` to make a new one",
                path.display()
            )
        })
    }

    /// Writes the JSON to `path` and the Markdown to the same path with `.md`; returns the
    /// Markdown path.
    pub fn write(&self, path: &Path) -> anyhow::Result<PathBuf> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the output folder {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self).context("encoding the candidate JSON")?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing the candidate to {}", path.display()))?;
        let md_path = markdown_path(path);
        std::fs::write(&md_path, self.to_markdown())
            .with_context(|| format!("writing the summary to {}", md_path.display()))?;
        Ok(md_path)
    }
}

/// `FILE.json` → `FILE.md` (any other name gets `.md` appended).
pub fn markdown_path(json_path: &Path) -> PathBuf {
    if json_path.extension().is_some_and(|e| e == "json") {
        json_path.with_extension("md")
    } else {
        let mut name = json_path.as_os_str().to_owned();
        name.push(".md");
        PathBuf::from(name)
    }
}
