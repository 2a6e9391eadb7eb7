//! A connection of one identity that keeps the errors the server sent it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use router_bin::transport::connect_diagnosis::error_chain;
use router_bin::transport::nats::{self, ClientTls};

use crate::target::{ClientCert, Target};

/// Longest wait for a connection, a reply or a server error.
pub const WAIT: Duration = Duration::from_secs(3);

/// A connection of one identity, with the errors the server sent it.
pub struct Session {
    /// The connection.
    pub client: Client,
    /// Errors the server reported to this connection, oldest first.
    pub server_errors: Arc<Mutex<Vec<String>>>,
}

impl Session {
    /// Connects as `cert` to `target`, verifying the server against `ca`; the error is the
    /// connection's, with its causes.
    pub async fn open(
        target: Target,
        ca: &Path,
        cert: &ClientCert,
        name: &str,
    ) -> Result<Self, String> {
        let server_errors = Arc::new(Mutex::new(Vec::new()));
        let sink = server_errors.clone();
        let options = ConnectOptions::new()
            .name(format!("validate-tls-authz-{name}"))
            .connection_timeout(WAIT)
            .request_timeout(Some(WAIT))
            .max_reconnects(1)
            .ignore_discovered_servers()
            .event_callback(move |event| {
                let sink = sink.clone();
                async move {
                    if let Event::ServerError(err) = event {
                        if let Ok(mut errors) = sink.lock() {
                            errors.push(err.to_string());
                        }
                    }
                }
            });
        let tls = ClientTls {
            ca: Some(ca.to_path_buf()),
            client: Some((cert.cert.clone(), cert.key.clone())),
        };
        let url = format!("tls://127.0.0.1:{}", target.port);
        match tokio::time::timeout(
            WAIT * 2,
            nats::tls_options(options, Some(&tls)).connect(url),
        )
        .await
        {
            Err(_) => Err("no connection within 6 s".to_owned()),
            Ok(Err(err)) => Err(error_chain(&err)),
            Ok(Ok(client)) => Ok(Session {
                client,
                server_errors,
            }),
        }
    }

    /// Forgets the errors reported so far (before the next case).
    pub fn forget_errors(&self) {
        if let Ok(mut errors) = self.server_errors.lock() {
            errors.clear();
        }
    }

    /// Waits up to [`WAIT`] for the server to report a permissions violation of `kind`
    /// (`Publish`, `Subscription`) whose subject starts with `subject`; returns its text.
    pub async fn violation(&self, kind: &str, subject: &str) -> Option<String> {
        let needle = format!("permissions violation for {kind} to \"{subject}").to_lowercase();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let _ = self.client.flush().await;
            if let Ok(errors) = self.server_errors.lock() {
                if let Some(found) = errors.iter().find(|e| e.to_lowercase().contains(&needle)) {
                    return Some(found.clone());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
