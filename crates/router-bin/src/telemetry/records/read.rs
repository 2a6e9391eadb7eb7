//! Reading decision records back: the record of one decision id ([`find`], for
//! `router explain`) and the records as they are written ([`follow`], for `router tail`).
//! Both read through an ordered consumer of the operator's connection; nothing is acked.

use std::time::Duration;

use anyhow::{bail, Context};
use async_nats::jetstream::{self, consumer, stream::Stream};
use async_nats::Client;
use futures::{Stream as FuturesStream, StreamExt};

use router_core::DecisionRecord;

use super::{subject, subjects};

/// How far before the time in a decision id the search starts (clocks of a fleet differ a
/// little; the id is made just before the record's `at_ms`, by the same router).
const EARLIER: Duration = Duration::from_secs(5);
/// How far after it the search goes on before it gives up.
const LATER: Duration = Duration::from_secs(60);
/// How long the stream may stay silent before the search counts it read to its end.
const CAUGHT_UP: Duration = Duration::from_secs(2);

/// The stream `name`, or what to check.
pub async fn stream(client: &Client, name: &str) -> anyhow::Result<Stream> {
    jetstream::new(client.clone())
        .get_stream(name)
        .await
        .with_context(|| {
            format!(
                "cannot read the decision records stream {name}: check that the routers run with \
                 records.sample_ratio above 0 (or --record-sample-ratio) and that this certificate \
                 may read it (the operator's)"
            )
        })
}

/// The record of `decision_id` in `stream`, if it was recorded and is still kept.
pub async fn find(
    stream: &Stream,
    prefix: &str,
    decision_id: &str,
) -> anyhow::Result<Option<DecisionRecord>> {
    let Some((issued_ms, _policy)) = router_core::ids::parse_decision_id(decision_id) else {
        bail!("{decision_id:?} is not a decision id (a reply's decision.decision_id, d1-…)");
    };
    let from = issued_ms.saturating_sub(EARLIER.as_millis() as u64);
    let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(from) * 1_000_000)
        .context("the decision id's time is out of range")?;
    let mut messages = ordered(
        stream,
        subjects(prefix),
        consumer::DeliverPolicy::ByStartTime { start_time },
    )
    .await?;
    let until = issued_ms.saturating_add(LATER.as_millis() as u64);
    loop {
        let next = match tokio::time::timeout(CAUGHT_UP, messages.next()).await {
            Err(_) | Ok(None) => return Ok(None),
            Ok(Some(next)) => next,
        };
        let message = next.context("reading the decision records stream")?;
        let Ok(record) = serde_json::from_slice::<DecisionRecord>(&message.payload) else {
            continue;
        };
        if record.decision_id == decision_id {
            return Ok(Some(record));
        }
        if record.at_ms > until {
            return Ok(None);
        }
    }
}

/// Every record written from now on (of `provider` only, when given).
pub async fn follow(
    stream: &Stream,
    prefix: &str,
    provider: Option<&str>,
) -> anyhow::Result<impl FuturesStream<Item = anyhow::Result<DecisionRecord>>> {
    let filter = provider.map_or_else(|| subjects(prefix), |p| subject(prefix, p));
    let messages = ordered(stream, filter, consumer::DeliverPolicy::New).await?;
    Ok(messages.filter_map(|next| async move {
        match next {
            Ok(message) => serde_json::from_slice::<DecisionRecord>(&message.payload)
                .ok()
                .map(Ok),
            Err(err) => Some(Err(anyhow::Error::new(err).context("reading the stream"))),
        }
    }))
}

async fn ordered(
    stream: &Stream,
    filter_subject: String,
    deliver_policy: consumer::DeliverPolicy,
) -> anyhow::Result<consumer::pull::Ordered> {
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject,
            deliver_policy,
            ..Default::default()
        })
        .await
        .context("cannot read the decision records stream (a consumer was refused)")?;
    consumer
        .messages()
        .await
        .context("cannot read the decision records stream")
}
