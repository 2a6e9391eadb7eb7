//! The authorization cases: who may do what once connected, against the shipped
//! `config/nats_tls.conf` (nats-server maps each certificate to a user with permissions) and
//! the running router (which refuses a tenant's subject carrying another tenant's body).
//!
//! A refusal by nats-server passes only when the server reported a permissions violation for
//! the subject of the case; a refusal by the router only when it answered `unauthorized` and
//! its `router_tenant_scope_refusals_total` counter rose. Every denied case has an allowed
//! twin (the operator writes the policy the caller could not, a tenant decides on its own
//! subject), so a server that refuses everything fails too.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use certs::{BundlePaths, Identity};
use futures::StreamExt;
use nats_harness::RouterProcess;
use router_bin::config::Subjects;
use router_bin::transport::connect_diagnosis::error_chain;
use router_bin::transport::nats::{self, ClientTls};
use serde_json::{json, Value};

use super::cases::{CaseResult, ClientCert, Target};
use super::lab::RunLog;

/// The subjects of the default prefix.
const PREFIX: &str = "beamline.router";
/// Longest wait for a connection, a reply or a server error.
const WAIT: Duration = Duration::from_secs(3);

/// A connection of one identity, with the errors the server sent it.
struct Session {
    client: Client,
    server_errors: Arc<Mutex<Vec<String>>>,
}

impl Session {
    async fn open(
        target: Target,
        ca: &Path,
        cert: &ClientCert,
        name: &str,
    ) -> Result<Self, String> {
        let server_errors = Arc::new(Mutex::new(Vec::new()));
        let sink = server_errors.clone();
        let options = ConnectOptions::new()
            .name(format!("validate-tls-authz-{name}"))
            .connection_timeout(WAIT)
            .request_timeout(Some(WAIT))
            .max_reconnects(1)
            .ignore_discovered_servers()
            .event_callback(move |event| {
                let sink = sink.clone();
                async move {
                    if let Event::ServerError(err) = event {
                        if let Ok(mut errors) = sink.lock() {
                            errors.push(err.to_string());
                        }
                    }
                }
            });
        let tls = ClientTls {
            ca: Some(ca.to_path_buf()),
            client: Some((cert.cert.clone(), cert.key.clone())),
        };
        let url = format!("tls://127.0.0.1:{}", target.port);
        match tokio::time::timeout(
            WAIT * 2,
            nats::tls_options(options, Some(&tls)).connect(url),
        )
        .await
        {
            Err(_) => Err("no connection within 6 s".to_owned()),
            Ok(Err(err)) => Err(error_chain(&err)),
            Ok(Ok(client)) => Ok(Session {
                client,
                server_errors,
            }),
        }
    }

    /// Forgets the errors reported so far (before the next case).
    fn forget_errors(&self) {
        if let Ok(mut errors) = self.server_errors.lock() {
            errors.clear();
        }
    }

