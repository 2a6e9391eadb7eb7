//! The artifact list of `docs/CP1_FREEZE.md`: the rows of the table under `## Artifacts`,
//! each naming a file (checked to exist) or a `cargo xtask` command (checked to parse). Code
//! spans and commands are read as `check-docs` reads them ([`docs_check::markdown`]).

use std::path::Path;

use anyhow::{bail, Context};

use docs_check::markdown;

/// The freeze manifest, relative to the project root.
pub const MANIFEST: &str = "docs/CP1_FREEZE.md";
/// The heading of the artifact table.
const HEADING: &str = "## Artifacts";

/// Artifacts the freeze cannot do without: a manifest that stops listing one fails the check.
pub const REQUIRED: &[&str] = &[
    "cargo xtask nats-start",
    "cargo xtask nats-status",
    "cargo xtask nats-stop",
    "cargo xtask heavy",
    "cargo xtask bench",
    "cargo xtask perf-gate",
    "cargo xtask certs",
    "cargo xtask validate-tls",
    "cargo xtask freeze-check",
    "perf/baseline_cp1.json",
    "perf/policy_cp1.json",
    "perf/README.md",
    "config/nats_tls.conf",
    "config/router.toml",
    ".gitlab-ci.perf.example.yml",
    "docs/OPERATIONS.md",
    "docs/RUNBOOK.md",
    "docs/TROUBLESHOOTING.md",
    "docs/CP1_FREEZE.md",
];

/// One listed artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    /// A file or folder, relative to the project root.
    Path(String),
    /// The arguments after `cargo xtask`.
    Command(Vec<String>),
}

impl Artifact {
    /// The text as the manifest writes it.
    pub fn label(&self) -> String {
        match self {
            Artifact::Path(path) => path.clone(),
            Artifact::Command(args) => format!("cargo xtask {}", args.join(" ")),
        }
    }
}

/// Reads the manifest under `root` and returns its artifacts, in table order.
pub fn load(root: &Path) -> anyhow::Result<Vec<Artifact>> {
    let path = root.join(MANIFEST);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "could not read the freeze manifest {}; restore it from git",
            path.display()
        )
    })?;
    parse(&text)
}

/// The artifacts of the first code span of each row of the `## Artifacts` table.
pub fn parse(text: &str) -> anyhow::Result<Vec<Artifact>> {
    let mut in_section = false;
    let mut artifacts = Vec::new();
    for line in text.lines() {
        if line.starts_with("## ") {
            in_section = line.trim() == HEADING;
            continue;
        }
        if !in_section || !line.trim_start().starts_with('|') {
            continue;
        }
        let Some(first_cell) = line.trim().trim_start_matches('|').split('|').next() else {
            continue;
        };
        let Some((code, _)) = markdown::code_spans(first_cell).into_iter().next() else {
            continue; // header and separator rows
        };
        let command = if code.starts_with("cargo xtask") {
            markdown::xtask_commands(&code).into_iter().next()
        } else {
            None
        };
        artifacts.push(match command {
            Some(args) => Artifact::Command(args),
            None => Artifact::Path(code),
        });
    }
    if artifacts.is_empty() {
        bail!("{MANIFEST} has no artifact rows under `{HEADING}`; each row starts with `path` or `cargo xtask …`");
    }
    Ok(artifacts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_paths_and_commands_from_the_artifacts_table_only() -> anyhow::Result<()> {
        let text = "# Title\n\n| x | y |\n|---|---|\n| `not/this.md` | y |\n\n## Artifacts\n\n\
            | artifact | seed |\n|---|---|\n| `perf/baseline_cp1.json` | same |\n\
            | `cargo xtask heavy` | heavy_with_nats.sh |\n| no code | - |\n\
            | `cargo xtask nats-start [--tls]` # a note | x |\n\n## Next\n| `nor/this` | |\n";
        assert_eq!(
            parse(text)?,
            vec![
                Artifact::Path("perf/baseline_cp1.json".into()),
                Artifact::Command(vec!["heavy".into()]),
                Artifact::Command(vec!["nats-start".into(), "--tls".into()]),
            ]
        );
        assert!(parse("## Artifacts\n\nnothing\n").is_err());
        Ok(())
    }

    #[test]
    fn the_shipped_manifest_lists_every_required_artifact() -> anyhow::Result<()> {
        let listed: Vec<String> = load(&crate::paths::project_root())?
            .iter()
            .map(Artifact::label)
            .collect();
        for required in REQUIRED {
            assert!(
                listed.iter().any(|l| l == required),
                "{required} not in {listed:?}"
            );
        }
        Ok(())
    }
}
