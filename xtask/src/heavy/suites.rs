//! The integration suites of `router-bin`: one per file `crates/router-bin/tests/<name>.rs`,
//! found on disk so that a new suite joins `heavy` without a code change.

use std::path::Path;

use anyhow::{bail, Context};

/// Folder of the suites, relative to the project root.
pub const TESTS_DIR: &str = "crates/router-bin/tests";

/// The suite names (file stems of `<root>/crates/router-bin/tests/*.rs`), sorted.
pub fn discover(root: &Path) -> anyhow::Result<Vec<String>> {
    let dir = root.join(TESTS_DIR);
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "could not list the suites in {}; run from a checkout of the project",
            dir.display()
        )
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("could not list {}", dir.display()))?
            .path();
        if !path.is_file() || path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The suites to run: all of `known` when `wanted` is empty, else `wanted` in its order.
/// A name that is not in `known` is refused, unless `allow_unknown` (which lets `cargo test`
/// fail on it: the way the cleanup test makes a suite fail on purpose).
pub fn select(
    known: &[String],
    wanted: &[String],
    allow_unknown: bool,
) -> anyhow::Result<Vec<String>> {
    if wanted.is_empty() {
        return Ok(known.to_vec());
    }
    let mut chosen = Vec::with_capacity(wanted.len());
    for name in wanted {
        if !allow_unknown && !known.contains(name) {
            bail!(
                "no suite named {name:?}; suites are the files in {TESTS_DIR}/: {}",
                known.join(", ")
            );
        }
        if !chosen.contains(name) {
            chosen.push(name.clone());
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn finds_the_decide_and_lifecycle_suites() -> anyhow::Result<()> {
        let found = discover(&crate::paths::project_root())?;
        assert!(found.contains(&"decide".to_owned()), "{found:?}");
        assert!(found.contains(&"lifecycle".to_owned()), "{found:?}");
        assert!(
            !found.iter().any(|n| n == "support" || n == "mod"),
            "{found:?}"
        );
        Ok(())
    }

    #[test]
    fn a_new_file_is_a_new_suite() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let dir = root.path().join(TESTS_DIR);
        std::fs::create_dir_all(dir.join("support"))?;
        for file in ["b.rs", "a.rs", "notes.txt", "support/mod.rs"] {
            std::fs::write(dir.join(file), "")?;
        }
        assert_eq!(discover(root.path())?, names(&["a", "b"]));
        Ok(())
    }

    #[test]
    fn selection_keeps_order_and_refuses_unknown_names() {
        let known = names(&["decide", "lifecycle"]);
        assert_eq!(select(&known, &[], false).ok(), Some(known.clone()));
        assert_eq!(
            select(&known, &names(&["lifecycle", "decide", "lifecycle"]), false).ok(),
            Some(names(&["lifecycle", "decide"]))
        );
        let err = select(&known, &names(&["nope"]), false)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("decide, lifecycle")));
        assert_eq!(
            select(&known, &names(&["nope"]), true).ok(),
            Some(names(&["nope"]))
        );
    }
}
