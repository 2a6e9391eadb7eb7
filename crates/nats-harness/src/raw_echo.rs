//! The bench's raw echo (`raw-echo`) as a child process: started against a server with the
//! router's certificate, waited for until it answers, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::process::Signal;
use crate::NatsServer;

/// The `raw-echo` binary as a child process, connected with the router's certificate (its
/// identity may subscribe below `beamline.`), replying with a copy of one of the router's
/// replies to the corpus (`--reply-like`); killed when dropped.
pub struct RawEchoProcess {
    child: Child,
    log: PathBuf,
}

impl RawEchoProcess {
    /// How long it may take to connect and subscribe.
    const READY_TIMEOUT: Duration = Duration::from_secs(15);

    /// Starts it against `server`, its stderr in `log`, and waits until it says it answers.
    ///
    /// It subscribes below `subject_prefix` and copies its reply from one of the replies of
    /// the router at `reply_like` (started before it).
    pub fn start(
        binary: &Path,
        server: &NatsServer,
        log: &Path,
        subject_prefix: &str,
        reply_like: &str,
    ) -> anyhow::Result<RawEchoProcess> {
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create the raw echo log {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("--nats-url")
            .arg(server.client_url())
            .args(["--subject-prefix", subject_prefix])
            .args(["--reply-like", reply_like]);
        if let Some(tls) = server.tls() {
            command.args(tls.router_tls_args());
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut raw_echo = RawEchoProcess {
            child,
            log: log.to_path_buf(),
        };
        raw_echo.wait_ready()?;
        Ok(raw_echo)
    }

    /// Waits for its "answering" line; fails with its log when it exits or takes too long.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Self::READY_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains("raw-echo: answering") {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("raw-echo exited ({status}) before answering; its log:\n{text}");
            }
            if Instant::now() > deadline {
                bail!(
                    "raw-echo did not subscribe within {:?}; its log:\n{text}",
                    Self::READY_TIMEOUT
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let _ = crate::process::signal(self.child.id(), Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RawEchoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
