//! The `router` binary as a child process: started against a [`NatsServer`], with its HTTP
//! address read back from the file it writes (`--http-addr-file`), and killed when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{NatsServer, TlsFiles};

/// How to start a router.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// The `router` executable.
    pub binary: PathBuf,
    /// Policy directory.
    pub policy_dir: PathBuf,
    /// Where its log goes (JSON lines).
    pub log: PathBuf,
    /// More flags.
    pub extra_args: Vec<String>,
}

/// A running router process.
#[derive(Debug)]
pub struct RouterProcess {
    child: Child,
    /// Its HTTP address (`/metrics`, `/healthz`, `/readyz`).
    pub http: SocketAddr,
    /// Its log file.
    pub log: PathBuf,
}

impl RouterProcess {
    /// Starts the router against `server` (TLS files passed when the server has TLS) and waits
    /// until `/readyz` answers 200.
    pub fn start(server: &NatsServer, options: &RouterOptions) -> anyhow::Result<Self> {
        let router = RouterProcess::spawn(server, options)?;
        router.wait_ready(Duration::from_secs(15))?;
        Ok(router)
    }

    /// Starts the router without waiting for readiness (it still waits for the HTTP address).
    pub fn spawn(server: &NatsServer, options: &RouterOptions) -> anyhow::Result<Self> {
        RouterProcess::spawn_at(&server.client_url(), server.tls(), options)
    }

    /// Starts the router against the server(s) at `urls` (comma-separated), presenting the
    /// client certificate of `tls` when given; waits for its HTTP address, not for readiness.
    pub fn spawn_at(
        urls: &str,
        tls: Option<&TlsFiles>,
        options: &RouterOptions,
    ) -> anyhow::Result<Self> {
        let log_file = std::fs::File::create(&options.log)
            .with_context(|| format!("cannot create router log {}", options.log.display()))?;
        let addr_file = options.log.with_extension("http-addr");
        let _ = std::fs::remove_file(&addr_file);
        let mut command = Command::new(&options.binary);
        command
            .arg("--http-addr-file")
            .arg(&addr_file)
            .arg("--config")
            .arg("/dev/null")
            .arg("--nats-url")
            .arg(urls)
            .arg("--policy-dir")
            .arg(&options.policy_dir)
            .arg("--metrics-addr")
            .arg("127.0.0.1:0")
            .arg("--log-format")
            .arg("json")
            .arg("--log-level")
            .arg("info");
        if let Some(tls) = tls {
            command.args(tls.router_tls_args());
        }
        command.args(&options.extra_args);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", options.binary.display()))?;
        match wait_for_http_addr(
            &addr_file,
            &options.log,
            &mut child,
            Duration::from_secs(15),
        ) {
            Ok(http) => Ok(RouterProcess {
                child,
                http,
                log: options.log.clone(),
            }),
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(err)
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `/readyz` until it answers 200.
    pub fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = self.get("/readyz") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "router not ready after {timeout:?}; its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET on the router's HTTP listener: (status, body).
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let reply = crate::monitor::get_addr(self.http, path, Duration::from_secs(5))?;
        Ok((reply.status, reply.body))
    }

    /// The value of one Prometheus series (name with labels, exactly as rendered).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").ok()?;
        body.lines()
            .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: crate::process::Signal) {
        let _ = crate::process::signal(self.child.id(), signal);
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.signal(crate::process::Signal::SIGTERM);
        if let Some(status) = self.wait_exit(grace) {
            return Some(status);
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the router wrote its HTTP address to `addr_file`; fails with its log when it
/// exits first or takes longer than `timeout`.
fn wait_for_http_addr(
    addr_file: &Path,
    log: &Path,
    child: &mut Child,
    timeout: Duration,
) -> anyhow::Result<SocketAddr> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(addr_file) {
            return text
                .trim()
                .parse()
                .with_context(|| format!("{} holds no address: {text:?}", addr_file.display()));
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "router exited ({status}) before listening; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "router never wrote its HTTP address to {}; its log:\n{}",
                addr_file.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
