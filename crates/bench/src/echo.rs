//! The trivial responder the router is compared with: replies `{"ok":true}` to every
//! request on its own connection, so the echo phase measures raw NATS request-reply.

use anyhow::Context;
use async_nats::Client;
use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinHandle;

/// The fixed reply body.
pub const ECHO_REPLY: &[u8] = br#"{"ok":true}"#;

/// A running echo responder; stopped by [`EchoResponder::stop`] or when dropped.
#[derive(Debug)]
pub struct EchoResponder {
    task: JoinHandle<u64>,
}

impl EchoResponder {
    /// Subscribes on `subject` with `client` (a connection of its own) and starts answering.
    /// Returns once the server has registered the subscription.
    pub async fn start(client: Client, subject: &str) -> anyhow::Result<Self> {
        let mut subscription = client
            .subscribe(subject.to_owned())
            .await
            .with_context(|| format!("subscribing the echo responder to {subject}"))?;
        client
            .flush()
            .await
            .context("flushing the echo responder's subscription")?;
        let reply = Bytes::from_static(ECHO_REPLY);
        let task = tokio::spawn(async move {
            let mut answered = 0u64;
            // Ends when the subscription closes (connection dropped) or the task is aborted.
            while let Some(message) = subscription.next().await {
                if let Some(to) = message.reply {
                    if client.publish(to, reply.clone()).await.is_ok() {
                        answered += 1;
                    }
                }
            }
            answered
        });
        Ok(Self { task })
    }

    /// Like [`EchoResponder::start`], but answers through a NATS micro service endpoint
    /// (service `beamline-bench-echo`), which records per-request stats behind a mutex.
    pub async fn start_service(client: Client, subject: &str) -> anyhow::Result<Self> {
        use async_nats::service::ServiceExt;
        let service = client
            .service_builder()
            .start("beamline-bench-echo", "0.1.0")
            .await
            .map_err(|err| anyhow::anyhow!("starting the echo micro service: {err}"))?;
        let mut endpoint = service
            .endpoint(subject.to_owned())
            .await
            .map_err(|err| anyhow::anyhow!("adding the echo endpoint {subject}: {err}"))?;
        client
            .flush()
            .await
            .context("flushing the echo service's subscription")?;
        let reply = Bytes::from_static(ECHO_REPLY);
        let task = tokio::spawn(async move {
            let _service = service;
            let mut answered = 0u64;
            while let Some(request) = endpoint.next().await {
                if request.respond(Ok(reply.clone())).await.is_ok() {
                    answered += 1;
                }
            }
            answered
        });
        Ok(Self { task })
    }

    /// Stops answering (the same as dropping it).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for EchoResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
