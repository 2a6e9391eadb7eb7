//! A whole run: connect, warm up, measure (one window, or interleaved rounds of echo and
//! router, and of the raw echo when it is named), read the router's metrics and the
//! processes' memory, build the candidate.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::Client;

use crate::cli::{Load, Mode, Plan};
use crate::connect;
use crate::corpus::Corpus;
use crate::environment::{now_timestamp, Environment, HostFacts};
use crate::figures::{block_pattern, RoundFigures, Side};
use crate::load::{run_phase, PhaseResult, PhaseSpec};
use crate::process::ProcessProbe;
use crate::report::{Candidate, Measured};
use crate::router_metrics::{self, RouterMetrics};
use crate::second_shape;
use humantime::format_duration;

/// How long reading the router's /metrics may take.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the plan and returns the candidate; a run that could not be done comes back with
/// `status: failed` and the reason (never as an `Err`), so it can still be written out.
pub async fn run(plan: &Plan, host: HostFacts) -> Candidate {
    let mut environment = environment(plan, host);
    let clients = match connect::connect_requesters(plan).await {
        Ok(clients) => clients,
        Err(err) => return failed(environment, &Measured::default(), &err),
    };
    environment.nats_server_version = clients
        .first()
        .map(|c| c.server_info().version)
        .filter(|v| !v.is_empty());

    let mut measured = Measured::default();
    let outcome = measure(plan, &clients, &mut measured).await;
    let mut candidate = Candidate::new(environment, &measured);
    let targets = match outcome {
        Ok(targets) => targets,
        Err(err) => {
            candidate.fail(format!("{err:#}"));
            return candidate;
        }
    };
    // The gated figures (memory and metrics included) are read before the second shape.
    add_process_figures(plan, &mut candidate).await;
    if let Some(shape) = plan.second_shape {
        let (measured, warnings) = second_shape::measure(plan, &clients, &targets, shape).await;
        candidate.second_shape = Some(measured);
        candidate.warnings.extend(warnings);
    }
    if cfg!(debug_assertions) {
        candidate.warnings.push(
            "router-bench is a debug build: its figures are far below a release build's; \
             build with --release before comparing or setting a baseline"
                .to_owned(),
        );
    }
    for side in [Side::RawEcho, Side::Echo, Side::Router] {
        if let Some(totals) = measured.side(side) {
            let stats = totals.stats();
            if stats.requests_ok == 0 {
                candidate.fail(format!(
                    "no request to the {} succeeded ({} sent; errors by kind: {:?})",
                    side.as_str(),
                    stats.requests_total,
                    stats.errors_by_kind
                ));
                break;
            }
        }
    }
    candidate
}

fn failed(environment: Environment, measured: &Measured, err: &anyhow::Error) -> Candidate {
    let mut candidate = Candidate::new(environment, measured);
    candidate.fail(format!("{err:#}"));
    candidate
}

/// The subject, probe and corpus of one side.
pub(crate) struct Target {
    side: Side,
    subject: String,
    probe: Option<ProcessProbe>,
    corpus: Arc<Corpus>,
}

/// The sides a run measured.
pub(crate) struct Targets {
    pub(crate) raw_echo: Option<Target>,
    pub(crate) echo: Option<Target>,
    pub(crate) router: Option<Target>,
}

