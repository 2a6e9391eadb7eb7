//! Reading Markdown: code fragments, `cargo xtask` commands, repository paths, link targets
//! and the quoted messages of a table's `message` column.

use std::path::Path;

/// The code of a document: whole lines of fenced blocks, and inline code spans elsewhere.
pub fn code_fragments(text: &str) -> Vec<String> {
    let mut fragments = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            fragments.push(line.to_owned());
        } else {
            fragments.extend(code_spans(line).into_iter().map(|(span, _)| span));
        }
    }
    fragments
}

/// Inline code spans of one line, each with the text that follows it.
pub fn code_spans(line: &str) -> Vec<(String, String)> {
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(len) = after.find('`') else { break };
        spans.push((after[..len].to_owned(), after[len + 1..].to_owned()));
        rest = &after[len + 1..];
    }
    spans
}

/// The argument lists of every `cargo xtask` command in `fragment`.
pub fn xtask_commands(fragment: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut rest = fragment;
    while let Some(at) = rest.find("cargo xtask") {
        let after = &rest[at + "cargo xtask".len()..];
        if after.chars().next().is_some_and(|c| !c.is_whitespace()) {
            rest = after;
            continue;
        }
        let end = ["#", "&&", "|", ";", ">", "`", ")"]
            .iter()
            .filter_map(|stop| after.find(stop))
            .min()
            .unwrap_or(after.len());
        let args: Vec<String> = after[..end]
            .split_whitespace()
            .map(|t| t.replace(['[', ']'], ""))
            .filter(|t| !t.is_empty() && t != "…" && t != "...")
            .collect();
        commands.push(args);
        rest = &after[end..];
    }
    commands
}

/// The repository paths among the words of `fragment`: relative paths whose first segment
/// is an entry of the repository `root`, or whose file name has a known extension (so that
/// `policy/metric` names and `a/b` prose are not taken for paths).
pub fn repo_paths(root: &Path, fragment: &str) -> Vec<String> {
    fragment
        .split_whitespace()
        .map(|word| word.rsplit('=').next().unwrap_or(word))
        .map(|word| {
            word.trim_start_matches(['(', '"', '\'', '`'])
                .trim_end_matches(['.', ',', ';', ':', ')', '"', '\'', '`'])
        })
        .filter(|word| {
            word.contains('/')
                && !word.starts_with(['/', '-', '.'])
                && !word.contains("//")
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
        })
        .filter(|word| {
            let first = word.split('/').next().unwrap_or("");
            first != "_artifacts"
                && first != "target"
                && (root.join(first).exists() || has_file_extension(word))
        })
        .map(str::to_owned)
        .collect()
}

/// True when the last segment ends in an extension of the files this repository keeps.
fn has_file_extension(word: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        ".md", ".rs", ".json", ".toml", ".conf", ".yml", ".yaml", ".sh", ".pem", ".log", ".txt",
    ];
    let last = word.rsplit('/').next().unwrap_or(word);
    EXTENSIONS.iter().any(|ext| last.ends_with(ext))
}

/// Relative link targets of `[text](target)`.
pub fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        let target = after[..end].split('#').next().unwrap_or("").trim();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            targets.push(target.to_owned());
        }
        rest = &after[end..];
    }
    targets
}

/// The code spans of the `message` column that are not marked ` (from X)`.
pub fn quoted_messages(text: &str) -> Vec<String> {
    let mut column = None;
    let mut quotes = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            column = None;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        match column {
            None => column = cells.iter().position(|c| *c == "message"),
            Some(index) => {
                let Some(cell) = cells.get(index) else {
                    continue;
                };
                for (span, after) in code_spans(cell) {
                    if !after.trim_start().starts_with("(from ") {
                        quotes.push(span);
                    }
                }
            }
        }
    }
    quotes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project_root;

    #[test]
    fn extracts_commands_and_stops_at_shell_syntax() {
        assert_eq!(
            xtask_commands("cargo xtask heavy [--suite NAME]   # comment"),
            vec![vec!["heavy".to_owned(), "--suite".into(), "NAME".into()]]
        );
        assert_eq!(
            xtask_commands("cargo xtask bench && cargo xtask perf-gate --latest | tee x"),
            vec![
                vec!["bench".to_owned()],
                vec!["perf-gate".to_owned(), "--latest".into()]
            ]
        );
        assert_eq!(xtask_commands("cargo xtask"), vec![Vec::<String>::new()]);
        assert!(xtask_commands("cargo xtasks").is_empty());
        assert_eq!(
            xtask_commands("renew it (cargo xtask certs --force) and restart"),
            vec![vec!["certs".to_owned(), "--force".into()]]
        );
    }

    #[test]
    fn finds_paths_and_skips_what_runs_create() {
        let root = project_root();
        assert_eq!(
            repo_paths(
                &root,
                "see `docs/RUNBOOK.md`, then perf/policy.json: and --out=perf/x.json"
            ),
            vec!["docs/RUNBOOK.md", "perf/policy.json", "perf/x.json"]
        );
        assert!(repo_paths(
            &root,
            "_artifacts/certs/ca-cert.pem target/release/router /tmp/x tls://h:1"
        )
        .is_empty());
        assert!(repo_paths(
            &root,
            "config/policies/<tenant>/<policy>.json 127.0.0.1:9001/readyz"
        )
        .is_empty());
        assert!(repo_paths(&root, "run/status, cp1/rps ok/FAILED").is_empty());
        assert_eq!(repo_paths(&root, "doc/TYPO.md"), vec!["doc/TYPO.md"]);
    }

    #[test]
    fn reads_the_message_column_only() {
        let text = "| symptom | message | action |\n|---|---|---|\n\
                    | a | `mine one` and `other` (from nats-server) | `not this` |\n\nprose `nor this`\n";
        assert_eq!(quoted_messages(text), vec!["mine one"]);
    }

    #[test]
    fn code_comes_from_blocks_and_spans() {
        let text = "prose `span one` more\n```sh\nwhole line `kept`\n```\nafter";
        assert_eq!(
            code_fragments(text),
            vec!["span one".to_owned(), "whole line `kept`".to_owned()]
        );
        assert_eq!(
            link_targets("[a](docs/A.md#x) [b](https://x.y) [c](mailto:m) [d](B.md)"),
            vec!["docs/A.md", "B.md"]
        );
    }
}
