//! `router`: the Beamline Router service.
//!
//! Exit codes: 0 after a clean shutdown, 1 on a runtime failure (e.g. the metrics port is
//! busy), 2 on a configuration problem (bad file, missing or expired certificate, plaintext
//! against a TLS-only server).

mod app;
mod bucket_watch;
mod buckets;
mod config;
mod connect_diagnosis;
mod dlq;
mod http;
mod kv_policies;
mod memory;
mod metrics;
mod nats;
mod service;
mod sticky_sync;
mod tls;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::config::{Cli, Config, LogFormat};

fn main() -> ExitCode {
    memory::configure();
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("router: {err:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("router: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(config, cli.check)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("router: {err:#}");
            if err.downcast_ref::<app::ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
