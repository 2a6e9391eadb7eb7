//! Helpers for running the built xtask binary against a temporary artifacts folder.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The outcome of one xtask run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for assertions and failure messages.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `xtask <args>` with `BEAMLINE_ARTIFACTS=<artifacts>`.
pub fn xtask(artifacts: &Path, args: &[&str]) -> anyhow::Result<Run> {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("BEAMLINE_ARTIFACTS", artifacts)
        .env_remove("NATS_URL")
        .output()?;
    Ok(Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// A port that was free a moment ago (the OS picked it), never the same one twice in this
/// test binary, so tests running in parallel do not collide.
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut used = HANDED_OUT
            .lock()
            .map_err(|_| anyhow::anyhow!("port registry poisoned"))?;
        if used.insert(port) {
            return Ok(port);
        }
    }
}

/// True when nothing listens on the port.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A temporary artifacts folder with its own ports; runs nats-stop when dropped.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub monitor_port: u16,
}

impl Sandbox {
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let monitor_port = free_port()?;
        Ok(Self {
            dir,
            port,
            monitor_port,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid_file(&self) -> PathBuf {
        self.path().join("nats.pid")
    }

    pub fn run(&self, args: &[&str]) -> anyhow::Result<Run> {
        xtask(self.path(), args)
    }

    /// nats-start on this sandbox's ports and store, plus `extra` arguments.
    pub fn start(&self, extra: &[&str]) -> anyhow::Result<Run> {
        let port = self.port.to_string();
        let monitor = self.monitor_port.to_string();
        let store = self.path().join("store");
        let store = store.to_string_lossy().into_owned();
        let mut args = vec![
            "nats-start",
            "--port",
            &port,
            "--monitor-port",
            &monitor,
            "--store-dir",
            &store,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    pub fn status(&self) -> anyhow::Result<Run> {
        self.run(&["nats-status"])
    }

    pub fn stop(&self) -> anyhow::Result<Run> {
        self.run(&["nats-stop"])
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Never leave a server behind, whatever the test did.
        let _ = self.stop();
    }
}
