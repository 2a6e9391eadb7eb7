//! `router explain <decision_id>` (one decision's record as a table a person reads: who,
//! when, which policy version, each candidate and why it won or lost) and `router tail`
//! (decisions as they are recorded, one line each).

use std::fmt::Write;
use std::process::ExitCode;

use async_nats::Client;
use futures::StreamExt;

use router_core::decision::CandidateView;
use router_core::DecisionRecord;

use super::commands::{ExplainArgs, TailArgs};
use crate::config::Config;
use crate::telemetry::records::read;

/// Prints the record of `args.decision_id`: exit 0 found, 1 not recorded (or no longer
/// kept), 2 the stream cannot be read.
pub async fn explain(client: &Client, config: &Config, args: &ExplainArgs) -> ExitCode {
    let found = async {
        let stream = read::stream(client, &config.records.stream).await?;
        read::find(&stream, &config.router.subject_prefix, &args.decision_id).await
    };
    match found.await {
        Ok(Some(record)) if args.raw => match serde_json::to_string_pretty(&record) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("router: {err}");
                ExitCode::from(2)
            }
        },
        Ok(Some(record)) => {
            print!("{}", table(&record));
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!(
                "no record of {}: decisions are recorded at records.sample_ratio, and kept for \
                 records.max_age_seconds or until records.max_bytes is reached",
                args.decision_id
            );
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("router: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Prints each record written from now on that matches the filters, until `args.count`.
pub async fn tail(client: &Client, config: &Config, args: &TailArgs) -> ExitCode {
    let prefix = &config.router.subject_prefix;
    let followed = async {
        let stream = read::stream(client, &config.records.stream).await?;
        read::follow(&stream, prefix, args.provider.as_deref()).await
    };
    let records = match followed.await {
        Ok(records) => records,
        Err(err) => {
            eprintln!("router: {err:#}");
            return ExitCode::from(2);
        }
    };
    tokio::pin!(records);
    println!("{}", line_header());
    let mut shown = 0;
    while args.count.is_none_or(|count| shown < count) {
        let next = tokio::select! {
            next = records.next() => next,
            _ = tokio::signal::ctrl_c() => break,
        };
        match next {
            Some(Ok(record)) => {
                if args.tenant.as_ref().is_some_and(|t| *t != record.tenant_id) {
                    continue;
                }
                println!("{}", line(&record));
                shown += 1;
            }
            Some(Err(err)) => {
                eprintln!("router: {err:#}");
                return ExitCode::from(2);
            }
            None => break,
        }
    }
    ExitCode::SUCCESS
}

fn line_header() -> String {
    format!(
        "{:<24} {:<16} {:<12} {:<12} {:<24} {:<28} plan",
        "time", "tenant", "policy", "provider", "reason", "excluded"
    )
}

fn line(record: &DecisionRecord) -> String {
    let excluded: Vec<String> = record
        .candidates
        .iter()
        .filter_map(|c| Some(format!("{}:{}", c.provider_id, c.excluded.as_deref()?)))
        .collect();
    format!(
        "{:<24} {:<16} {:<12} {:<12} {:<24} {:<28} {}",
        when(record.at_ms),
        record.tenant_id,
        record.policy_id,
        record.provider_id,
        record.reason.as_str(),
        or_dash(&excluded.join(",")),
        or_dash(&record.plan.join(" > ")),
    )
}

/// The record as a person reads it: the facts, then one line per candidate.
pub fn table(record: &DecisionRecord) -> String {
    let mut out = String::new();
    let mut fact = |name: &str, value: &str| {
        let _ = writeln!(out, "{name:<10} {value}");
    };
    fact("decision", &record.decision_id);
    fact(
        "when",
        &format!("{} ({} ms)", when(record.at_ms), record.at_ms),
    );
    fact("tenant", &record.tenant_id);
    fact("request", &record.request_id);
    if let Some(trace) = &record.trace_id {
        fact("trace", trace);
    }
    fact(
        "policy",
        &format!("{} (version {})", record.policy_id, record.policy_version),
    );
    fact("task", &record.task_type);
    if let Some(sticky) = &record.sticky {
        fact(
            "sticky",
            &format!("{} (value hash {})", sticky.session_key, sticky.value_hash),
        );
    }
    let inputs: Vec<String> = record
        .inputs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    fact("inputs", or_dash(&inputs.join(" ")));
    let score = record
        .score
        .map(|s| format!(", score {s:.0}"))
        .unwrap_or_default();
    fact(
        "chosen",
        &format!("{} ({}{score})", record.provider_id, record.reason.as_str()),
    );
    fact("plan", or_dash(&record.plan.join(" > ")));
    let _ = writeln!(
        out,
        "\n{:<14} {:>7} {:>4}  {:<18} {:<16} {:<14} {:>7}  outcome",
        "provider", "weight", "tier", "breaker", "cooldown", "quota", "score"
    );
    for candidate in &record.candidates {
        let _ = writeln!(
            out,
            "{:<14} {:>7} {:>4}  {:<18} {:<16} {:<14} {:>7}  {}",
            candidate.provider_id,
            trim(candidate.weight),
            candidate.priority,
            breaker(candidate),
            cooldown(candidate, record.at_ms),
            quota(candidate),
            candidate
                .score
                .map_or("-".to_owned(), |s| format!("{s:.0}")),
            outcome(candidate, record),
        );
    }
    out
}

/// Why a candidate won or lost.
fn outcome(candidate: &CandidateView, record: &DecisionRecord) -> String {
    let name = &candidate.provider_id;
    if *name == record.provider_id {
        return format!("chosen ({})", record.reason.as_str());
    }
    let place = record.plan.iter().position(|p| p == name);
    match (&candidate.excluded, place) {
        (Some(why), _) => format!("excluded: {}", excluded(why)),
        (None, Some(at)) if candidate.best_tier => {
            format!("lost the draw; plan #{}", at + 1)
        }
        (None, Some(at)) => format!("lower tier; plan #{}", at + 1),
        (None, None) => "not in the plan".to_owned(),
    }
}

fn excluded(why: &str) -> &str {
    match why {
        "only" => "not in the request's only list",
        "ignore" => "in the request's ignore list",
        "circuit_breaker" => "circuit breaker",
        "cooldown" => "rate-limit cooldown",
        "zero_weight" => "weight 0",
        "quota" => "quota used up",
        other => other,
    }
}

fn breaker(candidate: &CandidateView) -> String {
    let state = candidate.breaker.as_str();
    match candidate.breaker_admits_in_ms {
        0 => state.to_owned(),
        ms => format!("{state} ({} s left)", ms.div_ceil(1000)),
    }
}

fn cooldown(candidate: &CandidateView, at_ms: u64) -> String {
    match candidate.cooldown_until_ms {
        Some(until) => format!("{} s left", until.saturating_sub(at_ms).div_ceil(1000)),
        None => "-".to_owned(),
    }
}

fn quota(candidate: &CandidateView) -> String {
    match (&candidate.quota_exhausted, candidate.quota_headroom) {
        (Some(kind), _) => format!("{kind} used up"),
        (None, Some(left)) => format!("{:.0} % left", left * 100.0),
        (None, None) => "-".to_owned(),
    }
}

fn trim(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}

/// `at_ms` as RFC 3339 (UTC, milliseconds).
fn when(at_ms: u64) -> String {
    let nanos = i128::from(at_ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at_ms.to_string())
}
