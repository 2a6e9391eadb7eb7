//! A whole run: connect, echo phase and/or router phase, router metrics, candidate.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::Client;

use crate::cli::{Load, Plan, ECHO_SUBJECT};
use crate::connect;
use crate::corpus::Corpus;
use crate::duration::format_duration;
use crate::echo::EchoResponder;
use crate::environment::{now_timestamp, Environment, HostFacts};
use crate::load::{run_phase, PhaseSpec};
use crate::report::Candidate;
use crate::router_metrics;
use crate::stats::PhaseStats;

/// How long reading the router's /metrics may take.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the plan and returns the candidate; a run that could not be done comes back with
/// `status: failed` and the reason (never as an `Err`), so it can still be written out.
pub async fn run(plan: &Plan, host: HostFacts) -> Candidate {
    let mut environment = environment(plan, host);
    let clients = match connect::connect_requesters(plan).await {
        Ok(clients) => clients,
        Err(err) => return failed(environment, None, None, &err),
    };
    environment.nats_server_version = clients
        .first()
        .map(|c| c.server_info().version)
        .filter(|v| !v.is_empty());

    let mut echo = None;
    if plan.mode.runs_echo() {
        match echo_phase(plan, &clients).await {
            Ok(stats) => echo = Some(stats),
            Err(err) => return failed(environment, None, None, &err),
        }
    }
    let mut router = None;
    if plan.mode.runs_router() {
        match router_phase(plan, &clients).await {
            Ok(stats) => router = Some(stats),
            Err(err) => return failed(environment, None, echo.as_ref(), &err),
        }
    }

    let mut candidate = Candidate::new(environment, router.as_ref(), echo.as_ref());
    if plan.mode.runs_router() {
        add_router_metrics(plan, &mut candidate).await;
    }
    if cfg!(debug_assertions) {
        candidate.warnings.push(
            "router-bench is a debug build: its figures are far below a release build's; \
             build with --release before comparing or setting a baseline"
                .to_owned(),
        );
    }
    for (name, stats) in [("echo", &echo), ("router", &router)] {
        if let Some(stats) = stats {
            if stats.requests_ok == 0 {
                candidate.fail(format!(
                    "no request of the {name} phase succeeded ({} sent; errors by kind: {:?})",
                    stats.requests_total, stats.errors_by_kind
                ));
                break;
            }
        }
    }
    candidate
}

fn failed(
    environment: Environment,
    router: Option<&PhaseStats>,
    echo: Option<&PhaseStats>,
    err: &anyhow::Error,
) -> Candidate {
    let mut candidate = Candidate::new(environment, router, echo);
    candidate.fail(format!("{err:#}"));
    candidate
}

fn environment(plan: &Plan, host: HostFacts) -> Environment {
    let (timestamp, timestamp_unix_ms) = now_timestamp();
    Environment {
        git_commit: host.git_commit,
        git_dirty: host.git_dirty,
        cpu_count: host.cpu_count,
        kernel: host.kernel,
        nats_server_version: None,
        tls: plan.tls.is_some(),
        tls_client_cert: plan.tls.as_ref().is_some_and(|t| t.client.is_some()),
        nats_url: plan.nats_url.clone(),
        mode: plan.mode.name().to_owned(),
        load: match plan.load {
            Load::Closed => "closed".to_owned(),
            Load::Open { .. } => "open".to_owned(),
        },
        rate: match plan.load {
            Load::Closed => None,
            Load::Open { rate } => Some(rate),
        },
        concurrency: plan.concurrency,
        connections: plan.connections,
        duration_s: plan.duration.as_secs_f64(),
        warmup_s: plan.warmup.as_secs_f64(),
        request_timeout_s: plan.request_timeout.as_secs_f64(),
        router_subject: plan.router_subject.clone(),
        bench_build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .to_owned(),
        bench_version: env!("CARGO_PKG_VERSION").to_owned(),
        timestamp,
        timestamp_unix_ms,
    }
}

fn spec(plan: &Plan, label: &'static str, subject: &str) -> PhaseSpec {
    PhaseSpec {
        label,
        subject: subject.to_owned(),
        load: plan.load,
        concurrency: plan.concurrency,
        warmup: plan.warmup,
        duration: plan.duration,
        request_timeout: plan.request_timeout,
        progress: plan.progress,
    }
}

/// Raw request-reply against the bench's own responder, on a connection of its own.
async fn echo_phase(plan: &Plan, clients: &[Client]) -> anyhow::Result<PhaseStats> {
    let responder_client = connect::connect(plan, "router-bench-echo-responder").await?;
    let responder = if plan.echo_service {
        EchoResponder::start_service(responder_client, ECHO_SUBJECT).await?
    } else {
        EchoResponder::start(responder_client, ECHO_SUBJECT).await?
    };
    let corpus = Arc::new(Corpus::new(plan.users));
    let first = clients.first().context("no requester connection")?;
    connect::wait_for_responder(
        first,
        ECHO_SUBJECT,
        corpus.next_body(),
        plan.wait_for_responders,
    )
    .await?;
    let stats = run_phase(&spec(plan, "echo", ECHO_SUBJECT), clients, corpus).await;
    responder.stop();
    stats
}

/// The router's decide subject.
async fn router_phase(plan: &Plan, clients: &[Client]) -> anyhow::Result<PhaseStats> {
    let corpus = Arc::new(Corpus::new(plan.users));
    let first = clients.first().context("no requester connection")?;
    connect::wait_for_responder(
        first,
        &plan.router_subject,
        corpus.next_body(),
        plan.wait_for_responders,
    )
    .await?;
    run_phase(&spec(plan, "router", &plan.router_subject), clients, corpus).await
}

/// Reads backpressure and memory from the router's /metrics; anything unreadable stays
/// `null` in the candidate with a warning (the gate then fails on the missing metric).
async fn add_router_metrics(plan: &Plan, candidate: &mut Candidate) {
    let Some(url) = plan.metrics_url.clone() else {
        candidate.warnings.push(
            "no --metrics-url: backpressure_active_total and mem_mb were not measured".to_owned(),
        );
        return;
    };
    let fetched = tokio::task::spawn_blocking(move || router_metrics::fetch(&url, METRICS_TIMEOUT))
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
    match fetched {
        Ok(metrics) => {
            for name in metrics.missing() {
                candidate
                    .warnings
                    .push(format!("the router's /metrics does not export {name}"));
            }
            candidate.backpressure_active_total = metrics.backpressure_active_total;
            candidate.mem_mb = metrics.mem_mb;
        }
        Err(err) => candidate.warnings.push(format!("{err:#}")),
    }
}

/// One line describing the plan, printed before the run.
pub fn describe(plan: &Plan) -> String {
    let load = match plan.load {
        Load::Closed => format!("closed loop, {} requesters", plan.concurrency),
        Load::Open { rate } => format!(
            "open loop at {rate} req/s, up to {} in flight",
            plan.concurrency
        ),
    };
    format!(
        "router-bench: mode {}, {load} over {} connection(s), warm-up {}, measure {}, {} {}",
        plan.mode.name(),
        plan.connections,
        format_duration(plan.warmup),
        format_duration(plan.duration),
        plan.nats_url,
        if plan.tls.is_some() {
            "(TLS)"
        } else {
            "(plain)"
        },
    )
}
