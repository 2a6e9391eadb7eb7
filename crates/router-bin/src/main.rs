//! `router`: the Beamline Router service — command line, logging and signals around
//! [`router_bin::start`] — and the operator's subcommands (`router decide|feedback|status|top`,
//! [`router_bin::cli`]).
//!
//! Exit codes: 0 after a clean shutdown, 1 on a runtime failure (e.g. the metrics port is
//! busy), 2 on a configuration problem (bad file, missing or expired certificate, plaintext
//! against a TLS-only server).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

use router_bin::{Cli, Config, ConfigError, LogFormat};

fn main() -> ExitCode {
    router_bin::runtime::memory::configure();
    let cli = Cli::parse();
    if let Some(command) = cli.command.clone() {
        let config = match cli.load_client_config() {
            Ok(config) => config,
            Err(err) => {
                eprintln!("router: {err:#}");
                return ExitCode::from(2);
            }
        };
        return match runtime() {
            Some(runtime) => runtime.block_on(router_bin::cli::run(command, &config)),
            None => ExitCode::FAILURE,
        };
    }
    let config = match cli.load_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("router: {err:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    if cli.check {
        return match router_bin::check(&config) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(err) => fail(&err),
        };
    }
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(serve(config, cli.http_addr_file)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// The async runtime, or `None` after saying why it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(err) => {
            eprintln!("router: cannot start the async runtime: {err}");
            None
        }
    }
}

/// Logs the error and maps it to the exit code: 2 for configuration, 1 otherwise.
fn fail(err: &anyhow::Error) -> ExitCode {
    tracing::error!("{err:#}");
    eprintln!("router: {err:#}");
    if err.downcast_ref::<ConfigError>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the router until SIGTERM or Ctrl-C; SIGHUP reloads the policies. The HTTP address
/// goes to `http_addr_file` once listening.
async fn serve(config: Config, http_addr_file: Option<PathBuf>) -> anyhow::Result<()> {
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let router = router_bin::start(config, async {
        let _ = stop_rx.await;
    })
    .await?;
    if let Some(path) = http_addr_file {
        // Written whole, then renamed: a reader never sees half an address.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, router.http_addr().to_string())
            .and_then(|()| std::fs::rename(&partial, &path))
            .with_context(|| {
                format!(
                    "cannot write the HTTP address to {} (--http-addr-file)",
                    path.display()
                )
            })?;
    }
    loop {
        tokio::select! {
            _ = hangup.recv() => router.reload_policies(),
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    let _ = stop_tx.send(());
    router.stopped().await
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal: a file or a journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