/// Measures what the plan asks for into `measured` (kept also when a later step fails);
/// returns the sides, so that a second shape can measure them again.
async fn measure(
    plan: &Plan,
    clients: &[Client],
    measured: &mut Measured,
) -> anyhow::Result<Targets> {
    let echo = match (plan.mode.runs_echo(), &plan.echo_subject) {
        (true, Some(subject)) => Some(target(plan, Side::Echo, subject, plan.echo_pid)?),
        _ => None,
    };
    let raw_echo = match (plan.mode, &plan.raw_echo_subject) {
        (Mode::Interleaved, Some(subject)) => {
            Some(target(plan, Side::RawEcho, subject, plan.raw_echo_pid)?)
        }
        _ => None,
    };
    let router = match plan.mode.runs_router() {
        true => Some(target(
            plan,
            Side::Router,
            &plan.router_subject,
            plan.router_pid,
        )?),
        false => None,
    };
    let first = clients.first().context("no requester connection")?;
    for target in [&raw_echo, &echo, &router].into_iter().flatten() {
        connect::wait_for_responder(
            first,
            &target.subject,
            target.corpus.next_body(),
            plan.wait_for_responders,
        )
        .await?;
    }
    match (plan.mode, &echo, &router) {
        (Mode::Interleaved, Some(echo), Some(router)) => {
            // The raw echo warms up last: a block starts with it, so its first round follows
            // its own side, as in every later block.
            for target in [Some(echo), Some(router), raw_echo.as_ref()]
                .into_iter()
                .flatten()
            {
                let warm = spec(
                    plan,
                    format!("{} warm-up", target.side.as_str()),
                    &target.subject,
                    plan.concurrency,
                    (plan.warmup, Duration::ZERO),
                );
                run_phase(&warm, clients, target.corpus.clone(), None).await?;
            }
            interleaved_blocks(
                plan,
                clients,
                [raw_echo.as_ref(), Some(echo), Some(router)],
                plan.concurrency,
                plan.blocks,
                measured,
            )
            .await?;
        }
        (_, Some(target), None) | (_, None, Some(target)) => {
            let phase = spec(
                plan,
                target.side.as_str().to_owned(),
                &target.subject,
                plan.concurrency,
                (plan.warmup, plan.duration),
            );
            let result = run_phase(&phase, clients, target.corpus.clone(), target.probe).await?;
            measured.record(0, target.side, result);
        }
        _ => anyhow::bail!("nothing to measure: the plan names no subject"),
    }
    Ok(Targets {
        raw_echo,
        echo,
        router,
    })
}

/// `blocks` blocks of interleaved rounds of `[raw echo, echo, router]` (the raw echo when it
/// is measured) at `concurrency` callers, recorded into `measured`.
pub(crate) async fn interleaved_blocks(
    plan: &Plan,
    clients: &[Client],
    [raw_echo, echo, router]: [Option<&Target>; 3],
    concurrency: usize,
    blocks: usize,
    measured: &mut Measured,
) -> anyhow::Result<()> {
    let (Some(echo), Some(router)) = (echo, router) else {
        anyhow::bail!("interleaved rounds need the echo responder and the router");
    };
    let pattern = block_pattern(raw_echo.is_some());
    let total = blocks * pattern.len();
    let callers = if concurrency == plan.concurrency {
        String::new()
    } else {
        format!(" ({concurrency} callers)")
    };
    for block in 0..blocks {
        for &side in pattern {
            let target = match (side, raw_echo) {
                (Side::RawEcho, Some(raw_echo)) => raw_echo,
                (Side::Echo, _) => echo,
                _ => router,
            };
            let index = measured.rounds.len() + 1;
            let label = format!("{} {index}/{total}{callers}", side.as_str());
            let timing = (plan.round_warmup, plan.round);
            let round = spec(plan, label, &target.subject, concurrency, timing);
            let result = run_phase(&round, clients, target.corpus.clone(), target.probe).await?;
            measured.record(block, side, result);
        }
    }
    Ok(())
}

fn target(plan: &Plan, side: Side, subject: &str, pid: Option<u32>) -> anyhow::Result<Target> {
    let probe = pid
        .map(ProcessProbe::new)
        .transpose()
        .with_context(|| format!("--{}-pid", side.as_str().replace('_', "-")))?;
    Ok(Target {
        side,
        subject: subject.to_owned(),
        probe,
        corpus: Arc::new(Corpus::new(plan.users)),
    })
}

/// One phase of `concurrency` callers: `(warm-up, measured)` on `subject`.
fn spec(
    plan: &Plan,
    label: String,
    subject: &str,
    concurrency: usize,
    (warmup, duration): (Duration, Duration),
) -> PhaseSpec {
    PhaseSpec {
        label,
        subject: subject.to_owned(),
        load: plan.load,
        concurrency,
        warmup,
        duration,
        request_timeout: plan.request_timeout,
        progress: plan.progress,
    }
}

impl Measured {
    /// Adds one measured round of `side` in `block`.
    fn record(&mut self, block: usize, side: Side, result: PhaseResult) {
        let stats = result.stats();
        self.rounds.push(RoundFigures {
            block,
            side,
            rps: stats.rps,
            p50_ms: stats.latency.p50_ms.unwrap_or(0.0),
            p99_ms: stats.latency.p99_ms.unwrap_or(0.0),
            requests: stats.requests_total,
            errors: stats.errors_total,
            cpu_s: result.cpu_s,
        });
        let totals = self.totals.entry(side.as_str().to_owned()).or_default();
        totals.add(&result);
    }
}

