//! [`NatsServer`]: a real nats-server on free ports with a temporary store, for tests.

use std::env;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tempfile::TempDir;

use crate::config::{self, ConfigValues, ServerTls};
use crate::locate;
use crate::logs;
use crate::monitor;
use crate::ports::{self, Ports};
use crate::probe::{self, ServerInfo};
use crate::process::{self, Signal};

/// How long to wait for the ports file and then for `/healthz`.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Log lines quoted in errors.
const LOG_LINES_IN_ERRORS: usize = 20;

/// How to start a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Mutual TLS (`verify: true`) with certificates generated into the temporary directory.
    pub tls: bool,
    /// JetStream (store in the temporary directory).
    pub jetstream: bool,
    /// Fixed client port; `None` picks a free one.
    pub port: Option<u16>,
    /// Fixed monitoring port; `None` picks a free one.
    pub monitor_port: Option<u16>,
    /// Extra nats-server configuration lines.
    pub extra_config: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            tls: false,
            jetstream: true,
            port: None,
            monitor_port: None,
            extra_config: String::new(),
        }
    }
}

/// Certificate and key files of a TLS server and its client: the certs crate's bundle,
/// [`certs::BundlePaths`] (CA, server and client certificate with their keys, in `dir`).
/// [`certs::BundlePaths::authority`] loads its CA; [`probe::client_tls`] makes the client
/// side of a probe from it.
pub type TlsFiles = certs::BundlePaths;

/// A running nats-server: either one this handle started (stopped on drop) or an external
/// one named by `NATS_URL` (left alone).
#[derive(Debug)]
pub struct NatsServer {
    mode: Mode,
    client_url: String,
    port: u16,
    monitor_port: u16,
    tls: Option<TlsFiles>,
}

#[derive(Debug)]
enum Mode {
    Owned(Owned),
    External,
}

#[derive(Debug)]
struct Owned {
    binary: PathBuf,
    // Kept for its Drop: removes the store, certificates, config and log.
    dir: TempDir,
    config_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Plain TCP, JetStream on, free ports.
    pub fn start_plain() -> anyhow::Result<Self> {
        Self::start(ServerOptions::default())
    }

    /// Mutual TLS (`verify: true`: a client certificate from the generated CA is required),
    /// JetStream on, free ports. Certificates are generated into the temporary directory.
    pub fn start_tls() -> anyhow::Result<Self> {
        Self::start(ServerOptions {
            tls: true,
            ..ServerOptions::default()
        })
    }

    /// Starts a server as described by `options` and waits until `/healthz` answers 200.
    pub fn start(options: ServerOptions) -> anyhow::Result<Self> {
        let binary = locate::nats_server()?.path;
        let dir = tempfile::Builder::new()
            .prefix("nats-harness-")
            .tempdir()
            .context("could not create a temporary directory for nats-server")?;
        let root = dir.path().to_path_buf();
        let tls = if options.tls {
            let report = certs::ensure(&root.join("certs"), &certs::EnsureOptions::default())
                .context("could not generate TLS certificates for nats-server")?;
            Some(report.paths)
        } else {
            None
        };
        let store_dir = root.join("store");
        fs::create_dir_all(&store_dir)
            .with_context(|| format!("could not create {}", store_dir.display()))?;
        let values = ConfigValues {
            host: "127.0.0.1".to_owned(),
            port: options.port,
            monitor_port: options.monitor_port,
            jetstream: options.jetstream,
            store_dir,
            tls: tls.as_ref().map(|t| ServerTls {
                ca_cert: t.ca_cert.clone(),
                server_cert: t.server_cert.clone(),
                server_key: t.server_key.clone(),
            }),
            extra: options.extra_config.clone(),
        };
        let config_path = root.join("nats.conf");
        write_config(&config_path, &values)?;
        let mut owned = Owned {
            binary,
            log_path: root.join("nats.log"),
            config_path,
            dir,
            child: None,
        };
        let ports = owned.spawn_and_wait()?;
        let mut server = Self {
            mode: Mode::Owned(owned),
            client_url: String::new(),
            port: ports.client,
            monitor_port: ports.monitor.unwrap_or(0),
            tls,
        };
        server.client_url = server.local_url();
        // Fix the ports in the config so that restart() comes back on the same ones.
        if let Mode::Owned(owned) = &server.mode {
            let fixed = ConfigValues {
                port: Some(server.port),
                monitor_port: Some(server.monitor_port),
                ..values
            };
            write_config(&owned.config_path, &fixed)?;
        }
        Ok(server)
    }

