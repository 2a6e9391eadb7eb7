//! Child processes of xtask: cargo and xtask itself, started with `std::process::Command`
//! from the project root and without the package variables of `cargo run` (see
//! [`package_env_vars`]); running a command to its end; running another xtask command with
//! its output passed through and its last line kept.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::paths;

/// The cargo that runs xtask: `$CARGO`, else `cargo` from `PATH`.
pub fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// [`cargo_program`] as a command: from the project root, no standard input, without the
/// package's variables.
pub fn cargo_command() -> Command {
    let mut command = Command::new(cargo_program());
    without_package_env(&mut command)
        .current_dir(paths::project_root())
        .stdin(Stdio::null());
    command
}

/// This xtask executable ([`self_exe`]) as a command: from the project root, no standard
/// input, without the package's variables.
pub fn xtask_command() -> anyhow::Result<Command> {
    let mut command = Command::new(self_exe()?);
    without_package_env(&mut command)
        .current_dir(paths::project_root())
        .stdin(Stdio::null());
    Ok(command)
}

/// This xtask executable, to run it again as a child. On Linux `/proc/self/exe`, which keeps
/// working when cargo replaces `target/debug/xtask` meanwhile (`cargo test --workspace`
/// rebuilds it with the workspace's features while `ci` runs).
pub fn self_exe() -> anyhow::Result<PathBuf> {
    let proc_exe = Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe.to_path_buf());
    }
    std::env::current_exe().context("could not find the xtask executable; run `cargo xtask` again")
}

/// The variables `cargo run` (and `cargo test`) set for the package being run —
/// `CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, `CARGO_BIN_EXE_*`, ... — found in this process's
/// environment. A cargo started from xtask must not inherit them: build scripts that watch
/// one (ring's watches `CARGO_MANIFEST_DIR`) would see it change and rebuild half the
/// dependency tree on every switch between `cargo xtask` and a plain cargo command.
pub fn package_env_vars() -> Vec<OsString> {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_RUSTC_CURRENT_DIR",
        "CARGO_TARGET_TMPDIR",
    ];
    const PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_BIN_EXE_"];
    std::env::vars_os()
        .map(|(key, _)| key)
        .filter(|key| {
            key.to_str().is_some_and(|key| {
                EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p))
            })
        })
        .collect()
}

/// Removes [`package_env_vars`] from `command`'s environment.
pub fn without_package_env(command: &mut Command) -> &mut Command {
    for var in package_env_vars() {
        command.env_remove(var);
    }
    command
}

/// Prints `$ <command>` on stderr, then runs it to its end with this terminal's output;
/// an error when it cannot start or does not exit 0.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", describe(command));
    run_quiet(command)
}

/// [`run`] without printing the command first.
pub fn run_quiet(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("could not run `{}`", describe(command)))?;
    if !status.success() {
        bail!("`{}` failed: {status}", describe(command));
    }
    Ok(())
}

/// The program and its arguments, as a shell would show them.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How an xtask child command ended.
#[derive(Debug)]
pub struct Ran {
    /// Exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// The last non-empty line it printed on stdout.
    pub last_line: String,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs `xtask <args>` (this same executable), echoing its stdout line by line (its stderr
/// goes to this terminal), and returns its exit code and last output line.
pub fn xtask_echoed(args: &[String]) -> anyhow::Result<Ran> {
    let started = Instant::now();
    let mut command = xtask_command()?;
    let mut child = command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not run `{}`", describe(&command)))?;
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
        .with_context(|| format!("could not wait for `{}`", describe(&command)))?;
    Ok(Ran {
        code: status.code(),
        last_line,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cargo_child_has_no_package_variables() {
        // `cargo test` sets CARGO_MANIFEST_DIR and CARGO_PKG_NAME for this test binary.
        assert!(package_env_vars()
            .iter()
            .any(|v| v.as_os_str() == "CARGO_PKG_NAME"));
        let command = cargo_command();
        let removed: Vec<&std::ffi::OsStr> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key)
            .collect();
        assert!(removed.contains(&std::ffi::OsStr::new("CARGO_MANIFEST_DIR")));
        assert!(removed.contains(&std::ffi::OsStr::new("CARGO_PKG_NAME")));
        assert_eq!(
            command.get_current_dir(),
            Some(paths::project_root().as_path())
        );
    }

    #[test]
    fn a_failing_command_is_an_error_naming_it() {
        let mut ok = Command::new("true");
        assert!(run_quiet(&mut ok).is_ok());
        let mut failing = Command::new("sh");
        failing.args(["-c", "exit 3"]);
        let err = run_quiet(&mut failing).map_err(|e| format!("{e:#}"));
        assert!(
            err.as_ref()
                .is_err_and(|e| e.contains("`sh -c exit 3` failed") && e.contains('3')),
            "{err:?}"
        );
        let mut missing = Command::new("/no/such/program");
        assert!(run_quiet(&mut missing).is_err());
    }
}
