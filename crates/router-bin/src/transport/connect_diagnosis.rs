//! Why the NATS connection fails, in words. async-nats reports a failed reconnect attempt by
//! its kind only ("IO error"); after such a failure the router makes one plain connection
//! attempt with the same settings, and logs the reason that attempt gives (the certificate
//! problem, the refused port…) with what to do about it. At most once per [`INTERVAL`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::NatsConfig;
use crate::transport::options;

/// Shortest time between two diagnoses.
pub const INTERVAL: Duration = Duration::from_secs(30);
/// How long the diagnostic attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to do, by a phrase found in the failure's reason (first match wins).
const ADVICE: &[(&str, &str)] = &[
    (
        "UnknownIssuer",
        "nats.ca does not hold the CA that signed the server's certificate; point it at that CA \
         (_artifacts/certs/ca-cert.pem for `cargo xtask nats-start`)",
    ),
    (
        "not valid for name",
        "the server's certificate does not name the host in nats.url; dial a name it carries, or \
         reissue it (`cargo xtask certs --force`, then restart nats-server)",
    ),
    (
        "invalid peer certificate: Expired",
        "the server's certificate has expired; renew it (`cargo xtask certs --force`) and restart \
         nats-server",
    ),
    (
        "UnknownCA",
        "nats-server does not trust the CA of the client certificate: nats.cert must be signed by \
         the CA in nats-server's tls ca_file",
    ),
    (
        "CertificateExpired",
        "nats-server says the client certificate has expired or is not valid yet; renew it \
         (`cargo xtask certs --force`) and restart the router",
    ),
    (
        "BadCertificate",
        "nats-server refused the client certificate (it needs the clientAuth extended key usage \
         and a matching key)",
    ),
    (
        "CertificateRequired",
        "nats-server requires a client certificate: set nats.cert and nats.key",
    ),
    (
        "Connection refused",
        "nothing listens at nats.url: start nats-server (`cargo xtask nats-start --tls`) or fix \
         the URL",
    ),
];

/// What to do about a connection failure with this reason.
pub fn advice(reason: &str) -> &'static str {
    ADVICE
        .iter()
        .find(|(phrase, _)| reason.contains(phrase))
        .map(|(_, advice)| *advice)
        .unwrap_or("check nats.url and the TLS files; docs/TROUBLESHOOTING.md lists known causes")
}

/// Runs diagnoses for the router's connections, at most once per [`INTERVAL`].
pub struct ConnectDiagnosis {
    config: NatsConfig,
    epoch: Instant,
    /// Milliseconds after `epoch` + [`INTERVAL`] when the last diagnosis started (0: never).
    last_started_ms: AtomicU64,
}

impl ConnectDiagnosis {
    /// Diagnoses connections made with `config`.
    pub fn new(config: NatsConfig) -> Arc<Self> {
        Arc::new(ConnectDiagnosis {
            config,
            epoch: Instant::now(),
            last_started_ms: AtomicU64::new(0),
        })
    }

    /// Called on each failed connection attempt: starts a diagnosis in the background unless
    /// one started less than [`INTERVAL`] ago.
    pub fn on_failure(self: &Arc<Self>) {
        let interval_ms = INTERVAL.as_millis() as u64;
        let now_ms = self.epoch.elapsed().as_millis() as u64 + interval_ms;
        let last = self.last_started_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms.saturating_sub(last) < interval_ms {
            return;
        }
        if self
            .last_started_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move { this.run().await });
    }

    async fn run(&self) {
        let Some(reason) = self.failure_reason().await else {
            return;
        };
        tracing::error!(
            url = %self.config.url,
            %reason,
            advice = advice(&reason),
            "cannot connect to NATS"
        );
    }

    /// One connection attempt with the router's settings: why it failed, or `None` when it
    /// succeeded (the failure was transient).
    async fn failure_reason(&self) -> Option<String> {
        let options = options::base_options(&self.config, "diagnosis")
            .connection_timeout(ATTEMPT_TIMEOUT)
            .max_reconnects(1);
        let servers = match options::server_addrs(&self.config.url) {
            Ok(servers) => servers,
            Err(err) => return Some(format!("{err:#}")),
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT * 2, options.connect(servers)).await {
            Err(_) => Some("the connection attempt timed out".to_owned()),
            Ok(Err(err)) => Some(error_chain(&err)),
            Ok(Ok(_client)) => None,
        }
    }
}

/// The error and its causes, each once, joined by `: `: async-nats repeats its source in
/// its own message, so a cause already contained in the text is not added again.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_follows_the_reason() {
        let wrong_ca = "IO error: invalid peer certificate: UnknownIssuer";
        assert!(advice(wrong_ca).contains("nats.ca"));
        let refused = "IO error: Connection refused (os error 111)";
        assert!(advice(refused).contains("start nats-server"));
        let alert = "IO error: received fatal alert: UnknownCA";
        assert!(advice(alert).contains("does not trust the CA"));
        assert!(advice("something new").contains("TROUBLESHOOTING"));
    }

    #[test]
    fn a_cause_repeated_in_the_message_is_not_repeated() {
        let io = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let err = async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::Io, io);
        assert_eq!(
            error_chain(&err),
            "IO error: invalid peer certificate: UnknownIssuer"
        );
    }
}
