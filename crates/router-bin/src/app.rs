//! Start-up, the task set, and shutdown.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use router_core::{BackpressureMonitor, Router, RouterSettings};

use crate::config::{Config, PolicySource, StickyStore, Subjects};
use crate::connect_diagnosis::ConnectDiagnosis;
use crate::http;
use crate::metrics::Metrics;
use crate::service::{self, Shared};
use crate::{dlq, kv_policies, nats, sticky_sync, tls};

/// A start-up failure caused by configuration (exit code 2) rather than by the environment.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct ConfigError(pub anyhow::Error);

/// Runs the router until SIGTERM / Ctrl-C, then drains. With `check_only`, validates the
/// configuration, certificate and policies and returns.
pub async fn run(config: Config, check_only: bool) -> anyhow::Result<()> {
    let subjects = Subjects::new(&config.router.subject_prefix);
    let metrics = Arc::new(Metrics::install(&subjects.decide)?);

    if let Some(cert) = &config.nats.cert {
        let days = tls::check_client_certificate(cert).map_err(ConfigError)?;
        metrics.client_cert_days_left.set(days);
    }

    let router = Router::new(RouterSettings {
        allowed_tenants: config.allowed_tenants(),
        sticky_capacity: config.router.sticky_capacity,
        idempotency_capacity: config.router.idempotency_capacity,
        idempotency_ttl_ms: config.router.idempotency_ttl_seconds.saturating_mul(1000),
        ..RouterSettings::default()
    })
    .with_sticky_export(config.router.sticky_store == StickyStore::Kv);
    let from_kv = config.router.policy_source == PolicySource::Kv;
    let mut refused = 0;
    if from_kv {
        tracing::info!("policies come from the key-value bucket router_policies");
    } else {
        refused = load_policies(&router, &config, &metrics).map_err(ConfigError)?;
    }
    if check_only {
        if refused > 0 {
            return Err(ConfigError(anyhow::anyhow!(
                "{refused} policy file(s) refused (see the log lines above); fix them and run --check again"
            ))
            .into());
        }
        let source = if from_kv {
            "the key-value bucket router_policies (read at start)".to_owned()
        } else {
            config.router.policy_dir.display().to_string()
        };
        println!(
            "configuration ok: {} policies from {source}, NATS {}{}",
            router.policies().snapshot().len(),
            config.nats.url,
            if config.uses_tls() { " (TLS)" } else { "" }
        );
        return Ok(());
    }

    tls::preflight(
        &config.nats.url,
        config.uses_tls(),
        config.nats.cert.is_some(),
    )
    .await
    .map_err(ConfigError)?;
    // Two connections: one carries only decide traffic (so its received-message count
    // measures the pending queue exactly), the other control traffic (feedback, status,
    // micro service) so that neither waits behind the other's I/O.
    let diagnosis = ConnectDiagnosis::new(config.nats.clone());
    let client = nats::connect(&config.nats, "control", metrics.clone(), diagnosis.clone()).await?;
    let decide_client = nats::connect(&config.nats, "decide", metrics.clone(), diagnosis).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    if config.router.dlq_enabled {
        dlq::ensure_stream(&client, &subjects.dlq, stop_rx.clone()).await;
    }

    let sticky_channel = (config.router.sticky_store == StickyStore::Kv).then(sticky_sync::channel);
    let (sticky_sync, sticky_mappings) = match sticky_channel {
        Some(channel) => (Some(channel.sync), Some(channel.mappings)),
        None => (None, None),
    };
    let shared = Arc::new(Shared {
        router,
        monitor: BackpressureMonitor::new(
            config.thresholds(),
            config.backpressure.retry_after_seconds,
        ),
        metrics,
        subjects,
        dlq_enabled: config.router.dlq_enabled,
        decide_stats: decide_client.statistics(),
        connections: vec![client.clone(), decide_client.clone()],
        subscribed: AtomicU64::new(0),
        taken: AtomicU64::new(0),
        inflight: AtomicU64::new(0),
        sticky_sync,
    });

    let replicas = config.router.kv_replicas;
    let kv_policy_task = from_kv.then(|| {
        tokio::spawn(kv_policies::run(
            client.clone(),
            shared.clone(),
            replicas,
            stop_rx.clone(),
        ))
    });
    let sticky_task = sticky_mappings.map(|mappings| {
        tokio::spawn(sticky_sync::run(
            client.clone(),
            shared.clone(),
            mappings,
            replicas,
            stop_rx.clone(),
        ))
    });

    let (bound, http_server) =
        http::bind(config.http.metrics_addr, shared.clone(), stop_rx.clone()).await?;
    tracing::info!(addr = %bound, "HTTP listening: /metrics /healthz /readyz");
    let http_task = tokio::spawn(http_server);

    let feedback_task = tokio::spawn(service::serve_feedback(
        client.clone(),
        shared.clone(),
        stop_rx.clone(),
    ));
    let status_task = tokio::spawn(service::serve_status(
        client.clone(),
        shared.clone(),
        config.router.queue_group.clone(),
        stop_rx.clone(),
    ));
    let supervisor = tokio::spawn(service::supervise(shared.clone(), stop_rx.clone()));
    let signals = tokio::spawn(handle_signals(shared.clone(), config.clone(), stop_tx));

    let decide = service::serve_decide(
        decide_client.clone(),
        shared.clone(),
        config.router.queue_group.clone(),
        config.router.concurrency,
        Duration::from_secs(config.router.drain_timeout_seconds),
        stop_rx,
    )
    .await;
    signals.abort();
    for task in [feedback_task, status_task] {
        if let Ok(Ok(Err(err))) = tokio::time::timeout(Duration::from_secs(2), task).await {
            tracing::warn!(%err, "task ended with an error");
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), supervisor).await;
    for task in [kv_policy_task, sticky_task].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
    }
    service::flush_before_stop(&client, "final flush").await;
    let _ = tokio::time::timeout(Duration::from_secs(2), http_task).await;
    decide?;
    tracing::info!("stopped");
    Ok(())
}