    /// Waits up to [`WAIT`] for the server to report a permissions violation of `kind`
    /// (`Publish`, `Subscription`) whose subject starts with `subject`; returns its text.
    async fn violation(&self, kind: &str, subject: &str) -> Option<String> {
        let needle = format!("permissions violation for {kind} to \"{subject}").to_lowercase();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let _ = self.client.flush().await;
            if let Ok(errors) = self.server_errors.lock() {
                if let Some(found) = errors.iter().find(|e| e.to_lowercase().contains(&needle)) {
                    return Some(found.clone());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The identities' certificates, issued from the server's CA.
struct Identities {
    ca: std::path::PathBuf,
    operator: ClientCert,
    internal: ClientCert,
    acme: ClientCert,
    roleless: ClientCert,
    set: BundlePaths,
}

impl Identities {
    fn issue(server_tls: &BundlePaths, certs_dir: &Path) -> anyhow::Result<Self> {
        let of = |identity: &Identity| -> anyhow::Result<ClientCert> {
            let (cert, key) = server_tls.ensure_identity(identity)?;
            Ok(ClientCert { cert, key })
        };
        let roleless = ClientCert {
            cert: certs_dir.join("roleless-client-cert.pem"),
            key: certs_dir.join("roleless-client-key.pem"),
        };
        server_tls
            .authority()?
            .issue(&certs::LeafSpec::client(
                "router-client",
                certs::Validity::days_from_now(1)?,
            ))?
            .write(&roleless.cert, &roleless.key)?;
        Ok(Identities {
            ca: server_tls.ca_cert.clone(),
            operator: of(&Identity::operator())?,
            internal: of(&Identity::internal())?,
            acme: of(&Identity::tenant("acme")?)?,
            roleless,
            set: server_tls.clone(),
        })
    }
}

/// The results of one case: name, what must happen, what happened.
struct Row {
    results: Vec<CaseResult>,
}

impl Row {
    fn record(
        &mut self,
        log: &mut RunLog,
        name: &str,
        expected: &str,
        outcome: Result<String, String>,
    ) {
        let (pass, observed) = match outcome {
            Ok(observed) => (true, observed),
            Err(observed) => (false, observed),
        };
        log.line(&format!("authz {name}: {observed}"));
        self.results
            .push(CaseResult::new(name, expected, &observed, pass));
    }
}

/// Runs every authorization case against `main`, where `router` serves the default prefix.
pub async fn run(
    server_tls: &BundlePaths,
    certs_dir: &Path,
    main: Target,
    router: &RouterProcess,
    router_binary: &Path,
    log: &mut RunLog,
) -> Vec<CaseResult> {
    let mut row = Row {
        results: Vec::new(),
    };
    let ids = match Identities::issue(server_tls, certs_dir) {
        Ok(ids) => ids,
        Err(err) => {
            row.record(
                log,
                "authorization certificates",
                "issued",
                Err(format!("{err:#}")),
            );
            return row.results;
        }
    };
    let subjects = Subjects::new(PREFIX);
    let (acme, operator, internal) = (
        Session::open(main, &ids.ca, &ids.acme, "acme").await,
        Session::open(main, &ids.ca, &ids.operator, "operator").await,
        Session::open(main, &ids.ca, &ids.internal, "internal").await,
    );
    let (acme, operator, internal) = match (acme, operator, internal) {
        (Ok(acme), Ok(operator), Ok(internal)) => (acme, operator, internal),
        (acme, operator, internal) => {
            let why = [acme.err(), operator.err(), internal.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            row.record(
                log,
                "tenant, operator and internal callers connect",
                "connected",
                Err(why),
            );
            return row.results;
        }
    };

    // Deciding.
    let outcome = decide(&acme, &subjects.decide_for("acme"), "acme").await;
    row.record(
        log,
        "tenant acme decides on its subject",
        "ok:true",
        ok_true(outcome),
    );
    let before = scope_refusals(router, "decide");
    let outcome = decide(&acme, &subjects.decide_for("acme"), "globex").await;
    let after = scope_refusals(router, "decide");
    row.record(
        log,
        "tenant acme asks for globex on its subject",
        "router: unauthorized, refusal counted",
        refused_by_router(outcome, before, after),
    );
    let subject = subjects.decide_for("globex");
    acme.forget_errors();
    let _ = acme
        .client
        .publish(subject.clone(), body("globex").into())
        .await;
    row.record(
        log,
        "tenant acme publishes on globex's subject",
        "server: publish violation",
        violation(&acme, "Publish", &format!("{subject}\"")).await,
    );
    let outcome = decide(&internal, &subjects.decide, "globex").await;
    row.record(
        log,
        "internal caller decides any tenant (unscoped)",
        "ok:true",
        ok_true(outcome),
    );
    row.record(
        log,
        "tenant acme subscribes to the decide subject",
        "server: subscription violation, 0 requests delivered",
        steal_decide(&acme, &internal, &subjects.decide).await,
    );
    let subject = "_INBOX.tenant.globex.>";
    acme.forget_errors();
    let _ = acme.client.subscribe(subject).await;
    row.record(
        log,
        "tenant acme subscribes to globex's replies",
        "server: subscription violation",
        violation(&acme, "Subscription", &format!("{subject}\"")).await,
    );

    // Feedback.
    let subject = subjects.feedback_for("globex");
    acme.forget_errors();
    let _ = acme
        .client
        .publish(subject.clone(), feedback("globex").into())
        .await;
    row.record(
        log,
        "tenant acme reports on globex's feedback subject",
        "server: publish violation",
        violation(&acme, "Publish", &format!("{subject}\"")).await,
    );
    let before = scope_refusals(router, "feedback");
    let answer = request(&acme, &subjects.feedback_for("acme"), feedback("globex")).await;
    let after = scope_refusals(router, "feedback");
    row.record(
        log,
        "tenant acme reports globex failures on its subject",
        "router: unauthorized, refusal counted",
        refused_by_router(answer, before, after),
    );

    // Policies and dead letters.
    row.record(
        log,
        "tenant acme writes a policy",
        "server: publish violation ($JS.API)",
        js_denied(&acme, |js| async move {
            js.create_key_value(router_bin::fleet::buckets::policy_bucket(1))
                .await
                .map(|_| ())
        })
        .await,
    );
    row.record(
        log,
        "internal caller reads the DLQ",
        "server: publish violation ($JS.API)",
        js_denied(&internal, |js| async move {
            js.get_stream(router_bin::service::dlq::STREAM)
                .await
                .map(|_| ())
        })
        .await,
    );
    row.record(
        log,
        "tenant acme reads the DLQ",
        "server: publish violation ($JS.API)",
        js_denied(&acme, |js| async move {
            js.get_stream(router_bin::service::dlq::STREAM)
                .await
                .map(|_| ())
        })
        .await,
    );
    row.record(
        log,
        "operator writes and deletes a policy, reads the DLQ",
        "allowed",
        operator_work(&operator).await,
    );

    // Certificates without the right role.
    let outcome = Session::open(main, &ids.ca, &ids.roleless, "roleless").await;
    row.record(
        log,
        "certificate from the CA without a role",
        "server: Authorization Violation",
        match outcome {
            Err(err) if err.contains("uthorization") => Ok(format!("refused: {err}")),
            Err(err) => Err(format!("refused for another reason: {err}")),
            Ok(_) => Err("ACCEPTED".to_owned()),
        },
    );
    row.record(
        log,
        "router started with the operator's certificate",
        "exit 2 naming the router certificate",
        router_with_wrong_role(router_binary, &ids).await,
    );
    row.results
}

fn body(tenant: &str) -> String {
    json!({"version": "1", "request_id": format!("authz-{tenant}"), "tenant_id": tenant,
           "task": {"type": "text.generate", "payload_ref": "s3://validate-tls/authz"}})
    .to_string()
}

fn feedback(tenant: &str) -> String {
    json!({"tenant_id": tenant, "provider_id": "openai", "outcome": "failure"}).to_string()
}

async fn request(session: &Session, subject: &str, body: String) -> Result<Value, String> {
    match tokio::time::timeout(
        WAIT,
        session.client.request(subject.to_owned(), body.into()),
    )
    .await
    {
        Ok(Ok(reply)) => serde_json::from_slice(&reply.payload).map_err(|e| e.to_string()),
        Ok(Err(err)) => Err(error_chain(&err)),
        Err(_) => Err("no reply within 3 s".to_owned()),
    }
}

async fn decide(session: &Session, subject: &str, tenant: &str) -> Result<Value, String> {
    request(session, subject, body(tenant)).await
}

fn ok_true(outcome: Result<Value, String>) -> Result<String, String> {
    match outcome {
        Ok(reply) if reply["ok"] == true => Ok(format!(
            "ok:true ({})",
            reply["decision"]["provider_id"].as_str().unwrap_or("?")
        )),
        Ok(reply) => Err(format!("answered {reply}")),
        Err(err) => Err(err),
    }
}

fn refused_by_router(
    outcome: Result<Value, String>,
    before: Option<f64>,
    after: Option<f64>,
) -> Result<String, String> {
    let counted = match (before, after) {
        (Some(before), Some(after)) => after - before >= 1.0,
        _ => false,
    };
    match outcome {
        Ok(reply) if reply["error"]["code"] == "unauthorized" && counted => Ok(format!(
            "unauthorized: {}; refusals {} -> {}",
            reply["error"]["message"].as_str().unwrap_or(""),
            before.unwrap_or(0.0),
            after.unwrap_or(0.0)
        )),
        Ok(reply) => Err(format!(
            "answered {reply}; refusals {before:?} -> {after:?}"
        )),
        Err(err) => Err(err),
    }
}

async fn violation(session: &Session, kind: &str, subject: &str) -> Result<String, String> {
    session
        .violation(kind, subject)
        .await
        .map(|e| format!("denied: {e}"))
        .ok_or_else(|| format!("no {kind} permissions violation for {subject} within 3 s"))
}

/// The router's `router_tenant_scope_refusals_total{endpoint=...}`.
fn scope_refusals(router: &RouterProcess, endpoint: &str) -> Option<f64> {
    let (_, text) = router.get("/metrics").ok()?;
    let series = format!("router_tenant_scope_refusals_total{{endpoint=\"{endpoint}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
}

/// The tenant subscribes to the decide subject (in the router's queue group and without);
/// the internal caller then sends 20 requests: all must be answered by the router and none
/// delivered to the tenant.
async fn steal_decide(thief: &Session, caller: &Session, subject: &str) -> Result<String, String> {
    thief.forget_errors();
    let queue = thief
        .client
        .queue_subscribe(subject.to_owned(), "router-decide-group".to_owned())
        .await;
    let plain = thief.client.subscribe(subject.to_owned()).await;
    let denied = thief
        .violation("Subscription", &format!("{subject}\""))
        .await;
    let mut answered = 0;
    for _ in 0..20 {
        if let Ok(reply) = decide(caller, subject, "acme").await {
            answered += usize::from(reply["ok"] == true);
        }
    }
    let mut stolen = 0;
    for subscription in [queue, plain].into_iter().flatten() {
        let mut subscription = subscription;
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(200), subscription.next()).await
        {
            stolen += 1;
        }
    }
    match denied {
        Some(err) if stolen == 0 && answered == 20 => Ok(format!(
            "denied: {err}; 0 of 20 requests delivered to it, 20 answered by the router"
        )),
        _ => Err(format!(
            "violation {denied:?}; {stolen} requests delivered to the tenant, {answered} of 20 answered"
        )),
    }
}

/// Runs a JetStream call as `session`: it must fail and the server must report a publish
/// violation on `$JS.API`.
async fn js_denied<F, Fut, E>(session: &Session, call: F) -> Result<String, String>
where
    F: FnOnce(async_nats::jetstream::Context) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    session.forget_errors();
    let mut js = async_nats::jetstream::new(session.client.clone());
    js.set_timeout(WAIT);
    let outcome = call(js).await;
    let denied = session.violation("Publish", "$JS.API.").await;
    match (outcome, denied) {
        (Err(err), Some(violation)) => Ok(format!("denied: {violation} (client: {err})")),
        (Ok(()), _) => Err("ALLOWED".to_owned()),
        (Err(err), None) => Err(format!("failed without a permissions violation: {err}")),
    }
}

/// The operator creates the policy bucket, writes and deletes a policy, and reads the DLQ
/// stream's info.
async fn operator_work(session: &Session) -> Result<String, String> {
    let js = async_nats::jetstream::new(session.client.clone());
    let bucket =
        router_bin::fleet::buckets::open(&js, router_bin::fleet::buckets::policy_bucket(1))
            .await
            .map_err(|e| format!("policy bucket: {e:#}"))?;
    let policy = json!({"providers": [{"name": "openai", "weight": 100}]}).to_string();
    bucket
        .put("validate_tls.authz", policy.into())
        .await
        .map_err(|e| format!("policy write: {e}"))?;
    bucket
        .delete("validate_tls.authz")
        .await
        .map_err(|e| format!("policy delete: {e}"))?;
    let mut stream = js
        .get_stream(router_bin::service::dlq::STREAM)
        .await
        .map_err(|e| format!("DLQ: {e}"))?;
    let messages = stream
        .info()
        .await
        .map_err(|e| format!("DLQ info: {e}"))?
        .state
        .messages;
    if let Ok(errors) = session.server_errors.lock() {
        if !errors.is_empty() {
            return Err(format!("server errors: {}", errors.join("; ")));
        }
    }
    Ok(format!(
        "policy written and deleted; DLQ readable ({messages} messages)"
    ))
}

/// The router binary with the operator's certificate must exit 2 before connecting, naming
/// the certificate to use.
async fn router_with_wrong_role(binary: &Path, ids: &Identities) -> Result<String, String> {
    let output = tokio::process::Command::new(binary)
        .args(["--config", "/dev/null", "--check", "--policy-dir"])
        .arg(crate::paths::project_root().join("config/policies"))
        .arg("--tls-ca")
        .arg(&ids.ca)
        .arg("--tls-cert")
        .arg(&ids.operator.cert)
        .arg("--tls-key")
        .arg(&ids.operator.key)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .map_err(|_| "the router did not exit within 20 s".to_owned())?
        .map_err(|e| format!("cannot run the router: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().last().unwrap_or("").to_owned();
    let router_cert = ids
        .set
        .router_cert
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    match (output.status.code(), router_cert) {
        (Some(2), Some(name)) if line.contains(&name) => Ok(format!("exit 2: {line}")),
        (code, _) => Err(format!("exit {code:?}: {line}")),
    }
}
