//! The documentation says only what exists. For `README.md` and every `docs/*.md`:
//!
//! - every `cargo xtask …` command, in a code block or an inline code span, parses: the
//!   caller's parse check (xtask passes its own command line parser, which reads the command
//!   with `--help` appended) must accept it, so a renamed or removed subcommand or option
//!   fails here (`[` and `]` around optional parts are dropped; a `#` comment, `&&`, `|`, `;`
//!   or `>` ends the command);
//! - every repository path in a code block or code span (a relative path with a `/`, made
//!   of letters, digits, `._-`, whose first segment is an entry of the root or whose file
//!   name has a known extension) exists from the project root, except under `_artifacts/`
//!   and `target/`, which runs create; every relative Markdown link target exists from the
//!   file that holds it;
//! - in `docs/TROUBLESHOOTING.md`, every code span in the `message` column is produced by the
//!   code: some string literal in `crates/*/src` or `xtask/src`, split at its `{…}`
//!   placeholders, has at least [`format::MIN_FIXED`] characters of fixed text and all of
//!   its fixed pieces occur in the quote in order. A span followed by ` (from X)` quotes
//!   another program (nats-server, rustls) and is not checked. This crate's own sources (the
//!   examples of its tests) are left out ([`literals::OWN_SOURCES`]), so that they never
//!   vouch for a quote.
//!
//! `cargo xtask check-docs` runs [`check_all`] and prints its findings. The extraction of
//! `cargo xtask` commands from Markdown ([`markdown::code_spans`],
//! [`markdown::xtask_commands`]) is also what `cargo xtask freeze-check` uses for its
//! manifest.

#![forbid(unsafe_code)]

pub mod checks;
pub mod format;
pub mod literals;
pub mod markdown;

use std::path::{Path, PathBuf};

pub use checks::{check_commands, check_messages, check_paths, documents, Findings};

/// What can stop a check from running at all (a problem it finds is a [`Findings`] entry).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document, a source file or a folder could not be read.
    #[error("could not read {}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    fn read(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One check by name with what it found.
#[derive(Debug)]
pub struct Check {
    /// `commands`, `paths` or `messages`.
    pub name: &'static str,
    /// What it looked at and what it found wrong.
    pub findings: Findings,
}

/// Runs the three checks on the project at `root`, in order: commands (each checked with
/// `parses`, which gets the arguments after `cargo xtask`), paths, messages.
pub fn check_all(
    root: &Path,
    parses: impl Fn(&[String]) -> Result<(), String>,
) -> Result<Vec<Check>, Error> {
    let docs = documents(root)?;
    Ok(vec![
        Check {
            name: "commands",
            findings: check_commands(&docs, parses),
        },
        Check {
            name: "paths",
            findings: check_paths(root, &docs),
        },
        Check {
            name: "messages",
            findings: check_messages(root)?,
        },
    ])
}

/// The workspace root of this checkout, for the tests that read the shipped documents.
#[cfg(test)]
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .expect("docs-check lives two levels below the workspace root")
}
