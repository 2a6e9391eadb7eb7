//! The three checks over the documents: commands parse, paths exist, quoted messages are
//! produced by the code.

use std::path::{Path, PathBuf};

use crate::markdown::{code_fragments, link_targets, quoted_messages, repo_paths, xtask_commands};
use crate::{format, literals, Error};

/// Fewer commands or paths than this means the extraction is broken.
pub const MIN_FOUND: usize = 10;
/// Fewer quoted messages than this means the extraction is broken.
pub const MIN_QUOTES: usize = 7;
/// The document whose `message` column is checked against the code.
pub const TROUBLESHOOTING: &str = "docs/TROUBLESHOOTING.md";

/// What one check looked at and what it found wrong.
#[derive(Debug, Default)]
pub struct Findings {
    /// How many items were checked.
    pub checked: usize,
    /// One line per problem.
    pub problems: Vec<String>,
}

/// README.md and docs/*.md under `root`, with their text.
pub fn documents(root: &Path) -> Result<Vec<(PathBuf, String)>, Error> {
    let mut files = vec![root.join("README.md")];
    let docs_dir = root.join("docs");
    let mut docs: Vec<PathBuf> = std::fs::read_dir(&docs_dir)
        .map_err(Error::read(&docs_dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(Error::read(&p))?;
            Ok((p, text))
        })
        .collect()
}

/// Every `cargo xtask` command of the documents passes `parses` (given the arguments after
/// `cargo xtask`; its error is shown with the command).
pub fn check_commands(
    docs: &[(PathBuf, String)],
    parses: impl Fn(&[String]) -> Result<(), String>,
) -> Findings {
    let mut findings = Findings::default();
    for (path, text) in docs {
        for fragment in code_fragments(text) {
            for args in xtask_commands(&fragment) {
                findings.checked += 1;
                if let Err(why) = parses(&args) {
                    findings.problems.push(format!(
                        "{}: `cargo xtask {}`: {why}",
                        path.display(),
                        args.join(" ")
                    ));
                }
            }
        }
    }
    if findings.checked < MIN_FOUND {
        findings.problems.push(format!(
            "only {} commands found: is the extraction broken?",
            findings.checked
        ));
    }
    findings
}

/// Every repository path and relative link of the documents exists.
pub fn check_paths(root: &Path, docs: &[(PathBuf, String)]) -> Findings {
    let mut findings = Findings::default();
    for (path, text) in docs {
        for fragment in code_fragments(text) {
            for candidate in repo_paths(root, &fragment) {
                findings.checked += 1;
                if !root.join(&candidate).exists() {
                    findings
                        .problems
                        .push(format!("{}: `{candidate}` does not exist", path.display()));
                }
            }
        }
        let dir = path.parent().unwrap_or(root);
        for target in link_targets(text) {
            findings.checked += 1;
            if !dir.join(&target).exists() {
                findings.problems.push(format!(
                    "{}: link ({target}) does not exist",
                    path.display()
                ));
            }
        }
    }
    if findings.checked < MIN_FOUND {
        findings.problems.push(format!(
            "only {} paths found: is the extraction broken?",
            findings.checked
        ));
    }
    findings
}

/// Every message quoted in docs/TROUBLESHOOTING.md is produced by a format string.
pub fn check_messages(root: &Path) -> Result<Findings, Error> {
    let path = root.join(TROUBLESHOOTING);
    let text = std::fs::read_to_string(&path).map_err(Error::read(&path))?;
    let quotes = quoted_messages(&text);
    let literals = literals::source_literals(root)?;
    let mut findings = Findings {
        checked: quotes.len(),
        problems: Vec::new(),
    };
    for quote in &quotes {
        if !literals.iter().any(|l| format::produces(l, quote)) {
            findings.problems.push(format!(
                "{TROUBLESHOOTING}: `{quote}` is produced by no format string in the sources \
                 (reworded in the code? copy the new text from a real run)"
            ));
        }
    }
    if quotes.len() < MIN_QUOTES {
        findings.problems.push(format!(
            "only {} quoted messages in {TROUBLESHOOTING}: {quotes:?}",
            quotes.len()
        ));
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project_root;

    fn assert_clean(what: &str, findings: &Findings) {
        assert!(
            findings.problems.is_empty(),
            "{what}, {} checked:\n{}",
            findings.checked,
            findings.problems.join("\n")
        );
    }

    // ---- the shipped documents (their commands are parsed by xtask's own tests) ----

    #[test]
    fn every_documented_path_exists() -> Result<(), Error> {
        let root = project_root();
        let findings = check_paths(&root, &documents(&root)?);
        assert!(findings.checked >= MIN_FOUND, "{findings:?}");
        assert_clean("documented paths that do not exist", &findings);
        Ok(())
    }

    #[test]
    fn every_troubleshooting_message_is_produced_by_the_code() -> Result<(), Error> {
        let findings = check_messages(&project_root())?;
        assert!(findings.checked >= MIN_QUOTES, "{findings:?}");
        assert_clean("messages no format string produces", &findings);
        Ok(())
    }

    // ---- the checks themselves ----

    #[test]
    fn a_command_the_parser_refuses_is_a_problem() -> Result<(), Error> {
        let docs = documents(&project_root())?;
        let everything = check_commands(&docs, |_| Ok(()));
        assert!(everything.checked >= MIN_FOUND, "{everything:?}");
        assert_clean("commands refused by a parser that accepts all", &everything);
        let no_heavy = check_commands(&docs, |args| match args.first() {
            Some(first) if first == "heavy" => Err("error: no heavy".to_owned()),
            _ => Ok(()),
        });
        assert!(
            no_heavy
                .problems
                .iter()
                .any(|p| p.contains("`cargo xtask heavy") && p.ends_with("error: no heavy")),
            "{no_heavy:?}"
        );
        Ok(())
    }

    #[test]
    fn too_few_commands_mean_a_broken_extraction() {
        let docs = vec![(PathBuf::from("README.md"), "`cargo xtask ci`".to_owned())];
        let findings = check_commands(&docs, |_| Ok(()));
        assert_eq!(findings.checked, 1);
        assert!(findings.problems[0].contains("is the extraction broken?"));
    }
}
