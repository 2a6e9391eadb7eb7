//! `router quota [--tenant T]`: usage against each limit in its current window, fleet-wide,
//! read from the shared quota buckets (`quota_store = "kv"`).

use std::process::ExitCode;

use async_nats::jetstream::kv;
use async_nats::Client;
use futures::StreamExt;

use super::commands::QuotaArgs;
use crate::fleet::quota::record::WindowRecord;
use crate::fleet::quota::Stores;
use crate::runtime::clock;

/// Prints the table; exit 0 with at least one window, 1 with none, 2 without the buckets.
pub async fn run(client: &Client, args: &QuotaArgs) -> ExitCode {
    // Read only: the routers create the buckets with their replicas.
    let stores = match Stores::existing(client).await {
        Ok(stores) => stores,
        Err(err) => {
            eprintln!(
                "router: cannot read the quota buckets: {err:#}\n  \
                 check that JetStream is on and that the routers run with quota_store = \"kv\""
            );
            return ExitCode::from(2);
        }
    };
    let now = clock::now_ms();
    let mut records = Vec::new();
    for store in [&stores.minute, &stores.calendar] {
        match current(store, now).await {
            Ok(mut found) => records.append(&mut found),
            Err(err) => {
                eprintln!("router: cannot read a quota bucket: {err:#}");
                return ExitCode::from(2);
            }
        }
    }
    records.retain(|r| args.tenant.as_ref().is_none_or(|t| *t == r.tenant_id));
    records.sort_by(|a, b| {
        (&a.tenant_id, &a.policy_id, &a.provider_id, &a.kind).cmp(&(
            &b.tenant_id,
            &b.policy_id,
            &b.provider_id,
            &b.kind,
        ))
    });
    if records.is_empty() {
        println!("no quota window in use now (a window appears once a router counts a decision under it)");
        return ExitCode::from(1);
    }
    print!("{}", table(&records, now));
    ExitCode::SUCCESS
}

/// The records of `store` whose window holds `now`.
async fn current(store: &kv::Store, now: u64) -> anyhow::Result<Vec<WindowRecord>> {
    let mut keys = store.keys().await?;
    let mut found = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key?;
        let Some(value) = store.get(&key).await? else {
            continue;
        };
        if let Ok(record) = serde_json::from_slice::<WindowRecord>(&value) {
            if record.window_start_ms <= now && now < record.window_end_ms {
                found.push(record);
            }
        }
    }
    Ok(found)
}

fn figure(kind: &str, value: u64) -> String {
    if kind.starts_with("budget") {
        format!("{:.2}", value as f64 / 1_000_000.0)
    } else {
        value.to_string()
    }
}

/// One line per window: tenant, policy, provider, kind, window, used, limit, leased,
/// resets_in.
fn table(records: &[WindowRecord], now: u64) -> String {
    let mut out = format!(
        "{:<16} {:<12} {:<12} {:<13} {:<7} {:>12} {:>12} {:>12} {:>10}\n",
        "tenant", "policy", "provider", "kind", "window", "used", "limit", "leased", "resets_in"
    );
    for r in records {
        let window = if r.kind.starts_with("budget") {
            r.kind.trim_start_matches("budget_")
        } else {
            "minute"
        };
        let resets = humantime::format_duration(std::time::Duration::from_secs(
            r.window_end_ms.saturating_sub(now) / 1000,
        ));
        out.push_str(&format!(
            "{:<16} {:<12} {:<12} {:<13} {:<7} {:>12} {:>12} {:>12} {:>10}\n",
            r.tenant_id,
            r.policy_id.as_deref().unwrap_or("*"),
            r.provider_id.as_deref().unwrap_or("*"),
            r.kind,
            window,
            figure(&r.kind, r.used()),
            figure(&r.kind, r.limit),
            figure(&r.kind, r.leased),
            resets.to_string(),
        ));
    }
    out
}
