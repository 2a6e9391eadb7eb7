//! Starting a router: from a [`Config`] and a shutdown future to a [`RunningRouter`] with its
//! HTTP address, readiness and completion. Every task of the service is spawned here.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use router_core::{BackpressureMonitor, Router, RouterSettings};

use crate::config::{Config, PolicySource, Responder, StickyStore, Subjects};
use crate::fleet::idempotency::FleetIdempotency;
use crate::fleet::policies_kv::{self, PolicyTarget};
use crate::service::backpressure::{Backpressure, IntakeCounts};
use crate::service::control::{self, ControlSubjects};
use crate::service::decide::{self, DecidePath, Intake};
use crate::service::dlq::{self, Dlq};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::records;
use crate::telemetry::traces::Traces;
use crate::transport::connect_diagnosis::ConnectDiagnosis;
use crate::transport::readiness::{self, Readiness, ReadyReport};
use crate::{
    fleet::policies_dir, fleet::sticky, http, service::feedback, service::supervisor,
    transport::nats, transport::tls,
};

/// A start-up failure caused by configuration (the binary exits 2) rather than by the
/// environment.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct ConfigError(pub anyhow::Error);

/// A router started by [`start`].
pub struct RunningRouter {
    http_addr: SocketAddr,
    readiness: Arc<Readiness>,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    config: Config,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningRouter {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Waits until the router is ready: connected, subscribed, with policies.
    pub async fn ready(&self) {
        self.readiness.wait_ready().await;
    }

    /// What readiness is made of, now.
    pub fn readiness(&self) -> ReadyReport {
        self.readiness.report()
    }

    /// The request path (policies, breakers, sticky sessions).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The Prometheus text `/metrics` serves.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Reloads the policy directory (what SIGHUP does); ignored when policies come from the
    /// key-value bucket.
    pub fn reload_policies(&self) {
        if self.config.router.policy_source == PolicySource::Kv {
            tracing::info!(
                "reload ignored: policies come from the key-value bucket and apply as they change"
            );
            return;
        }
        policies_dir::reload(&self.router, &self.config.router.policy_dir, &self.metrics);
        self.readiness.touch();
    }

    /// Waits until the router has stopped (after its shutdown future completed and it
    /// drained).
    pub async fn stopped(self) -> anyhow::Result<()> {
        match self.task.await {
            Ok(result) => result,
            Err(err) => Err(anyhow::anyhow!("the router task failed: {err}")),
        }
    }
}

/// What `router --check` reports: the configuration, certificate and policies are usable.
pub fn check(config: &Config) -> anyhow::Result<String> {
    let metrics = Metrics::new(&Subjects::new(&config.router.subject_prefix).decide)?;
    let router = prepare(config, &metrics, true)?;
    let from_kv = config.router.policy_source == PolicySource::Kv;
    let source = if from_kv {
        "the key-value bucket router_policies (read at start)".to_owned()
    } else {
        config.router.policy_dir.display().to_string()
    };
    Ok(format!(
        "configuration ok: {} policies from {source}, NATS {}{}",
        router.policies().snapshot().len(),
        config.nats.url,
        if config.uses_tls() { " (TLS)" } else { "" }
    ))
}

/// The checks made before connecting, and the request path with its policies. With `strict`
/// (`--check`) a refused policy file is an error; a start serves the other policies.
fn prepare(config: &Config, metrics: &Metrics, strict: bool) -> anyhow::Result<Router> {
    if let Some(cert) = &config.nats.cert {
        let days = tls::check_client_certificate(cert).map_err(ConfigError)?;
        metrics.client_cert_days_left.set(days);
        tls::check_router_certificate(cert).map_err(ConfigError)?;
    }
    let router = Router::new(RouterSettings {
        allowed_tenants: config.allowed_tenants(),
        sticky_capacity: config.router.sticky_capacity,
        idempotency_capacity: config.router.idempotency_capacity,
        idempotency_ttl_ms: config.router.idempotency_ttl_seconds.saturating_mul(1000),
        ..RouterSettings::default()
    })
    .with_sticky_export(config.router.sticky_store == StickyStore::Kv)
    .with_idempotency_export(config.router.idempotency_store == StickyStore::Kv)
    .with_decision_records(config.records.sample_ratio);
    let router = if config.router.quota_store == StickyStore::Kv {
        router.with_leased_quotas()
    } else {
        router
    };
    if config.router.policy_source == PolicySource::Kv {
        tracing::info!("policies come from the key-value bucket router_policies");
        return Ok(router);
    }
    let refused =
        policies_dir::load(&router, &config.router.policy_dir, metrics).map_err(ConfigError)?;
    if strict && refused > 0 {
        return Err(ConfigError(anyhow::anyhow!(
            "{refused} policy file(s) refused (see the log lines above); fix them and run --check again"
        ))
        .into());
    }
    Ok(router)
}

/// Starts a router from `config`; it runs until `shutdown` completes, then stops taking
/// requests, answers those received, flushes and ends ([`RunningRouter::stopped`]).
///
/// Fails with a [`ConfigError`] for a configuration problem (certificate, policy directory,
/// plaintext against a TLS-only server) and with another error when the environment refuses
/// (the HTTP port is busy). NATS need not be reachable yet: the router connects when it can
/// and reports not ready meanwhile.
pub async fn start(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunningRouter> {
    let subjects = Subjects::new(&config.router.subject_prefix);
    let metrics = Arc::new(Metrics::new(&subjects.decide)?);
    let router = Arc::new(prepare(&config, &metrics, false)?);
    // The echo responder (the bench's reference) makes no decision, no span and no record.
    let traces = match config.router.responder {
        Responder::Decide => Traces::start(&config.tracing)
            .map_err(ConfigError)?
            .map(Arc::new),
        Responder::Echo => None,
    };

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
    let ready_signal = readiness::signal();
    let diagnosis = ConnectDiagnosis::new(config.nats.clone());
    let connect = |role| {
        nats::connect(
            &config.nats,
            role,
            metrics.clone(),
            diagnosis.clone(),
            ready_signal.clone(),
        )
    };
    let client = connect("control").await?;
    let decide_client = connect("decide").await?;
    let readiness = Arc::new(Readiness::new(
        router.clone(),
        vec![client.clone(), decide_client.clone()],
        ready_signal,
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
    });

    let (http_addr, http_server) = http::bind(
        config.http.metrics_addr,
        metrics.clone(),
        readiness.clone(),
        stop_rx.clone(),
    )
    .await?;
    tracing::info!(addr = %http_addr, "HTTP listening: /metrics /healthz /readyz");
    let http_task = tokio::spawn(http_server);

    if config.router.dlq_enabled {
        dlq::ensure_stream(&client, &subjects.dlq, stop_rx.clone()).await;
    }

    let backpressure = Arc::new(Backpressure::new(
        BackpressureMonitor::new(config.thresholds(), config.backpressure.retry_after_seconds),
        IntakeCounts::new(decide_client.statistics()),
        metrics.clone(),
    ));
    let replicas = config.router.kv_replicas;
    let mut background = Vec::new();
    if config.router.policy_source == PolicySource::Kv {
        let target = PolicyTarget {
            router: router.clone(),
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        };
        background.push(tokio::spawn(policies_kv::run(
            client.clone(),
            target,
            replicas,
            stop_rx.clone(),
        )));
    }
    let mut sticky_sync = None;
    if config.router.sticky_store == StickyStore::Kv {
        let channel = sticky::channel(&metrics.registry);
        sticky_sync = Some(channel.sync);
        let (client, router, metrics, stop) = (
            client.clone(),
            router.clone(),
            metrics.clone(),
            stop_rx.clone(),
        );
        background.push(tokio::spawn(async move {
            sticky::run(
                client,
                router,
                &metrics.registry,
                channel.mappings,
                replicas,
                stop,
            )
            .await
        }));
    }

    let mut quota_leased = None;
    if config.router.quota_store == StickyStore::Kv {
        // The inbox prefix's unique token names this router's shares in the records.
        let inbox = client.new_inbox();
        let unique = inbox.rsplit('.').next().unwrap_or_default();
        let router_id = format!("{}-{unique}", config.nats.name);
        quota_leased = Some(
            crate::fleet::quota::start(
                client.clone(),
                router.clone(),
                router_id,
                replicas,
                stop_rx.clone(),
            )
            .await,
        );
    }

    let mut record_sink = None;
    if config.records.sample_ratio > 0.0 && config.router.responder == Responder::Decide {
        let channel = records::channel(&metrics.registry, config.records.queue_capacity);
        record_sink = Some(channel.sink);
        background.push(tokio::spawn(records::run(
            client.clone(),
            config.records.clone(),
            config.router.subject_prefix.clone(),
            channel.written,
            channel.records,
            stop_rx.clone(),
        )));
    }

    let counters = control::Counters::default();
    let decide_counters = counters.decide.clone();
    let feedback_task = tokio::spawn(feedback::serve(
        client.clone(),
        [subjects.feedback.clone(), subjects.feedback_scoped.clone()],
        feedback::FeedbackPath {
            router: router.clone(),
            traces: traces.clone(),
            metrics: metrics.clone(),
            counters: counters.feedback.clone(),
        },
        readiness.clone(),
        stop_rx.clone(),
    ));
    let control_task = tokio::spawn(control::serve(
        client.clone(),
        ControlSubjects {
            decide: subjects.decide.clone(),
            feedback: subjects.feedback.clone(),
            status: subjects.backpressure_status.clone(),
            queue_group: config.router.queue_group.clone(),
        },
        counters,
        router.clone(),
        backpressure.clone(),
        readiness.clone(),
        stop_rx.clone(),
    ));
    let supervisor_task = tokio::spawn(supervisor::run(
        supervisor::Supervised {
            backpressure: backpressure.clone(),
            readiness: readiness.clone(),
            router: router.clone(),
            metrics: metrics.clone(),
        },
        stop_rx.clone(),
    ));
    let path = Arc::new(DecidePath {
        router: router.clone(),
        responder: config.router.responder,
        backpressure,
        metrics: metrics.clone(),
        dlq: config
            .router
            .dlq_enabled
            .then(|| Dlq::new(subjects.dlq.clone(), metrics.clone())),
        sticky_sync,
        records: record_sink,
        traces: traces.clone(),
        default_reply: subjects.decide_reply.clone().into(),
        scoped_subject: subjects.decide_scoped.clone(),
        quota_leased,
        counters: decide_counters,
        fleet_idempotency: (config.router.idempotency_store == StickyStore::Kv).then(|| {
            FleetIdempotency::start(
                client.clone(),
                replicas,
                Duration::from_secs(config.router.idempotency_ttl_seconds),
                &metrics.registry,
                stop_rx.clone(),
            )
        }),
    });
    let intake = Intake {
        subject: subjects.decide.clone(),
        scoped_subject: subjects.decide_scoped.clone(),
        queue_group: config.router.queue_group.clone(),
        workers: config.router.concurrency,
        queue_capacity: config.router.queue_capacity,
        drain_timeout: Duration::from_secs(config.router.drain_timeout_seconds),
    };
    let decide_task = decide::serve(decide_client, path, intake, readiness.clone(), stop_rx);

    let task = tokio::spawn(async move {
        let decided = decide_task.await;
        for task in [feedback_task, control_task] {
            if let Ok(Ok(Err(err))) = tokio::time::timeout(Duration::from_secs(2), task).await {
                tracing::warn!(%err, "task ended with an error");
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), supervisor_task).await;
        for task in background {
            let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
        }
        nats::flush_before_stop(&client, "final flush").await;
        if let Some(traces) = traces {
            traces.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), http_task).await;
        decided?;
        tracing::info!("stopped");
        Ok(())
    });
    Ok(RunningRouter {
        http_addr,
        readiness,
        router,
        metrics,
        config,
        task,
    })
}
