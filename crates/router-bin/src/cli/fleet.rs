//! `router status`: every router of the fleet, from the micro service's `$SRV.STATS`.

use std::process::ExitCode;
use std::time::Duration;

use async_nats::Client;
use futures::StreamExt;

use super::commands::StatusArgs;
use crate::service::control::SERVICE_NAME;
use crate::service::micro::Stats;

/// One router as `$SRV.STATS` reports it.
#[derive(Debug, Clone)]
pub struct RouterStats {
    /// The micro service's reply.
    pub stats: Stats,
}

impl RouterStats {
    /// The instance id.
    pub fn id(&self) -> &str {
        &self.stats.identity.id
    }

    /// Decide requests answered (the `decide` endpoint's count).
    pub fn decisions(&self) -> u64 {
        self.decide().map_or(0, |e| e.num_requests)
    }

    /// Of which error replies.
    pub fn errors(&self) -> u64 {
        self.decide().map_or(0, |e| e.num_errors)
    }

    /// Average processing time of a decide request, microseconds.
    pub fn average_us(&self) -> f64 {
        self.decide()
            .map_or(0.0, |e| e.average_processing_time as f64 / 1000.0)
    }

    /// The figures the router adds to its decide endpoint (`backpressure`, `pending`,
    /// `inflight`, `breakers`).
    pub fn data(&self) -> &serde_json::Value {
        static NONE: serde_json::Value = serde_json::Value::Null;
        self.decide().map_or(&NONE, |e| &e.data)
    }

    /// Seconds since it started.
    pub fn uptime_s(&self) -> Option<i64> {
        let started = time::OffsetDateTime::parse(
            &self.stats.started,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        Some((time::OffsetDateTime::now_utc() - started).whole_seconds())
    }

    fn decide(&self) -> Option<&crate::service::micro::EndpointStats> {
        self.stats.endpoints.iter().find(|e| e.name == "decide")
    }
}

/// Asks `$SRV.STATS.beamline-router` and collects every answer for `wait`, sorted by id.
pub async fn fleet_stats(client: &Client, wait: Duration) -> anyhow::Result<Vec<RouterStats>> {
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await?;
    client
        .publish_with_reply(format!("$SRV.STATS.{SERVICE_NAME}"), inbox, "".into())
        .await?;
    client.flush().await?;
    let mut routers = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, answers.next()).await {
        if let Ok(stats) = serde_json::from_slice::<Stats>(&message.payload) {
            routers.push(RouterStats { stats });
        }
    }
    routers.sort_by(|a, b| a.id().cmp(b.id()));
    Ok(routers)
}

/// `router status`.
pub async fn status(client: &Client, args: &StatusArgs) -> ExitCode {
    let routers = match fleet_stats(client, args.timeout).await {
        Ok(routers) => routers,
        Err(err) => {
            eprintln!("router: cannot ask the fleet: {err:#}");
            return ExitCode::from(2);
        }
    };
    if routers.is_empty() {
        eprintln!(
            "router: no router answered $SRV.STATS.{SERVICE_NAME} within {:?}; check that a \
             router is running and connected to this nats-server",
            args.timeout
        );
        return ExitCode::from(2);
    }
    print!("{}", table(&routers, None));
    ExitCode::SUCCESS
}

/// The fleet table; with `rates`, a decisions/s column (one value per router, in order).
pub fn table(routers: &[RouterStats], rates: Option<&[Option<f64>]>) -> String {
    let mut out = String::new();
    let rate_header = if rates.is_some() { "  decisions/s" } else { "" };
    out.push_str(&format!(
        "{:<24}  {:<8}  {:>8}  {:>10}{rate_header}  {:>7}  {:>9}  {:<12}  {:>7}  {:>8}\n",
        "id",
        "version",
        "uptime",
        "decisions",
        "errors",
        "avg µs",
        "backpressure",
        "pending",
        "breakers"
    ));
    for (i, router) in routers.iter().enumerate() {
        let data = router.data();
        let rate = match rates.and_then(|r| r.get(i).copied()) {
            Some(Some(rate)) => format!("  {rate:>11.0}"),
            Some(None) => format!("  {:>11}", "-"),
            None => String::new(),
        };
        let breakers = data["breakers"].as_array().map_or(0, Vec::len);
        out.push_str(&format!(
            "{:<24}  {:<8}  {:>8}  {:>10}{rate}  {:>7}  {:>9.1}  {:<12}  {:>7}  {:>8}\n",
            router.id(),
            router.stats.identity.version,
            router.uptime_s().map_or("-".to_owned(), uptime),
            router.decisions(),
            router.errors(),
            router.average_us(),
            data["backpressure"].as_str().unwrap_or("-"),
            data["pending"].as_u64().unwrap_or(0),
            breakers
        ));
    }
    out
}

fn uptime(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
