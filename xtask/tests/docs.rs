//! The documentation says only what exists. For `README.md` and every `docs/*.md`:
//!
//! - every `cargo xtask …` command, in a code block or an inline code span, parses: the
//!   built xtask binary runs it with `--help` appended and must exit 0, so a renamed or
//!   removed subcommand or option fails here (`[` and `]` around optional parts are dropped;
//!   a `#` comment, `&&`, `|`, `;` or `>` ends the command);
//! - every repository path in a code block or code span (a relative path with a `/`, made
//!   of letters, digits, `._-`, whose first segment is an entry of the root or whose file
//!   name has a known extension) exists from the project root, except under `_artifacts/`
//!   and `target/`, which runs create; every relative Markdown link target exists from the
//!   file that holds it;
//! - in `docs/TROUBLESHOOTING.md`, every code span in the `message` column is produced by the
//!   code: some string literal in `crates/*/src` or `xtask/src`, split at its `{…}`
//!   placeholders, has at least [`MIN_FIXED`] characters of fixed text and all of its fixed
//!   pieces occur in the quote in order. A span followed by ` (from X)` quotes another
//!   program (nats-server, rustls) and is not checked.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Least fixed text a format string must have to vouch for a quoted message.
const MIN_FIXED: usize = 16;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits below the root")
        .to_path_buf()
}

/// README.md and docs/*.md with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable doc");
            (p, text)
        })
        .collect()
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
fn code_spans(line: &str) -> Vec<(String, String)> {
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
fn xtask_commands(fragment: &str) -> Vec<Vec<String>> {
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

#[test]
fn every_documented_xtask_command_parses() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (path, text) in documents() {
        for fragment in code_fragments(&text) {
            for args in xtask_commands(&fragment) {
                checked += 1;
                let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
                    .args(&args)
                    .arg("--help")
                    .output()
                    .expect("run xtask");
                if !output.status.success() {
                    failures.push(format!(
                        "{}: `cargo xtask {}`: {}",
                        path.display(),
                        args.join(" "),
                        String::from_utf8_lossy(&output.stderr)
                            .lines()
                            .next()
                            .unwrap_or("")
                    ));
                }
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} commands found: is the extraction broken?"
    );
    assert!(
        failures.is_empty(),
        "commands that do not parse:\n{}",
        failures.join("\n")
    );
}

/// The repository paths among the words of `fragment`: relative paths whose first segment
/// is an entry of the repository root, or whose file name has a known extension (so that
/// `policy/metric` names and `a/b` prose are not taken for paths).
fn repo_paths(fragment: &str) -> Vec<String> {
    let root = root();
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

#[test]
fn every_documented_path_exists() {
    let root = root();
    let mut checked = 0;
    let mut missing = Vec::new();
    for (path, text) in documents() {
        for fragment in code_fragments(&text) {
            for candidate in repo_paths(&fragment) {
                checked += 1;
                if !root.join(&candidate).exists() {
                    missing.push(format!("{}: `{candidate}`", path.display()));
                }
            }
        }
        let dir = path.parent().expect("doc in a folder");
        for target in link_targets(&text) {
            checked += 1;
            if !dir.join(&target).exists() {
                missing.push(format!("{}: link ({target})", path.display()));
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} paths found: is the extraction broken?"
    );
    assert!(
        missing.is_empty(),
        "documented paths that do not exist:\n{}",
        missing.join("\n")
    );
}

// ---- messages in TROUBLESHOOTING.md ----

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

/// Every string literal of the Rust files under `dir`, unescaped.
fn literals_under(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            literals_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("readable source");
            out.extend(string_literals(&text));
        }
    }
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
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                pieces.last_mut().expect("one piece").push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                pieces.last_mut().expect("one piece").push('}');
            }
            '{' => {
                for inner in chars.by_ref() {
                    if inner == '}' {
                        break;
                    }
                }
                pieces.push(String::new());
            }
            other => pieces.last_mut().expect("one piece").push(other),
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

#[test]
fn every_troubleshooting_message_is_produced_by_the_code() {
    let root = root();
    let text = std::fs::read_to_string(root.join("docs/TROUBLESHOOTING.md"))
        .expect("docs/TROUBLESHOOTING.md exists");
    let quotes = quoted_messages(&text);
    assert!(
        quotes.len() >= 7,
        "only {} quoted messages: {quotes:?}",
        quotes.len()
    );
    let mut literals = Vec::new();
    for dir in std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .flatten()
    {
        literals_under(&dir.path().join("src"), &mut literals);
    }
    literals_under(&root.join("xtask/src"), &mut literals);
    let unexplained: Vec<&String> = quotes
        .iter()
        .filter(|quote| !literals.iter().any(|l| produces(l, quote)))
        .collect();
    assert!(
        unexplained.is_empty(),
        "messages quoted in docs/TROUBLESHOOTING.md that no format string in the sources \
         produces (reworded in the code? copy the new text from a real run):\n{unexplained:#?}"
    );
}

// ---- the checkers themselves ----

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
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["heavy-renamed", "--help"])
        .output()
        .expect("run xtask");
    assert!(!output.status.success());
}

#[test]
fn finds_paths_and_skips_what_runs_create() {
    assert_eq!(
        repo_paths("see `docs/RUNBOOK.md`, then perf/policy.json: and --out=perf/x.json"),
        vec!["docs/RUNBOOK.md", "perf/policy.json", "perf/x.json"]
    );
    assert!(
        repo_paths("_artifacts/certs/ca-cert.pem target/release/router /tmp/x tls://h:1")
            .is_empty()
    );
    assert!(repo_paths("config/policies/<tenant>/<policy>.json 127.0.0.1:9001/readyz").is_empty());
    assert!(repo_paths("run/status, cp1/rps ok/FAILED").is_empty());
    assert_eq!(repo_paths("doc/TYPO.md"), vec!["doc/TYPO.md"]);
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
    let src = "let c = '\"'; // \"comment\"\nlet a = \"one {x}\\n\"; let r = r#\"raw \"q\"\"#;\n\
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
