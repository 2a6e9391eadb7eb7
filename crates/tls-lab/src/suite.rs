//! The runner of the suite `tests/validate_tls.rs`: options, the lab, the certificates'
//! removal, the table and `report.json`, and the exit status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::result::CaseResult;
use crate::{lab, report};

/// Exit status: every case behaved as expected.
pub const EXIT_PASSED: u8 = 0;
/// Exit status: a case did not behave as expected (the table and report say which).
pub const EXIT_FAILED: u8 = 1;
/// Exit status: the lab could not be set up or the report not written (the error is on
/// stderr; no table).
pub const EXIT_NOT_RUN: u8 = 2;
/// Environment variable that moves `_artifacts/` (as for xtask).
pub const ARTIFACTS_ENV: &str = "BEAMLINE_ARTIFACTS";

/// The suite's options: what follows `--` in `cargo test -p tls-lab --test validate_tls --`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The router executable to start (`--router-binary PATH`; default: the `router` built
    /// beside this test).
    pub router_binary: PathBuf,
    /// Where the logs, the report and the certificates go (`--out-dir DIR`; default:
    /// `<artifacts>/validate-tls`).
    pub out_dir: PathBuf,
    /// Keep the certificates and keys in `<out-dir>/certs/` (`--keep-artifacts`).
    pub keep_artifacts: bool,
}

impl Options {
    /// Reads the options from `args` (without the program name). Flags that `cargo test`
    /// may hand any test binary (`--nocapture`, `--quiet`, `-q`, `--show-output`) are
    /// accepted and change nothing: this suite prints everything.
    pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Options> {
        let mut args = args.into_iter();
        let mut router_binary = None;
        let mut out_dir = None;
        let mut keep_artifacts = false;
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .map(PathBuf::from)
                    .with_context(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--router-binary" => router_binary = Some(value("--router-binary")?),
                "--out-dir" => out_dir = Some(value("--out-dir")?),
                "--keep-artifacts" => keep_artifacts = true,
                "--nocapture" | "--quiet" | "-q" | "--show-output" => {}
                other => bail!(
                    "unknown option {other:?}; the options are --router-binary PATH, \
                     --out-dir DIR and --keep-artifacts"
                ),
            }
        }
        let router_binary = match router_binary {
            Some(path) => path,
            None => default_router_binary()?,
        };
        Ok(Options {
            router_binary,
            out_dir: out_dir.unwrap_or_else(|| artifacts_dir().join("validate-tls")),
            keep_artifacts,
        })
    }
}

/// The suite's `main`: parses `args`, runs [`run`], and maps the outcome to
/// [`EXIT_PASSED`], [`EXIT_FAILED`] or [`EXIT_NOT_RUN`].
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let outcome = Options::parse(args).and_then(|options| run(&options));
    match outcome {
        Ok(results) if results.iter().all(CaseResult::passed) => ExitCode::from(EXIT_PASSED),
        Ok(_) => ExitCode::from(EXIT_FAILED),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_NOT_RUN)
        }
    }
}

/// Runs the lab, removes the certificates unless they are to be kept, prints the table and
/// writes `report.json` into the output folder.
pub fn run(options: &Options) -> anyhow::Result<Vec<CaseResult>> {
    let out_dir = &options.out_dir;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("could not create {}", out_dir.display()))?;
    let certs_dir = out_dir.join("certs");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the tokio runtime")?;
    let outcome = runtime.block_on(lab::run_all(&options.router_binary, out_dir, &certs_dir));
    // Certificates and private keys do not outlive the run unless asked for.
    if !options.keep_artifacts {
        remove_dir(&certs_dir);
    }
    let results = outcome?;
    report::print_table(&results);
    report::write_json(&out_dir.join(report::REPORT), &results)?;
    Ok(results)
}

/// The `router` of the profile this test was built with: the test runs as
/// `<target>/<profile>/deps/validate_tls-<hash>`.
fn default_router_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("could not find this test's executable")?;
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("router"))
        .context("this test's executable is not under <target>/<profile>/deps")?;
    if !binary.is_file() {
        bail!(
            "no router executable at {}: build it (`cargo build -p router-bin`) or pass \
             --router-binary PATH (`cargo xtask validate-tls` does both)",
            binary.display()
        );
    }
    Ok(binary)
}

/// `_artifacts/` under the project root, or `$BEAMLINE_ARTIFACTS` when set.
fn artifacts_dir() -> PathBuf {
    match std::env::var_os(ARTIFACTS_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => std::path::absolute(&dir).unwrap_or_else(|_| PathBuf::from(dir)),
        None => crate::project_root().join("_artifacts"),
    }
}

fn remove_dir(dir: &Path) {
    if let Err(err) = std::fs::remove_dir_all(dir) {
        if err.kind() != std::io::ErrorKind::NotFound {
            eprintln!("validate-tls: could not remove {}: {err}", dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn reads_the_options_and_ignores_what_cargo_test_adds() -> anyhow::Result<()> {
        let options = Options::parse(args(&[
            "--quiet",
            "--router-binary",
            "/x/router",
            "--out-dir",
            "/x/out",
            "--keep-artifacts",
            "--nocapture",
        ]))?;
        assert_eq!(
            options,
            Options {
                router_binary: "/x/router".into(),
                out_dir: "/x/out".into(),
                keep_artifacts: true,
            }
        );
        Ok(())
    }

    #[test]
    fn refuses_unknown_options_and_missing_values() {
        let unknown = Options::parse(args(&["--router-binary", "/r", "--filter"]));
        assert!(unknown.is_err_and(|e| e.to_string().contains("--out-dir DIR")));
        let missing = Options::parse(args(&["--router-binary"]));
        assert!(missing.is_err_and(|e| e.to_string().contains("needs a value")));
    }
}
