//! Child processes of xtask: cargo and xtask itself, run through an `xshell` [`Shell`] from
//! the project root and without the package variables of `cargo run` (see
//! [`package_env_vars`]). `Cmd::run` prints the command and fails naming it; a child that
//! needs pipes or supervision becomes a `std::process::Command` with `Command::from`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use xshell::{Cmd, Shell};

use crate::paths;

/// A shell whose commands start in the project root.
pub fn shell() -> anyhow::Result<Shell> {
    let sh = Shell::new().context("could not read the current directory")?;
    sh.change_dir(paths::project_root());
    Ok(sh)
}

/// The cargo that runs xtask: `$CARGO`, else `cargo` from `PATH`.
pub fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// [`cargo_program`] as a command of `sh`, without the package's variables.
pub fn cargo(sh: &Shell) -> Cmd<'_> {
    without_package_env(sh.cmd(cargo_program()))
}

/// This xtask executable ([`self_exe`]) as a command of `sh`, without the package's
/// variables.
pub fn xtask(sh: &Shell) -> anyhow::Result<Cmd<'_>> {
    Ok(without_package_env(sh.cmd(self_exe()?)))
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
fn without_package_env(command: Cmd<'_>) -> Cmd<'_> {
    package_env_vars()
        .into_iter()
        .fold(command, |command, var| command.env_remove(var))
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
    let sh = shell()?;
    let mut command = Command::from(xtask(&sh)?.args(args));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("could not run xtask as a child")?;
    let mut last_line = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            if !line.trim().is_empty() {
                last_line = line.trim().to_owned();
            }
        }
    }
    let status = child.wait().context("could not wait for the xtask child")?;
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
    fn a_cargo_child_has_no_package_variables() -> anyhow::Result<()> {
        // `cargo test` sets CARGO_MANIFEST_DIR and CARGO_PKG_NAME for this test binary.
        assert!(package_env_vars()
            .iter()
            .any(|v| v.as_os_str() == "CARGO_PKG_NAME"));
        let sh = shell()?;
        let command = Command::from(cargo(&sh));
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
        Ok(())
    }

    #[test]
    fn a_failing_command_is_an_error_naming_it() -> anyhow::Result<()> {
        let sh = shell()?;
        assert!(sh.cmd("true").quiet().run().is_ok());
        let err = sh
            .cmd("sh")
            .args(["-c", "exit 3"])
            .quiet()
            .run()
            .map_err(|e| e.to_string());
        assert!(
            err.as_ref()
                .is_err_and(|e| e.contains("sh -c") && e.contains('3')),
            "{err:?}"
        );
        assert!(sh.cmd("/no/such/program").quiet().run().is_err());
        Ok(())
    }
}
