//! One load phase: warm-up then measurement, closed or open loop, over a set of connections.
//!
//! Closed loop: `concurrency` requesters, each sending its next request as soon as the
//! previous one finished. Open loop: requests leave on a fixed schedule (`rate` per second in
//! total, split over `concurrency` requesters); latency is measured from the *intended* send
//! time, so a stall that delays later requests shows up in their latency instead of being
//! hidden (coordinated omission). When every requester is busy, scheduled requests wait and
//! that wait is counted. (A request the timer released slightly early is measured from its
//! actual send time instead, so the correction never shortens a latency.) Scheduled requests still unsent at the hard deadline
//! (`end + request timeout`) are counted as errors of kind `unsent`.
//!
//! A request belongs to the measured window when it was started (closed) or scheduled (open)
//! between the end of the warm-up and the end of the phase; those still in flight at the end
//! are awaited and counted. Every loop is bounded by the phase deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, Subject};
use tokio::time::Instant;

use crate::cli::Load;
use crate::corpus::Corpus;
use crate::outcome::Outcome;
use crate::process::ProcessProbe;
use crate::progress::PhaseBar;
use crate::stats::{PhaseStats, Recorder};
use crate::timing::Timing;

/// Pause after a request that failed at once (no responders, transport), so a missing
/// responder does not turn the requesters into a hot spin; such requests are errors anyway.
const FAST_FAILURE_PAUSE: Duration = Duration::from_millis(1);

/// Resolution of tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// What a phase needs.
#[derive(Debug, Clone)]
pub struct PhaseSpec {
    /// Label on the progress bar (`echo 3/20`, `router warm-up`).
    pub label: String,
    /// Subject the requests go to.
    pub subject: String,
    /// Closed or open loop.
    pub load: Load,
    /// Requesters (closed) or in-flight bound (open).
    pub concurrency: usize,
    /// Warm-up length.
    pub warmup: Duration,
    /// Measured length.
    pub duration: Duration,
    /// Per-request timeout (also set on the connections).
    pub request_timeout: Duration,
    /// Draw a progress bar.
    pub progress: bool,
}

/// What a phase measured.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// Outcomes and latencies of the measured window.
    pub recorder: Recorder,
    /// How long the measured requests were spread over.
    pub window: Duration,
    /// CPU seconds the probed process used in the measured window, when one was probed.
    pub cpu_s: Option<f64>,
}

impl PhaseResult {
    /// The phase's figures.
    pub fn stats(&self) -> PhaseStats {
        self.recorder.summarize(self.window)
    }
}

/// What one requester brings back.
#[derive(Debug)]
struct WorkerResult {
    recorder: Recorder,
    last_completion: Option<Instant>,
}

/// Runs one phase over `clients` (requester `i` uses connection `i % clients.len()`); with a
/// `probe`, also measures the CPU that process used during the measured window.
pub async fn run_phase(
    spec: &PhaseSpec,
    clients: &[Client],
    corpus: Arc<Corpus>,
    probe: Option<ProcessProbe>,
) -> anyhow::Result<PhaseResult> {
    anyhow::ensure!(!clients.is_empty(), "a phase needs at least one connection");
    let timing = Timing::starting_now(spec.warmup, spec.duration, spec.request_timeout);
    let done = Arc::new(AtomicU64::new(0));
    let bar = PhaseBar::start(spec.progress, &spec.label, timing, done.clone());
    let subject = Subject::from(spec.subject.as_str());

    let mut tasks = Vec::with_capacity(spec.concurrency);
    for worker in 0..spec.concurrency {
        let client = clients[worker % clients.len()].clone();
        let subject = subject.clone();
        let corpus = corpus.clone();
        let done = done.clone();
        let task = match spec.load {
            Load::Closed => tokio::spawn(closed_worker(client, subject, corpus, timing, done)),
            Load::Open { rate } => tokio::spawn(open_worker(
                client,
                subject,
                corpus,
                timing,
                done,
                OpenSlot {
                    first: worker as u64,
                    step: spec.concurrency as u64,
                    rate,
                },
            )),
        };
        tasks.push(task);
    }

    tokio::time::sleep_until(timing.measure_start).await;
    let cpu_before = probe.map(|p| p.cpu_seconds()).transpose()?;
    let mut total = Recorder::new();
    let mut last_completion = None;
    for task in tasks {
        let result = task
            .await
            .map_err(|err| anyhow::anyhow!("a requester task failed: {err}"))?;
        total.merge(&result.recorder)?;
        last_completion = last_completion.max(result.last_completion);
    }
    bar.finish();
    let cpu_s = match (probe, cpu_before) {
        (Some(probe), Some(before)) => Some(probe.cpu_seconds()? - before),
        _ => None,
    };

    // Recorded requests were started at or after `measure_start`; the window runs until
    // the later of the planned end and the last of their replies.
    let window_end = last_completion.map_or(timing.end, |t| t.max(timing.end));
    Ok(PhaseResult {
        recorder: total,
        window: window_end.duration_since(timing.measure_start),
        cpu_s,
    })
}