/// Loads the policy directory; returns how many files were refused.
fn load_policies(router: &Router, config: &Config, metrics: &Metrics) -> anyhow::Result<usize> {
    let report = router
        .policies()
        .load_dir(&config.router.policy_dir)
        .with_context(|| "cannot load policies; check router.policy_dir")?;
    for error in &report.errors {
        tracing::error!(file = %error.path.display(), reason = %error.reason, "policy file refused");
    }
    metrics.policies_loaded.set(report.loaded as f64);
    tracing::info!(
        loaded = report.loaded,
        refused = report.errors.len(),
        dir = %config.router.policy_dir.display(),
        "policies loaded"
    );
    if report.loaded == 0 {
        tracing::warn!("no policy loaded: every decide request will get policy_not_found");
    }
    Ok(report.errors.len())
}

async fn handle_signals(
    shared: Arc<Shared>,
    config: Config,
    stop: watch::Sender<bool>,
) -> anyhow::Result<()> {
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    loop {
        tokio::select! {
            _ = hangup.recv() => reload(&shared, &config),
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    tracing::info!("shutdown requested");
    let _ = stop.send(true);
    Ok(())
}

fn reload(shared: &Shared, config: &Config) {
    if config.router.policy_source == PolicySource::Kv {
        tracing::info!(
            "SIGHUP ignored: policies come from the key-value bucket and apply as they change"
        );
        return;
    }
    match shared.router.policies().load_dir(&config.router.policy_dir) {
        Ok(report) => {
            for error in &report.errors {
                tracing::error!(file = %error.path.display(), reason = %error.reason, "policy file refused; previous version kept if any");
            }
            shared.metrics.policies_loaded.set(report.loaded as f64);
            if report.errors.is_empty() {
                shared.metrics.reloads_ok.increment(1);
            } else {
                shared.metrics.reloads_failed.increment(1);
            }
            tracing::info!(
                loaded = report.loaded,
                refused = report.errors.len(),
                "policies reloaded"
            );
        }
        Err(err) => {
            shared.metrics.reloads_failed.increment(1);
            tracing::error!(%err, "policy reload failed; previous policies kept");
        }
    }
}