    /// When `NATS_URL` is set, a handle to that external server (see [`Self::external_from_env`]);
    /// otherwise a fresh server started with `options`.
    pub fn from_env_or_start(options: ServerOptions) -> anyhow::Result<Self> {
        match Self::external_from_env()? {
            Some(server) => Ok(server),
            None => Self::start(options),
        }
    }

    /// [`Self::from_env_or_start`] with a mutual-TLS server.
    pub fn from_env_or_start_tls() -> anyhow::Result<Self> {
        Self::from_env_or_start(ServerOptions {
            tls: true,
            ..ServerOptions::default()
        })
    }

    /// [`Self::from_env_or_start`] with a plain server.
    pub fn from_env_or_start_plain() -> anyhow::Result<Self> {
        Self::from_env_or_start(ServerOptions::default())
    }

    /// A handle to the server named by the environment, or `None` when `NATS_URL` is unset:
    /// - `NATS_URL`: client URL, e.g. `tls://127.0.0.1:4222`;
    /// - `NATS_MONITOR_PORT`: monitoring port (default 8222);
    /// - `NATS_CA`, `NATS_CERT`, `NATS_KEY`: CA, the internal caller's certificate and key
    ///   for TLS. The CA key, the server files and the other roles' certificates (router,
    ///   operator, tenants) are taken to be beside `NATS_CA` under the standard names, as
    ///   `cargo xtask certs` writes them; they may not exist for servers set up otherwise.
    ///
    /// Dropping it does nothing; `stop` and `restart` fail.
    pub fn external_from_env() -> anyhow::Result<Option<Self>> {
        let Some(url) = env_nonempty("NATS_URL") else {
            return Ok(None);
        };
        let port = ports::port_of(&url)
            .with_context(|| format!("NATS_URL={url} has no port; write it as nats://HOST:PORT"))?;
        let monitor_port = match env_nonempty("NATS_MONITOR_PORT") {
            Some(text) => text
                .parse()
                .with_context(|| format!("NATS_MONITOR_PORT={text} is not a port number"))?,
            None => 8222,
        };
        let tls = match env_nonempty("NATS_CA") {
            Some(ca) => {
                let ca_cert = PathBuf::from(ca);
                let (Some(cert), Some(key)) = (env_nonempty("NATS_CERT"), env_nonempty("NATS_KEY"))
                else {
                    bail!("NATS_CA is set but NATS_CERT or NATS_KEY is not: set all three for TLS");
                };
                let dir = ca_cert
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                Some(TlsFiles {
                    client_cert: PathBuf::from(cert),
                    client_key: PathBuf::from(key),
                    ca_cert,
                    ..TlsFiles::new(&dir)
                })
            }
            None => None,
        };
        Ok(Some(Self {
            mode: Mode::External,
            client_url: url,
            port,
            monitor_port,
            tls,
        }))
    }

    /// `nats://127.0.0.1:P`, or `tls://127.0.0.1:P` with TLS (the `NATS_URL` of an external one).
    pub fn client_url(&self) -> String {
        self.client_url.clone()
    }

    /// Client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// HTTP monitoring port.
    pub fn monitor_port(&self) -> u16 {
        self.monitor_port
    }

    /// `http://127.0.0.1:M`.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// TLS files when the server requires TLS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Process id of a server this handle started and that is running; `None` for an
    /// external server or after [`Self::stop`].
    pub fn pid(&self) -> Option<u32> {
        match &self.mode {
            Mode::Owned(owned) => owned.child.as_ref().map(Child::id),
            Mode::External => None,
        }
    }

