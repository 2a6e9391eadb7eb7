//! The string literals of the project's Rust sources, read by a small lexer.

use std::path::Path;

use crate::Error;

/// This crate's sources, relative to the project root: not scanned for format strings (the
/// examples of its tests must never vouch for a quote).
pub const OWN_SOURCES: &str = "crates/docs-check/src";

/// Every string literal of `crates/*/src` and `xtask/src` under `root`, but for those of
/// [`OWN_SOURCES`].
pub fn source_literals(root: &Path) -> Result<Vec<String>, Error> {
    let mut literals = Vec::new();
    let skip = root.join(OWN_SOURCES);
    let crates = root.join("crates");
    for dir in std::fs::read_dir(&crates)
        .map_err(Error::read(&crates))?
        .flatten()
    {
        literals_under(&dir.path().join("src"), &skip, &mut literals)?;
    }
    literals_under(&root.join("xtask/src"), &skip, &mut literals)?;
    Ok(literals)
}

/// Every string literal of the Rust files under `dir` (when it exists) but those below
/// `skip`, unescaped.
fn literals_under(dir: &Path, skip: &Path, out: &mut Vec<String>) -> Result<(), Error> {
    if dir.starts_with(skip) {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            literals_under(&path, skip, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).map_err(Error::read(&path))?;
            out.extend(string_literals(&text));
        }
    }
    Ok(())
}

/// A small Rust lexer: string literals (plain, byte and raw), skipping comments and chars.
pub fn string_literals(src: &str) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project_root;

    #[test]
    fn the_examples_here_never_vouch_for_a_quote() -> Result<(), Error> {
        let root = project_root();
        assert!(root.join(OWN_SOURCES).is_dir(), "{OWN_SOURCES} moved");
        assert!(
            root.join(OWN_SOURCES).join("literals.rs").is_file(),
            "this file is not under {OWN_SOURCES}"
        );
        let literals = source_literals(&root)?;
        assert!(literals.len() > 100, "{} literals", literals.len());
        let example = "router: client certificate /tmp/c.pem is expired; renew it";
        assert!(!literals.iter().any(|l| l == example));
        Ok(())
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
}
