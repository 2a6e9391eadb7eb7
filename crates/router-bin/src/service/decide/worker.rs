//! One decide worker: reads its subscription into its own bounded queue (stamping each
//! request on arrival), answers `overloaded` at once when the queue is full or backpressure
//! is active, takes requests off the queue one at a time, and drains at shutdown.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::{Client, Message};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use router_core::{Handled, Outcome};

use super::answer::{annotate, finish, reply, respond};
use super::{Arrival, DecidePath, LEASE_WAIT, READ_BATCH};
use crate::transport::nats;
use crate::transport::scoped::Scoped;

/// One worker: its subscription, its bounded queue, the path that answers.
pub(super) struct Worker {
    pub(super) client: Client,
    pub(super) path: Arc<DecidePath>,
    pub(super) queue: VecDeque<Arrival>,
    pub(super) capacity: usize,
    pub(super) idle: AtomicBool,
}

impl Worker {
    /// Serves until shutdown, then drains: unsubscribes, answers every request received.
    /// Returns how many requests it answered while draining.
    pub(super) async fn run(
        mut self,
        mut subscription: Scoped,
        mut shutdown: watch::Receiver<bool>,
        hurry: watch::Receiver<bool>,
    ) -> u64 {
        self.path.backpressure.intake.worker_started();
        let mut open = true;
        while open {
            if *shutdown.borrow() {
                break;
            }
            open = self.read_available(&mut subscription).await;
            if let Some(arrival) = self.queue.pop_front() {
                self.process(arrival).await;
                continue;
            }
            self.set_idle(true);
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                message = subscription.next() => match message {
                    Some(message) => self.admit(message).await,
                    None => open = false,
                },
            }
            self.set_idle(false);
        }
        self.set_idle(false);
        self.drain(subscription, hurry).await
    }

    fn set_idle(&self, idle: bool) {
        self.path.backpressure.intake.set_idle(&self.idle, idle);
    }

    /// Reads what the subscription already holds (at most [`READ_BATCH`]); false when the
    /// subscription has ended.
    async fn read_available(&mut self, subscription: &mut Scoped) -> bool {
        for _ in 0..READ_BATCH {
            match subscription.next().now_or_never() {
                Some(Some(message)) => self.admit(message).await,
                Some(None) => return false,
                None => break,
            }
        }
        true
    }

    /// Stamps a request and queues it, or answers `overloaded` at once when backpressure is
    /// active or the queue is full.
    async fn admit(&mut self, message: Message) {
        let at = Instant::now();
        let backpressure = &self.path.backpressure;
        backpressure.intake.read_one();
        if backpressure.monitor.is_active() || self.queue.len() >= self.capacity {
            self.refuse(&message).await;
            return;
        }
        backpressure.intake.queued_one();
        let span = self.path.traces.as_ref().map(|traces| {
            let size = message.payload.len();
            let span =
                traces.request_span("decide", &message.subject, message.headers.as_ref(), size);
            Box::new(span)
        });
        self.queue.push_back(Arrival { message, at, span });
    }

    /// Answers `overloaded` without the decision path.
    async fn refuse(&self, message: &Message) {
        let started = Instant::now();
        let monitor = &self.path.backpressure.monitor;
        let handled = self
            .path
            .router
            .overloaded(&message.payload, monitor.retry_after_seconds());
        self.reply(message, handled, started).await;
    }

    async fn process(&self, arrival: Arrival) {
        let backpressure = &self.path.backpressure;
        backpressure.intake.start_one();
        backpressure.classify();
        let taken = Instant::now();
        let explain = arrival
            .span
            .as_ref()
            .is_some_and(|span| span.is_recording());
        let handled = respond(&self.path, &arrival.message, false, explain);
        let awaiting = matches!(handled.outcome, Outcome::AwaitingLease);
        let settles = handled.idempotent.is_some() && self.path.fleet_idempotency.is_some();
        if awaiting || settles {
            // A quota lease on its way, or the key settled with the fleet: off this
            // worker; the reply follows from there.
            let (client, path) = (self.client.clone(), self.path.clone());
            tokio::spawn(async move {
                let handled = if awaiting {
                    answer_after_lease(&path, &arrival.message, explain).await
                } else {
                    handled
                };
                complete(&client, &path, arrival, handled, taken).await;
            });
            return;
        }
        complete(&self.client, &self.path, arrival, handled, taken).await;
    }

    /// Publishes the reply and counts it (its processing from `started`); intake rejections
    /// also go to the DLQ.
    async fn reply(&self, message: &Message, handled: Handled, started: Instant) {
        reply(&self.client, &self.path, message, handled, started, None).await;
    }

    /// After shutdown: unsubscribes, then answers what was queued and what the server had
    /// already routed here; once `hurry` flips (the drain timeout), the rest is answered
    /// `overloaded`. Returns how many it answered.
    async fn drain(mut self, mut subscription: Scoped, mut hurry: watch::Receiver<bool>) -> u64 {
        let mut answered = 0;
        let connected = nats::is_connected(&self.client);
        if connected {
            // UNSUB + PING: once the PONG is back every message the server routed to this
            // subscription has arrived, and the stream ends after yielding them.
            if let Err(err) = subscription.drain().await {
                tracing::warn!(%err, "unsubscribe failed while draining");
            }
        }
        loop {
            let hurried = *hurry.borrow();
            if let Some(arrival) = self.queue.pop_front() {
                if hurried || !connected {
                    self.path.backpressure.intake.start_one();
                    self.refuse(&arrival.message).await;
                    self.path.backpressure.intake.finish_one();
                } else {
                    self.process(arrival).await;
                }
                answered += 1;
                continue;
            }
            if !connected {
                // No answer could be delivered and no PONG would come back.
                return answered;
            }
            tokio::select! {
                biased;
                _ = hurry.changed(), if !hurried => {}
                message = tokio::time::timeout(Duration::from_secs(5), subscription.next()) => match message {
                    Ok(Some(message)) => self.admit(message).await,
                    Ok(None) | Err(_) => return answered,
                },
            }
        }
    }
}

/// The answer to a request that waited for a quota lease: asked again after each pass of
/// the sync task until the lease came, or once more when [`LEASE_WAIT`] is over (then a
/// meter still dry refuses).
async fn answer_after_lease(path: &DecidePath, message: &Message, explain: bool) -> Handled {
    let deadline = tokio::time::Instant::now() + LEASE_WAIT;
    while let Some(leased) = &path.quota_leased {
        let _ = tokio::time::timeout_at(deadline, leased.notified()).await;
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let again = respond(path, message, false, explain);
        if !matches!(again.outcome, Outcome::AwaitingLease) {
            return again;
        }
    }
    respond(path, message, true, explain)
}

/// Offers a new sticky mapping to the fleet, settles a first decision for an idempotency key
/// with it (`idempotency_store = "kv"`), then replies.
async fn complete(
    client: &Client,
    path: &DecidePath,
    mut arrival: Arrival,
    mut handled: Handled,
    taken: Instant,
) {
    if let Some(span) = &mut arrival.span {
        annotate(span, &mut handled);
    }
    if let Some(sync) = &path.sticky_sync {
        sync.offer(&handled);
    }
    if let Some(records) = &path.records {
        records.offer(&mut handled);
    }
    if let (Some(ours), Some(fleet)) = (handled.idempotent.take(), &path.fleet_idempotency) {
        handled = fleet.settle(&path.router, ours, handled).await;
    }
    finish(client, path, arrival, handled, taken).await;
}
