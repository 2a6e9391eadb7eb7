//! Running another xtask command as a child process: its output passes through to the
//! terminal, and its exit status and last output line come back as the check's result.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// How a child command ended.
#[derive(Debug)]
pub struct Ran {
    /// Exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// The last non-empty line it printed on stdout.
    pub last_line: String,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs `xtask <args>` (this same executable), echoing its stdout line by line.
pub fn xtask(args: &[String]) -> anyhow::Result<Ran> {
    let me = crate::ci::self_exe()?;
    let started = Instant::now();
    println!("==> freeze-check: cargo xtask {}", args.join(" "));
    let mut command = Command::new(&me);
    // Its own cargo commands must not see the package variables of `cargo run`.
    for var in crate::ci::package_env_vars() {
        command.env_remove(var);
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not run {}", me.display()))?;
    let mut last_line = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            if !line.trim().is_empty() {
                last_line = line.trim().to_owned();
            }
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("could not wait for {}", me.display()))?;
    Ok(Ran {
        code: status.code(),
        last_line,
        elapsed: started.elapsed(),
    })
}