/// The processes' memory (from /proc when their pids are known) and the router's
/// backpressure counter (from its /metrics); what cannot be read stays `null` with a
/// warning (the gate then fails on the missing metric).
async fn add_process_figures(plan: &Plan, candidate: &mut Candidate) {
    let pids = [
        (Side::Router, plan.router_pid),
        (Side::Echo, plan.echo_pid),
        (
            Side::RawEcho,
            plan.raw_echo_pid.filter(|_| raw_echo_measured(plan)),
        ),
    ];
    for (side, pid) in pids {
        let Some(pid) = pid else { continue };
        match ProcessProbe::new(pid).and_then(|p| p.memory()) {
            Ok(memory) => candidate.set_peak_memory(side, memory.peak_mib),
            Err(err) => candidate.warnings.push(format!(
                "memory of the {} (pid {pid}): {err:#}",
                side.as_str()
            )),
        }
    }
    if !plan.mode.runs_router() {
        return;
    }
    let Some(url) = plan.metrics_url.clone() else {
        candidate
            .warnings
            .push("no --metrics-url: backpressure_active_total was not measured".to_owned());
        return;
    };
    match fetch_router_metrics(url).await {
        Ok(metrics) => {
            for name in metrics.missing() {
                candidate
                    .warnings
                    .push(format!("the router's /metrics does not export {name}"));
            }
            candidate.backpressure_active_total = metrics.backpressure_active_total;
            if candidate.mem_mb.is_none() {
                candidate.mem_mb = metrics.mem_mb;
            }
        }
        Err(err) => candidate.warnings.push(format!("{err:#}")),
    }
}

/// Reads the router's /metrics at `url` off the async runtime, within [`METRICS_TIMEOUT`].
pub(crate) async fn fetch_router_metrics(url: String) -> anyhow::Result<RouterMetrics> {
    tokio::task::spawn_blocking(move || router_metrics::fetch(&url, METRICS_TIMEOUT))
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r)
}

/// True when the plan measures the raw echo (interleaved rounds with its subject).
fn raw_echo_measured(plan: &Plan) -> bool {
    plan.mode == Mode::Interleaved && plan.raw_echo_subject.is_some()
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
        round_s: (plan.mode == Mode::Interleaved).then_some(plan.round.as_secs_f64()),
        round_warmup_s: (plan.mode == Mode::Interleaved).then_some(plan.round_warmup.as_secs_f64()),
        blocks: (plan.mode == Mode::Interleaved).then_some(plan.blocks),
        request_timeout_s: plan.request_timeout.as_secs_f64(),
        router_subject: plan.router_subject.clone(),
        echo_subject: plan.echo_subject.clone(),
        raw_echo_subject: plan
            .raw_echo_subject
            .clone()
            .filter(|_| raw_echo_measured(plan)),
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

/// One line describing the plan, printed before the run.
pub fn describe(plan: &Plan) -> String {
    let load = match plan.load {
        Load::Closed => format!("closed loop, {} requesters", plan.concurrency),
        Load::Open { rate } => format!(
            "open loop at {rate} req/s, up to {} in flight",
            plan.concurrency
        ),
    };
    let schedule = match plan.mode {
        Mode::Interleaved => format!(
            "warm-up {} per side, {} blocks of {} rounds of {} (+{} settling)",
            format_duration(plan.warmup),
            plan.blocks,
            block_pattern(raw_echo_measured(plan))
                .iter()
                .map(|side| side.as_str())
                .collect::<Vec<_>>()
                .join("/"),
            format_duration(plan.round),
            format_duration(plan.round_warmup),
        ),
        Mode::Router | Mode::Echo => format!(
            "warm-up {}, measure {}",
            format_duration(plan.warmup),
            format_duration(plan.duration)
        ),
    };
    let second = plan.second_shape.map_or_else(String::new, |shape| {
        format!(
            ", then {} block(s) at {} callers (reported, not gated)",
            shape.blocks, shape.concurrency
        )
    });
    format!(
        "router-bench: {} mode, {load} over {} connection(s), {schedule}{second}, {} {}",
        plan.mode.name(),
        plan.connections,
        plan.nats_url,
        if plan.tls.is_some() {
            "(TLS)"
        } else {
            "(plain)"
        },
    )
}
