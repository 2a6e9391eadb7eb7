//! Running one `cargo` command for `heavy`: in a process group of its own (so that `heavy`
//! can stop it with everything it started), stdout and stderr appended to the run's log.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::interrupt;
use crate::child;

/// The shared log of a `heavy` run.
pub struct Log {
    path: PathBuf,
    file: File,
}

impl Log {
    /// Creates (or appends to) the log at `path`.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| {
                format!(
                    "could not open the log {}; check that the folder is writable",
                    path.display()
                )
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one line (best effort: a full disk must not hide the run's result).
    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.file, "{text}");
    }

    fn offset(&mut self) -> u64 {
        self.file.seek(SeekFrom::End(0)).unwrap_or(0)
    }

    /// The log's text from `offset` to its end.
    fn since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.path) {
            if file.seek(SeekFrom::Start(offset)).is_ok() {
                let mut bytes = Vec::new();
                let _ = file.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
        text
    }
}

/// What one `cargo` run did.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// How long it ran.
    pub elapsed: Duration,
    /// Its output (as written to the log).
    pub output: String,
}

/// Runs `cargo <args>` with `envs` added, from `dir`, writing into `log`; returns when it
/// has exited (also when a signal made `heavy` stop it).
pub fn run(
    dir: &Path,
    args: &[String],
    envs: &[(&str, String)],
    log: &mut Log,
) -> anyhow::Result<Finished> {
    let cargo = child::cargo_program();
    log.line(&format!("==> {cargo} {}", args.join(" ")));
    let offset = log.offset();
    let out = log
        .file
        .try_clone()
        .with_context(|| format!("could not share the log {}", log.path.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("could not share the log {}", log.path.display()))?;
    let started = Instant::now();
    let sh = child::shell()?;
    let mut running = Command::from(child::cargo(&sh).args(args))
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("could not run {cargo}; is cargo on PATH?"))?;
    interrupt::set_child(running.id());
    let status = running.wait();
    interrupt::clear_child();
    let status = status.with_context(|| format!("could not wait for {cargo}"))?;
    Ok(Finished {
        status,
        elapsed: started.elapsed(),
        output: log.since(offset),
    })
}

/// Tests counted in the `test result:` lines of libtest output: (passed, failed, ignored).
pub fn counts(output: &str) -> Option<(u64, u64, u64)> {
    let mut total: Option<(u64, u64, u64)> = None;
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        let sum = total.get_or_insert((0, 0, 0));
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            let (Some(number), Some(word)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match word {
                "passed" => sum.0 += number,
                "failed" => sum.1 += number,
                "ignored" => sum.2 += number,
                _ => {}
            }
        }
    }
    total
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_result_lines() {
        let output = "running 3 tests\n\
            test result: ok. 14 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 4.13s\n\
            test result: FAILED. 2 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(counts(output), Some((16, 3, 1)));
        assert_eq!(counts("error: no test target named `x`"), None);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
