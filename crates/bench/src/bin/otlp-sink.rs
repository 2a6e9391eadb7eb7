//! `otlp-sink`: an OTLP/HTTP receiver that decodes every export (the OpenTelemetry
//! protocol's own protobuf messages) and counts its spans, then drops them: the collector
//! side of a benchmark of the router with traces on
//! (`cargo xtask bench --router-arg=--otlp-endpoint=http://127.0.0.1:4318
//! --router-arg=--otlp-protocol=http`). It prints the count every 10 s and when stopped.
//!
//! Exit status: 0 stopped by a signal, 1 the address is taken.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

/// OTLP/HTTP receiver that counts spans and drops them.
#[derive(Debug, Parser)]
#[command(name = "otlp-sink", version)]
struct Args {
    /// Where to listen (`POST /v1/traces`).
    #[arg(long, default_value = "127.0.0.1:4318")]
    listen: SocketAddr,
}

#[derive(Default)]
struct Counts {
    exports: AtomicU64,
    spans: AtomicU64,
    refused: AtomicU64,
}

impl Counts {
    fn line(&self) -> String {
        format!(
            "otlp-sink: {} exports, {} spans, {} bodies refused",
            self.exports.load(Ordering::Relaxed),
            self.spans.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed)
        )
    }
}

async fn export(counts: Arc<Counts>, body: Bytes) -> (StatusCode, Vec<u8>) {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            let spans: usize = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            counts.exports.fetch_add(1, Ordering::Relaxed);
            counts.spans.fetch_add(spans as u64, Ordering::Relaxed);
            let answer = ExportTraceServiceResponse {
                partial_success: None,
            };
            (StatusCode::OK, answer.encode_to_vec())
        }
        Err(_) => {
            counts.refused.fetch_add(1, Ordering::Relaxed);
            (StatusCode::BAD_REQUEST, Vec::new())
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "otlp-sink: cannot listen on {}: {err} (pick another with --listen)",
                args.listen
            );
            return ExitCode::from(1);
        }
    };
    let counts = Arc::new(Counts::default());
    let handler = {
        let counts = counts.clone();
        move |body: Bytes| export(counts.clone(), body)
    };
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(handler));
    let reporter = {
        let counts = counts.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            every.tick().await;
            loop {
                every.tick().await;
                println!("{}", counts.line());
            }
        })
    };
    println!("otlp-sink: listening on http://{}/v1/traces", args.listen);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await;
    reporter.abort();
    println!("{}", counts.line());
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("otlp-sink: {err}");
            ExitCode::from(1)
        }
    }
}
