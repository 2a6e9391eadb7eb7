//! `raw-echo`: the bench's minimal responder, the physical limit the router is measured
//! against. One NATS connection (the same TLS options as `router-bench`), one queue
//! subscription on `<prefix>.v1.decide`, and for every request the same fixed success reply,
//! published to its reply subject. No queue, no workers, no metrics, no decoding: what is left
//! is the NATS client's read and write path. It runs until SIGTERM or SIGINT.
//!
//! The reply is the echo responder's unless `--reply-like` names a running router: then,
//! before subscribing, it sends the router the first requests of the bench corpus and keeps
//! the success reply whose size is closest to their mean, so that its replies are as large
//! and shaped as the router's.
//!
//! Exit status: 0 stopped by a signal, 1 it could not connect or subscribe, or the
//! connection closed; 2 bad options.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use async_nats::{Client, ConnectOptions, Subscriber};
use bench::corpus::{Corpus, DEFAULT_USERS};
use bench::nats_args::NatsArgs;
use bench::outcome::Outcome;
use bytes::Bytes;
use clap::Parser;
use futures::StreamExt;
use router_bin::service::decide::ECHO_REPLY;
use router_bin::transport::nats::ClientTls;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the last replies may take to leave at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Requests of the bench corpus sent to the router named by `--reply-like`.
const LIKE_SAMPLES: u64 = 100;

/// How long one of those requests may wait for its reply.
const LIKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest reply `--reply-bytes` may ask for.
const MAX_REPLY_BYTES: usize = 1 << 20;