async fn send(client: &Client, subject: &Subject, body: bytes::Bytes) -> Outcome {
    match client.request(subject.clone(), body).await {
        Ok(message) => Outcome::from_reply(&message.payload),
        Err(err) => Outcome::from_request_error(&err),
    }
}

fn fails_fast(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::NoResponders | Outcome::Transport)
}

async fn closed_worker(
    client: Client,
    subject: Subject,
    corpus: Arc<Corpus>,
    timing: Timing,
    done: Arc<AtomicU64>,
) -> WorkerResult {
    let mut recorder = Recorder::new();
    let mut last_completion = None;
    loop {
        let sent_at = Instant::now();
        if sent_at >= timing.end {
            break;
        }
        let outcome = send(&client, &subject, corpus.next_body()).await;
        let finished = Instant::now();
        if sent_at >= timing.measure_start {
            recorder.record(&outcome, finished.duration_since(sent_at));
            last_completion = Some(finished);
        }
        done.fetch_add(1, Ordering::Relaxed);
        if fails_fast(&outcome) {
            tokio::time::sleep(FAST_FAILURE_PAUSE).await;
        }
    }
    WorkerResult {
        recorder,
        last_completion,
    }
}

/// The share of the open-loop schedule one requester serves: requests
/// `first, first + step, first + 2 * step, ...`, request `k` due at `start + k / rate`.
#[derive(Debug, Clone, Copy)]
struct OpenSlot {
    first: u64,
    step: u64,
    rate: f64,
}

impl OpenSlot {
    fn due(&self, timing: &Timing, k: u64) -> Instant {
        timing.start + Duration::from_secs_f64(k as f64 / self.rate)
    }
}

async fn open_worker(
    client: Client,
    subject: Subject,
    corpus: Arc<Corpus>,
    timing: Timing,
    done: Arc<AtomicU64>,
    slot: OpenSlot,
) -> WorkerResult {
    let mut recorder = Recorder::new();
    let mut last_completion = None;
    let mut k = slot.first;
    loop {
        let intended = slot.due(&timing, k);
        if intended >= timing.end {
            break;
        }
        if Instant::now() >= timing.hard_end {
            recorder.record_unsent(count_unsent(&slot, &timing, k));
            break;
        }
        // Tokio's timer wakes on the first millisecond tick at or after the deadline; aim one
        // tick early so the bench's own timer does not add up to 1 ms to every latency.
        tokio::time::sleep_until(intended.checked_sub(TIMER_TICK).unwrap_or(intended)).await;
        let sent_at = Instant::now();
        let outcome = send(&client, &subject, corpus.next_body()).await;
        let finished = Instant::now();
        if intended >= timing.measure_start {
            recorder.record(
                &outcome,
                finished.duration_since(latency_origin(intended, sent_at)),
            );
            last_completion = Some(finished);
        }
        done.fetch_add(1, Ordering::Relaxed);
        k += slot.step;
    }
    WorkerResult {
        recorder,
        last_completion,
    }
}

/// Where an open-loop request's latency is measured from: its intended send time when it
/// left late (coordinated-omission correction: the wait counts), its actual send time when
/// the timer woke a little early (so an early start never shortens a latency).
fn latency_origin(intended: Instant, sent_at: Instant) -> Instant {
    intended.min(sent_at)
}

/// Requests of `slot` from `k` on that were due inside the measured window.
fn count_unsent(slot: &OpenSlot, timing: &Timing, mut k: u64) -> u64 {
    let mut unsent = 0;
    // Bounded: `due` grows with k and the loop stops at `end`.
    loop {
        let due = slot.due(timing, k);
        if due >= timing.end {
            return unsent;
        }
        if due >= timing.measure_start {
            unsent += 1;
        }
        k += slot.step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unsent_counts_only_the_measured_window() {
        let timing = Timing::starting_now(
            Duration::from_secs(1),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        // 10 req/s over 2 s, served by 2 requesters: this one owns even k in 0..20.
        let slot = OpenSlot {
            first: 0,
            step: 2,
            rate: 10.0,
        };
        // From k = 0: k = 10, 12, ..., 18 fall in the measured second.
        assert_eq!(count_unsent(&slot, &timing, 0), 5);
        assert_eq!(count_unsent(&slot, &timing, 14), 3);
        assert_eq!(count_unsent(&slot, &timing, 20), 0);
    }

    #[tokio::test]
    async fn late_requests_count_from_their_intended_time() {
        let intended = Instant::now();
        let late = intended + Duration::from_millis(5);
        assert_eq!(latency_origin(intended, late), intended);
        let early = intended
            .checked_sub(Duration::from_micros(300))
            .unwrap_or(intended);
        assert_eq!(latency_origin(intended, early), early);
    }
}
