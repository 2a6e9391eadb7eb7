//! `cargo xtask check-docs`: the documentation says only what exists. For `README.md` and
//! every `docs/*.md`:
//!
//! - every `cargo xtask …` command, in a code block or an inline code span, parses: xtask's
//!   own command line parser reads it with `--help` appended and must accept it, so a renamed
//!   or removed subcommand or option fails here (`[` and `]` around optional parts are
//!   dropped; a `#` comment, `&&`, `|`, `;` or `>` ends the command);
//! - every repository path in a code block or code span (a relative path with a `/`, made
//!   of letters, digits, `._-`, whose first segment is an entry of the root or whose file
//!   name has a known extension) exists from the project root, except under `_artifacts/`
//!   and `target/`, which runs create; every relative Markdown link target exists from the
//!   file that holds it;
//! - in `docs/TROUBLESHOOTING.md`, every code span in the `message` column is produced by the
//!   code: some string literal in `crates/*/src` or `xtask/src`, split at its `{…}`
//!   placeholders, has at least [`MIN_FIXED`] characters of fixed text and all of its fixed
//!   pieces occur in the quote in order. A span followed by ` (from X)` quotes another
//!   program (nats-server, rustls) and is not checked. This file's own literals (the
//!   examples of its tests) are left out, so that they never vouch for a quote.
//!
//! The extraction of `cargo xtask` commands from Markdown ([`code_spans`],
//! [`xtask_commands`]) and the parse check ([`parses`]) are also what `freeze-check` uses
//! for its manifest.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::paths;

/// Least fixed text a format string must have to vouch for a quoted message.
const MIN_FIXED: usize = 16;
/// Fewer commands or paths than this means the extraction is broken.
const MIN_FOUND: usize = 10;
/// Fewer quoted messages than this means the extraction is broken.
const MIN_QUOTES: usize = 7;
/// The document whose `message` column is checked against the code.
const TROUBLESHOOTING: &str = "docs/TROUBLESHOOTING.md";
/// This checker's source, relative to the project root: not scanned for format strings.
const THIS_FILE: &str = "xtask/src/docs_check.rs";

/// Arguments of `cargo xtask check-docs`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every check passed, 1 a check found a problem \
(each problem is printed with the document that has it)."
)]
pub struct Args {}