    /// True for a handle made from `NATS_URL`.
    pub fn is_external(&self) -> bool {
        matches!(self.mode, Mode::External)
    }

    /// The server's log file (`None` for an external server).
    pub fn log_path(&self) -> Option<&Path> {
        match &self.mode {
            Mode::Owned(owned) => Some(&owned.log_path),
            Mode::External => None,
        }
    }

    /// The temporary directory with config, store, certificates and log.
    pub fn dir(&self) -> Option<&Path> {
        match &self.mode {
            Mode::Owned(owned) => Some(owned.dir.path()),
            Mode::External => None,
        }
    }

    /// Completes a NATS handshake (over mutual TLS with the client certificate when the
    /// server has TLS) and returns the server's INFO.
    pub fn ping(&self) -> anyhow::Result<ServerInfo> {
        let tls = self.tls.as_ref().map(probe::client_tls);
        probe::ping("127.0.0.1", self.port, tls.as_ref(), Duration::from_secs(5))
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL. Does nothing when already stopped.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        match &mut self.mode {
            Mode::Owned(owned) => owned.stop(),
            Mode::External => bail!(
                "the external server {} is not ours to stop",
                self.client_url
            ),
        }
    }

    /// Stops the server and starts it again with the same config, ports and store.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let Mode::Owned(owned) = &mut self.mode else {
            bail!(
                "the external server {} is not ours to restart",
                self.client_url
            );
        };
        owned.stop()?;
        let ports = owned.spawn_and_wait()?;
        if ports.client != self.port {
            bail!(
                "nats-server came back on port {} instead of {}",
                ports.client,
                self.port
            );
        }
        Ok(())
    }

    fn local_url(&self) -> String {
        let scheme = if self.tls.is_some() { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Mode::Owned(owned) = &mut self.mode {
            if let Err(e) = owned.stop() {
                eprintln!("nats-harness: {e:#}");
            }
        }
    }
}

impl Owned {
    /// Starts the process and waits for its ports file and `/healthz`.
    fn spawn_and_wait(&mut self) -> anyhow::Result<Ports> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("could not open {}", self.log_path.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("could not reopen {}", self.log_path.display()))?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config_path)
            .arg("--ports_file_dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("could not start {}", self.binary.display()))?;
        self.child = Some(child);
        match self.wait_ready() {
            Ok(ports) => Ok(ports),
            Err(e) => {
                let _ = self.stop();
                let tail = logs::tail_for_error(&self.log_path, LOG_LINES_IN_ERRORS);
                Err(anyhow::anyhow!("{e:#}\n{tail}"))
            }
        }
    }

    fn wait_ready(&mut self) -> anyhow::Result<Ports> {
        let pid = self
            .child
            .as_ref()
            .map(Child::id)
            .context("no child process")?;
        let deadline = Instant::now() + START_TIMEOUT;
        let ports = loop {
            if let Some(ports) = ports::read_ports(self.dir.path(), pid)? {
                break ports;
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                bail!(
                    "nats-server (pid {pid}) wrote no ports file within {} s",
                    START_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let monitor = ports
            .monitor
            .context("nats-server reports no monitoring port; is http_port set?")?;
        monitor::wait_healthy(monitor, START_TIMEOUT, || self.check_alive())?;
        Ok(ports)
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("nats-server is not running");
        };
        if let Some(status) = child.try_wait().context("could not poll nats-server")? {
            self.child = None;
            bail!("nats-server exited during start-up ({status})");
        }
        Ok(())
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        let pid = child.id();
        let _ = process::signal(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        child
            .kill()
            .with_context(|| format!("could not kill nats-server (pid {pid})"))?;
        child
            .wait()
            .with_context(|| format!("could not reap nats-server (pid {pid})"))?;
        Ok(())
    }
}

fn write_config(path: &Path, values: &ConfigValues) -> anyhow::Result<()> {
    let text = config::render(values)?;
    fs::write(path, text).with_context(|| format!("could not write {}", path.display()))
}

fn env_nonempty(key: &str) -> Option<String> {
    env::var(key).ok().filter(|v| !v.trim().is_empty())
}
