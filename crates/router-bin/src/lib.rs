//! The Beamline Router service as a library: [`start`] a router from a [`Config`] and a
//! shutdown future, get back a [`RunningRouter`] with its HTTP address, readiness and
//! completion. The `router` binary adds the command line, logging and signals.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let config = router_bin::Config::default();
//! let router = router_bin::start(config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! router.ready().await;
//! println!("metrics on http://{}/metrics", router.http_addr());
//! router.stopped().await
//! # }
//! ```
//!
//! One folder per concern; imports run one way, from the top of this list down:
//!
//! - [`cli`] — the command line (flags, the operator's subcommands `router decide|feedback|
//!   status|top`);
//! - [`service`] — start-up and the request path (decide, feedback, control, DLQ,
//!   backpressure, supervisor);
//! - [`http`] — `/metrics`, `/healthz`, `/readyz`;
//! - [`fleet`] — what every router serves from the same source (policies, sticky sessions,
//!   idempotency keys in JetStream buckets);
//! - [`transport`] — NATS connections, TLS, scoped subjects, readiness;
//! - [`telemetry`] — metrics, decision records, traces;
//! - [`config`] and [`runtime`] — settings, clock, shutdown signal, memory.

pub mod cli;
pub mod config;
pub mod fleet;
pub mod http;
pub mod runtime;
pub mod service;
pub mod telemetry;
pub mod transport;

#[cfg(test)]
mod layering;

pub use cli::Cli;
pub use config::{Config, LogFormat, Responder};
pub use service::{check, start, ConfigError, RunningRouter};