/// What one check looked at and what it found wrong.
#[derive(Debug, Default)]
struct Findings {
    /// How many items were checked.
    checked: usize,
    /// One line per problem.
    problems: Vec<String>,
}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    let root = paths::project_root();
    let docs = documents(&root)?;
    let checks = [
        ("commands", check_commands(&docs)),
        ("paths", check_paths(&root, &docs)),
        ("messages", check_messages(&root)?),
    ];
    let mut failed = false;
    for (name, findings) in &checks {
        if findings.problems.is_empty() {
            println!("check-docs: {name}: {} checked, ok", findings.checked);
        } else {
            failed = true;
            println!(
                "check-docs: {name}: {} checked, {} FAILED:",
                findings.checked,
                findings.problems.len()
            );
            for problem in &findings.problems {
                println!("  {problem}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `cargo xtask <args> --help` parses: the subcommand and its options exist. The error is
/// the parser's first line (`error: unrecognized subcommand …`).
pub fn parses(args: &[String]) -> Result<(), String> {
    let argv = std::iter::once("cargo xtask")
        .chain(args.iter().map(String::as_str))
        .chain(std::iter::once("--help"));
    match crate::Cli::try_parse_from(argv) {
        Ok(_) => Ok(()),
        // Help or version shown: everything before `--help` parsed.
        Err(err) if !err.use_stderr() => Ok(()),
        Err(err) => Err(err
            .to_string()
            .lines()
            .next()
            .unwrap_or("no message")
            .to_owned()),
    }
}

/// README.md and docs/*.md with their text.
fn documents(root: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut files = vec![root.join("README.md")];
    let docs_dir = root.join("docs");
    let mut docs: Vec<PathBuf> = std::fs::read_dir(&docs_dir)
        .with_context(|| format!("could not read {}", docs_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("could not read {}", p.display()))?;
            Ok((p, text))
        })
        .collect()
}

/// Every `cargo xtask` command of the documents parses.
fn check_commands(docs: &[(PathBuf, String)]) -> Findings {
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
fn check_paths(root: &Path, docs: &[(PathBuf, String)]) -> Findings {
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
fn check_messages(root: &Path) -> anyhow::Result<Findings> {
    let path = root.join(TROUBLESHOOTING);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let quotes = quoted_messages(&text);
    let literals = source_literals(root)?;
    let mut findings = Findings {
        checked: quotes.len(),
        problems: Vec::new(),
    };
    for quote in &quotes {
        if !literals.iter().any(|l| produces(l, quote)) {
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

/// The code of a document: whole lines of fenced blocks, and inline code spans elsewhere.
fn code_fragments(text: &str) -> Vec<String> {
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
fn repo_paths(root: &Path, fragment: &str) -> Vec<String> {
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
fn link_targets(text: &str) -> Vec<String> {
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
fn quoted_messages(text: &str) -> Vec<String> {
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

/// Every string literal of `crates/*/src` and `xtask/src`, but for [`THIS_FILE`].
fn source_literals(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut literals = Vec::new();
    let skip = root.join(THIS_FILE);
    let crates = root.join("crates");
    for dir in std::fs::read_dir(&crates)
        .with_context(|| format!("could not read {}", crates.display()))?
        .flatten()
    {
        literals_under(&dir.path().join("src"), &skip, &mut literals)?;
    }
    literals_under(&root.join("xtask/src"), &skip, &mut literals)?;
    Ok(literals)
}

/// Every string literal of the Rust files under `dir` (when it exists) but `skip`,
/// unescaped.
fn literals_under(dir: &Path, skip: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            literals_under(&path, skip, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") && path != skip {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("could not read {}", path.display()))?;
            out.extend(string_literals(&text));
        }
    }
    Ok(())
}

/// A small Rust lexer: string literals (plain, byte and raw), skipping comments and chars.
fn string_literals(src: &str) -> Vec<String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            if next == Some('\\') {
                i += 3; // the quote, the backslash and the escaped character
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1; // a lifetime
            }
        } else if c == 'r' && (i == 0 || !ident(chars[i - 1])) && matches!(next, Some('"' | '#')) {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            j += 1;
            let start = j;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    break;
                }
                j += 1;
            }
            out.push(chars[start..j.min(chars.len())].iter().collect());
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut text = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                    match chars.get(i) {
                        Some('n') => text.push('\n'),
                        Some('t') => text.push('\t'),
                        Some('\n') => {
                            while chars.get(i + 1).is_some_and(|c| c.is_whitespace()) {
                                i += 1;
                            }
                        }
                        Some(other) => text.push(*other),
                        None => {}
                    }
                } else {
                    text.push(chars[i]);
                }
                i += 1;
            }
            out.push(text);
            i += 1;
        } else {
            i += 1;
        }
    }
    out
}

/// The fixed pieces of a format string: the text between `{…}` placeholders.
fn fixed_pieces(format: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                '{'
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                '}'
            }
            '{' => {
                for inner in chars.by_ref() {
                    if inner == '}' {
                        break;
                    }
                }
                pieces.push(String::new());
                continue;
            }
            other => other,
        };
        if let Some(last) = pieces.last_mut() {
            last.push(piece);
        }
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// True when `format`'s fixed pieces carry enough text and all occur in `quote`, in order.
fn produces(format: &str, quote: &str) -> bool {
    let pieces = fixed_pieces(format);
    if pieces.iter().map(|p| p.chars().count()).sum::<usize>() < MIN_FIXED {
        return false;
    }
    let mut rest = quote;
    for piece in &pieces {
        match rest.find(piece.as_str()) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_docs() -> anyhow::Result<(PathBuf, Vec<(PathBuf, String)>)> {
        let root = paths::project_root();
        let docs = documents(&root)?;
        Ok((root, docs))
    }

    fn assert_clean(what: &str, findings: &Findings) {
        assert!(
            findings.problems.is_empty(),
            "{what}, {} checked:\n{}",
            findings.checked,
            findings.problems.join("\n")
        );
    }

    // ---- the shipped documents ----

    #[test]
    fn every_documented_xtask_command_parses() -> anyhow::Result<()> {
        let (_, docs) = shipped_docs()?;
        let findings = check_commands(&docs);
        assert!(findings.checked >= MIN_FOUND, "{findings:?}");
        assert_clean("commands that do not parse", &findings);
        Ok(())
    }

    #[test]
    fn every_documented_path_exists() -> anyhow::Result<()> {
        let (root, docs) = shipped_docs()?;
        let findings = check_paths(&root, &docs);
        assert!(findings.checked >= MIN_FOUND, "{findings:?}");
        assert_clean("documented paths that do not exist", &findings);
        Ok(())
    }

    #[test]
    fn every_troubleshooting_message_is_produced_by_the_code() -> anyhow::Result<()> {
        let findings = check_messages(&paths::project_root())?;
        assert!(findings.checked >= MIN_QUOTES, "{findings:?}");
        assert_clean("messages no format string produces", &findings);
        Ok(())
    }

    // ---- the checkers themselves ----

    #[test]
    fn the_examples_here_never_vouch_for_a_quote() -> anyhow::Result<()> {
        let root = paths::project_root();
        assert!(root.join(THIS_FILE).is_file(), "{THIS_FILE} moved");
        let literals = source_literals(&root)?;
        assert!(literals.len() > 100, "{} literals", literals.len());
        let example = "router: client certificate /tmp/c.pem is expired; renew it";
        assert!(!literals.iter().any(|l| l == example));
        Ok(())
    }

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
    fn a_renamed_command_fails_to_parse() {
        let renamed = parses(&["heavy-renamed".to_owned()]);
        assert!(
            renamed
                .as_ref()
                .is_err_and(|why| why.contains("heavy-renamed")),
            "{renamed:?}"
        );
        let option = parses(&["heavy".to_owned(), "--no-such-option".to_owned()]);
        assert!(option.is_err(), "{option:?}");
        let args: Vec<String> = ["heavy", "--suite", "decide"].map(String::from).to_vec();
        assert_eq!(parses(&args), Ok(()));
        assert_eq!(parses(&[]), Ok(()));
    }

    #[test]
    fn finds_paths_and_skips_what_runs_create() {
        let root = paths::project_root();
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
    fn format_strings_match_their_output() {
        assert!(produces(
            "client certificate {} has expired; renew it (cargo xtask certs --force) and restart",
            "router: client certificate /tmp/c.pem has expired; renew it (cargo xtask certs --force) and restart"
        ));
        assert!(!produces(
            "client certificate {} has expired; renew it",
            "router: client certificate /tmp/c.pem is expired; renew it"
        ));
        assert!(
            !produces("error: {e}", "error: anything at all"),
            "too little fixed text"
        );
        assert_eq!(fixed_pieces("a {{b}} {x:#} c{}"), vec!["a {b} ", " c"]);
    }

    #[test]
    fn lexes_rust_string_literals() {
        let src =
            "let c = '\"'; // \"comment\"\nlet a = \"one {x}\\n\"; let r = r#\"raw \"q\"\"#;\n\
                   fn f<'a>(x: &'a str) { g(\"long \\\n        line\") }";
        assert_eq!(
            string_literals(src),
            vec!["one {x}\n", "raw \"q\"", "long line"]
        );
    }

    #[test]
    fn reads_the_message_column_only() {
        let text = "| symptom | message | action |\n|---|---|---|\n\
                    | a | `mine one` and `other` (from nats-server) | `not this` |\n\nprose `nor this`\n";
        assert_eq!(quoted_messages(text), vec!["mine one"]);
    }
}
