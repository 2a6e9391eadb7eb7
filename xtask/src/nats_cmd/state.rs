//! The pid file and the run record (`nats.json`) that tie nats-start, -status and -stop.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use nats_harness::process;

/// What nats-start recorded about the server it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Process id.
    pub pid: u32,
    /// Client port.
    pub port: u16,
    /// Monitoring port.
    pub monitor_port: u16,
    /// Mutual TLS on.
    pub tls: bool,
    /// Client URL.
    pub url: String,
    /// The rendered config.
    pub config: PathBuf,
    /// The log file.
    pub log: PathBuf,
    /// JetStream store.
    pub store_dir: PathBuf,
    /// The nats-server executable.
    pub binary: PathBuf,
    /// Its version.
    pub version: String,
    /// With TLS: the CA, client certificate and key a client uses.
    #[serde(default)]
    pub client_tls: Option<ClientFiles>,
    /// UTC start time.
    pub started_at: String,
}

/// Files a TLS client of the recorded server uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFiles {
    /// CA certificate.
    pub ca_cert: PathBuf,
    /// Client certificate.
    pub client_cert: PathBuf,
    /// Client key.
    pub client_key: PathBuf,
}

/// Paths of the state files in an artifacts folder.
#[derive(Debug, Clone)]
pub struct StateFiles {
    /// `nats.pid`.
    pub pid: PathBuf,
    /// `nats.json`.
    pub record: PathBuf,
}

/// What the pid file says about the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No pid file.
    Nothing,
    /// A pid file whose process is gone (or is not nats-server).
    Stale(u32),
    /// A live nats-server, with its record when there is one.
    Running(u32, Option<Box<RunRecord>>),
}

impl StateFiles {
    /// The files in `artifacts`.
    pub fn new(artifacts: &Path) -> Self {
        Self {
            pid: artifacts.join("nats.pid"),
            record: artifacts.join("nats.json"),
        }
    }

    /// Reads the pid file and checks the process.
    pub fn find(&self) -> anyhow::Result<Found> {
        let text = match fs::read_to_string(&self.pid) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
            Err(e) => {
                return Err(e).with_context(|| format!("could not read {}", self.pid.display()))
            }
        };
        let Ok(pid) = text.trim().parse::<u32>() else {
            // Garbage in the pid file: treat it as stale.
            return Ok(Found::Stale(0));
        };
        if !process::is_nats_server(pid) {
            return Ok(Found::Stale(pid));
        }
        let record = self.read_record().filter(|r| r.pid == pid).map(Box::new);
        Ok(Found::Running(pid, record))
    }

    /// The run record, if readable.
    pub fn read_record(&self) -> Option<RunRecord> {
        let text = fs::read_to_string(&self.record).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the pid file and the record.
    pub fn write(&self, record: &RunRecord) -> anyhow::Result<()> {
        fs::write(&self.pid, format!("{}\n", record.pid))
            .with_context(|| format!("could not write {}", self.pid.display()))?;
        let json = serde_json::to_string_pretty(record)?;
        fs::write(&self.record, json + "\n")
            .with_context(|| format!("could not write {}", self.record.display()))
    }

    /// Removes the pid file and the record (missing files are fine).
    pub fn remove(&self) -> anyhow::Result<()> {
        for path in [&self.pid, &self.record] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("could not remove {}", path.display()))
                }
            }
        }
        Ok(())
    }
}