/// Minimal NATS responder for router-bench: answers every decide request with a fixed reply.
///
/// The reply is the echo responder's (`router --responder echo`), a success shaped like a
/// decision; `--reply-bytes` pads it with JSON whitespace to a given size, `--reply-like`
/// takes one of a running router's replies to the bench corpus instead.
#[derive(Debug, Parser)]
#[command(name = "raw-echo", version)]
struct Args {
    /// Where NATS is and the TLS files to reach it with (the certificate must allow
    /// subscribing to the subject: the router's does).
    #[command(flatten)]
    nats: NatsArgs,
    /// Subject prefix; requests arrive on `<prefix>.v1.decide`.
    #[arg(long, default_value = "beamline.raw")]
    subject_prefix: String,
    /// Queue group of the subscription (as the router's, so that nats-server routes the
    /// same way).
    #[arg(long, default_value = "beamline-raw-echo-group")]
    queue_group: String,
    /// Size of the reply in bytes (at least the echo responder's reply, which is the
    /// default).
    #[arg(long)]
    reply_bytes: Option<usize>,
    /// Subject prefix of a running router: reply with its success reply to the bench corpus
    /// whose size is closest to the mean of its first 100 replies.
    #[arg(long, value_name = "PREFIX", conflicts_with = "reply_bytes")]
    reply_like: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let checked = (|| {
        let tls = args.nats.client_tls()?;
        let subject = decide_subject(&args.subject_prefix, "--subject-prefix")?;
        let like = args
            .reply_like
            .as_deref()
            .map(|prefix| decide_subject(prefix, "--reply-like"))
            .transpose()?;
        let reply = reply(args.reply_bytes)?;
        anyhow::Ok((tls, subject, like, reply))
    })();
    let (tls, subject, like, reply) = match checked {
        Ok(checked) => checked,
        Err(err) => {
            eprintln!("raw-echo: {err:#}");
            return ExitCode::from(2);
        }
    };
    let served = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| {
            runtime.block_on(run(&args, tls.as_ref(), &subject, like.as_deref(), reply))
        });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("raw-echo: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Connects, subscribes and answers until a signal arrives.
async fn run(
    args: &Args,
    tls: Option<&ClientTls>,
    subject: &str,
    like: Option<&str>,
    reply: Bytes,
) -> anyhow::Result<()> {
    // Listen for the signals first: one that arrives while connecting still stops us.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    let options = ConnectOptions::new()
        .name("raw-echo")
        .connection_timeout(CONNECT_TIMEOUT)
        .ignore_discovered_servers();
    let options = router_bin::transport::nats::tls_options(options, tls);
    let url = args.nats.nats_url.as_str();
    let client = options
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let reply = match like {
        Some(router) => reply_like(&client, router).await?,
        None => reply,
    };
    let subscriber = client
        .queue_subscribe(subject.to_owned(), args.queue_group.clone())
        .await
        .with_context(|| format!("subscribing to {subject}"))?;
    client
        .flush()
        .await
        .with_context(|| format!("registering the subscription to {subject}"))?;
    eprintln!(
        "raw-echo: answering {subject} (queue group {}) on {url} with a {}-byte reply",
        args.queue_group,
        reply.len()
    );
    let mut serving = tokio::spawn(serve(client.clone(), subscriber, reply));
    let outcome = tokio::select! {
        ended = &mut serving => match ended {
            Ok(Ok(())) => Err(anyhow::anyhow!("the subscription to {subject} ended")),
            Ok(Err(err)) => Err(err),
            Err(err) => Err(anyhow::anyhow!("the serving task failed: {err}")),
        },
        _ = terminate.recv() => Ok("SIGTERM"),
        _ = tokio::signal::ctrl_c() => Ok("SIGINT"),
    };
    serving.abort();
    let signal = outcome?;
    if tokio::time::timeout(FLUSH_TIMEOUT, client.flush())
        .await
        .is_err()
    {
        eprintln!("raw-echo: the last replies did not leave within {FLUSH_TIMEOUT:?}");
    }
    eprintln!("raw-echo: stopped ({signal})");
    Ok(())
}

/// Answers every message that has a reply subject with `reply`; ends when the subscription
/// does, fails when the connection can no longer publish.
async fn serve(client: Client, mut subscriber: Subscriber, reply: Bytes) -> anyhow::Result<()> {
    while let Some(message) = subscriber.next().await {
        if let Some(to) = message.reply {
            client
                .publish(to, reply.clone())
                .await
                .context("publishing a reply")?;
        }
    }
    Ok(())
}

/// The router's success reply on `subject` to the first [`LIKE_SAMPLES`] requests of the
/// bench corpus whose size is closest to their mean.
async fn reply_like(client: &Client, subject: &str) -> anyhow::Result<Bytes> {
    let corpus = Corpus::new(DEFAULT_USERS);
    let mut replies = Vec::new();
    for n in 0..LIKE_SAMPLES {
        let request = client.request(subject.to_owned(), Bytes::from(corpus.body(n)));
        let message = tokio::time::timeout(LIKE_TIMEOUT, request)
            .await
            .map_err(anyhow::Error::from)
            .and_then(|reply| reply.map_err(anyhow::Error::from))
            .with_context(|| format!("asking {subject} for a reply to copy (--reply-like)"))?;
        replies.push(message.payload);
    }
    closest_to_mean(replies).with_context(|| {
        format!("{subject} answered none of {LIKE_SAMPLES} corpus requests with a success")
    })
}

/// The success reply whose size is closest to the mean size of the successes in `replies`.
fn closest_to_mean(replies: Vec<Bytes>) -> Option<Bytes> {
    let successes: Vec<Bytes> = replies
        .into_iter()
        .filter(|reply| Outcome::from_reply(reply).is_ok())
        .collect();
    let mean =
        successes.iter().map(Bytes::len).sum::<usize>() as f64 / successes.len().max(1) as f64;
    successes.into_iter().min_by(|a, b| {
        let off = |r: &Bytes| (r.len() as f64 - mean).abs();
        off(a).total_cmp(&off(b))
    })
}

/// `<prefix>.v1.decide`, when `prefix` is a plain subject.
fn decide_subject(prefix: &str, option: &str) -> anyhow::Result<String> {
    let prefix = prefix.trim_end_matches('.');
    if prefix.is_empty() || prefix.contains(|c: char| c.is_whitespace() || c == '*' || c == '>') {
        bail!("{option} must be a plain subject such as beamline.raw");
    }
    Ok(format!("{prefix}.v1.decide"))
}

/// The echo responder's reply, padded with spaces before its closing brace to `bytes`.
fn reply(bytes: Option<usize>) -> anyhow::Result<Bytes> {
    let Some(bytes) = bytes else {
        return Ok(Bytes::from_static(ECHO_REPLY));
    };
    let base = ECHO_REPLY.len();
    if !(base..=MAX_REPLY_BYTES).contains(&bytes) {
        bail!("--reply-bytes must be between {base} (the echo responder's reply) and {MAX_REPLY_BYTES}");
    }
    let (body, close) = ECHO_REPLY.split_at(base - 1);
    let mut padded = Vec::with_capacity(bytes);
    padded.extend_from_slice(body);
    padded.resize(bytes - close.len(), b' ');
    padded.extend_from_slice(close);
    Ok(Bytes::from(padded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_is_a_success_of_the_asked_size() {
        let plain = reply(None).expect("reply");
        assert_eq!(&plain[..], ECHO_REPLY);
        assert_eq!(Outcome::from_reply(&plain), Outcome::Ok);
        let padded = reply(Some(ECHO_REPLY.len() + 200)).expect("reply");
        assert_eq!(padded.len(), ECHO_REPLY.len() + 200);
        assert_eq!(Outcome::from_reply(&padded), Outcome::Ok);
        assert!(padded.ends_with(b" }"));
        assert_eq!(
            reply(Some(ECHO_REPLY.len())).expect("reply").len(),
            ECHO_REPLY.len()
        );
        assert!(reply(Some(ECHO_REPLY.len() - 1)).is_err());
        assert!(reply(Some(MAX_REPLY_BYTES + 1)).is_err());
    }

    #[test]
    fn subjects_follow_the_router() {
        assert_eq!(
            decide_subject("beamline.raw.", "--subject-prefix").expect("subject"),
            "beamline.raw.v1.decide"
        );
        let err = decide_subject("a.>", "--reply-like").expect_err("a wildcard");
        assert!(err.to_string().contains("--reply-like"), "{err}");
        assert!(decide_subject("", "--subject-prefix").is_err());
    }

    #[test]
    fn the_copied_reply_is_the_success_closest_to_the_mean_size() {
        let ok = |pad: usize| Bytes::from(format!(r#"{{"ok":true,"x":"{}"}}"#, "a".repeat(pad)));
        let error = Bytes::from_static(br#"{"ok":false,"error":{"code":"overloaded"}}"#);
        // Successes of 16, 26 and 36 bytes (mean 26) and an error, which does not count.
        let replies = vec![ok(4), ok(14), ok(24), error.clone()];
        assert_eq!(closest_to_mean(replies), Some(ok(14)));
        assert_eq!(closest_to_mean(vec![error]), None);
        assert_eq!(closest_to_mean(Vec::new()), None);
    }

    #[test]
    fn options_parse() {
        let args = Args::try_parse_from(["raw-echo"]).expect("defaults");
        assert_eq!(args.subject_prefix, "beamline.raw");
        assert_eq!(args.reply_bytes, None);
        assert!(Args::try_parse_from(["raw-echo", "--tls-cert", "c.pem"]).is_err());
        assert!(
            Args::try_parse_from(["raw-echo", "--reply-bytes", "300", "--reply-like", "r"])
                .is_err()
        );
    }
}
