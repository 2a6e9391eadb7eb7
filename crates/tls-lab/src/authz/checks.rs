//! The steps of the authorization cases: requests, expected refusals (by the server or the
//! router), the operator's allowed work and the router started with the wrong role.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use nats_harness::RouterProcess;
use router_bin::transport::connect_diagnosis::error_chain;
use serde_json::{json, Value};

use super::identities::Identities;
use super::session::{Session, WAIT};

/// A decide request body of `tenant`.
pub fn body(tenant: &str) -> String {
    json!({"version": "1", "request_id": format!("authz-{tenant}"), "tenant_id": tenant,
           "task": {"type": "text.generate", "payload_ref": "s3://validate-tls/authz"}})
    .to_string()
}

/// A failure report of `tenant` for openai.
pub fn feedback(tenant: &str) -> String {
    json!({"tenant_id": tenant, "provider_id": "openai", "outcome": "failure"}).to_string()
}

/// Sends `body` on `subject` as `session`; the reply as JSON, or why there was none.
pub async fn request(session: &Session, subject: &str, body: String) -> Result<Value, String> {
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

/// A decide request of `tenant` on `subject`.
pub async fn decide(session: &Session, subject: &str, tenant: &str) -> Result<Value, String> {
    request(session, subject, body(tenant)).await
}

/// Passes when the reply is `ok: true`.
pub fn ok_true(outcome: Result<Value, String>) -> Result<String, String> {
    match outcome {
        Ok(reply) if reply["ok"] == true => Ok(format!(
            "ok:true ({})",
            reply["decision"]["provider_id"].as_str().unwrap_or("?")
        )),
        Ok(reply) => Err(format!("answered {reply}")),
        Err(err) => Err(err),
    }
}

/// Passes when the router answered `unauthorized` and its refusal counter rose.
pub fn refused_by_router(
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

/// Passes when the server reports a permissions violation of `kind` for `subject`.
pub async fn violation(session: &Session, kind: &str, subject: &str) -> Result<String, String> {
    session
        .violation(kind, subject)
        .await
        .map(|e| format!("denied: {e}"))
        .ok_or_else(|| format!("no {kind} permissions violation for {subject} within 3 s"))
}

/// The router's `router_tenant_scope_refusals_total{endpoint=...}`.
pub fn scope_refusals(router: &RouterProcess, endpoint: &str) -> Option<f64> {
    let (_, text) = router.get("/metrics").ok()?;
    let series = format!("router_tenant_scope_refusals_total{{endpoint=\"{endpoint}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
}

/// The tenant subscribes to the decide subject (in the router's queue group and without);
/// the internal caller then sends 20 requests: all must be answered by the router and none
/// delivered to the tenant.
pub async fn steal_decide(
    thief: &Session,
    caller: &Session,
    subject: &str,
) -> Result<String, String> {
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
pub async fn js_denied<F, Fut, E>(session: &Session, call: F) -> Result<String, String>
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
pub async fn operator_work(session: &Session) -> Result<String, String> {
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
pub async fn router_with_wrong_role(binary: &Path, ids: &Identities) -> Result<String, String> {
    let output = tokio::process::Command::new(binary)
        .args(["--config", "/dev/null", "--check", "--policy-dir"])
        .arg(crate::project_root().join("config/policies"))
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
