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
//! One file per concern: [`decide`] (the decide path), [`feedback`], [`control`] (micro
//! service and backpressure status), [`dlq`], [`health`] (HTTP), [`supervisor`] (periodic
//! backpressure evaluation), [`backpressure`], [`readiness`], [`nats`] (connections and TLS
//! options), [`tls`] (certificate checks), [`policies`] and [`kv_policies`] (policy sources),
//! [`sticky_sync`] and [`buckets`] (what a fleet shares), [`service`] (start-up and the task
//! set).

pub mod backpressure;
pub mod bucket_watch;
pub mod buckets;
pub mod canary;
pub mod clock;
pub mod config;
pub mod connect_diagnosis;
pub mod control;
pub mod decide;
pub mod dlq;
pub mod feedback;
pub mod fleet_idempotency;
pub mod health;
pub mod kv_policies;
pub mod memory;
pub mod metrics;
pub mod micro;
pub mod nats;
pub mod ops;
pub mod policies;
pub mod readiness;
pub mod scoped;
pub mod service;
pub mod shutdown;
pub mod sticky_sync;
pub mod supervisor;
pub mod tls;

pub use config::{Cli, Config, LogFormat, Responder};
pub use service::{check, start, ConfigError, RunningRouter};
