//! `router decide` and `router feedback`: one request, one printed answer.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use async_nats::{Client, RequestErrorKind};
use serde_json::{json, Value};

use super::commands::{DecideArgs, FeedbackArgs};
use crate::config::{Config, Subjects};
use crate::transport::connect_diagnosis::error_chain;
use crate::{transport::nats, transport::tls};

/// Longest wait for the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// One connection with the configuration's URL and TLS files (the service's own), failing
/// fast with the reason instead of retrying.
pub async fn connect(config: &Config) -> anyhow::Result<Client> {
    let servers = nats::server_addrs(&config.nats.url)?;
    let options = nats::base_options(&config.nats, "cli").connection_timeout(CONNECT_TIMEOUT);
    match tokio::time::timeout(CONNECT_TIMEOUT * 2, options.connect(servers)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(err)) => anyhow::bail!(
            "cannot connect to NATS at {}: {}; check that nats-server runs there \
             (cargo xtask nats-status) and that nats.ca, nats.cert and nats.key are its CA and \
             a certificate from it",
            config.nats.url,
            error_chain(&err)
        ),
        Err(_) => anyhow::bail!(
            "no connection to NATS at {} within {} s; check that nats-server runs there \
             (cargo xtask nats-status)",
            config.nats.url,
            (CONNECT_TIMEOUT * 2).as_secs()
        ),
    }
}

/// The tenant the certificate is bound to, when it is a tenant's.
fn certificate_tenant(config: &Config) -> Option<String> {
    let cert = config.nats.cert.as_ref()?;
    tls::certificate_identity(cert)
        .ok()?
        .tenant_id()
        .map(str::to_owned)
}

/// The tenant to act as and the subject to use: a tenant's certificate uses its scoped
/// subject (the only one it may publish on), any other the contract's subject.
fn tenant_and_subject(
    config: &Config,
    asked: Option<&str>,
    unscoped: impl Fn(&Subjects) -> String,
    scoped: impl Fn(&Subjects, &str) -> String,
) -> anyhow::Result<(String, String)> {
    let subjects = Subjects::new(&config.router.subject_prefix);
    match (asked, certificate_tenant(config)) {
        (_, Some(bound)) => Ok((
            asked.unwrap_or(&bound).to_owned(),
            scoped(&subjects, &bound),
        )),
        (Some(tenant), None) => Ok((tenant.to_owned(), unscoped(&subjects))),
        (None, None) => anyhow::bail!("give the tenant: --tenant <id>"),
    }
}

/// `router decide`.
pub async fn decide(client: &Client, config: &Config, args: &DecideArgs) -> ExitCode {
    // A request file names its own tenant.
    let asked = match (&args.tenant, &args.json) {
        (None, Some(_)) => Some(""),
        (tenant, _) => tenant.as_deref(),
    };
    let prepared = tenant_and_subject(config, asked, |s| s.decide.clone(), |s, t| s.decide_for(t))
        .and_then(|(tenant, subject)| Ok((decide_body(args, &tenant)?, subject)));
    let (body, subject) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            eprintln!("router: {err:#}");
            return ExitCode::from(2);
        }
    };
    answer(client, subject, body, args.timeout, args.raw).await
}

/// The request body: the file given, or a minimal request for the tenant.
fn decide_body(args: &DecideArgs, tenant: &str) -> anyhow::Result<Vec<u8>> {
    match &args.json {
        Some(path) if path.as_os_str() == "-" => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .context("cannot read the request from standard input")?;
            Ok(body)
        }
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read the request file {}", path.display())),
        None => {
            let mut body = json!({
                "version": "1",
                "request_id": format!("cli-{}", crate::runtime::clock::now_ms()),
                "tenant_id": tenant,
                "task": {"type": "text.generate", "payload_ref": "cli://router-decide"},
            });
            if let Some(policy) = &args.policy {
                body["policy_id"] = json!(policy);
            }
            if let Some(user) = &args.user {
                body["constraints"] = json!({ "user_id": user });
            }
            Ok(body.to_string().into_bytes())
        }
    }
}

/// `router feedback`.
pub async fn feedback(client: &Client, config: &Config, args: &FeedbackArgs) -> ExitCode {
    let (tenant, subject) = match tenant_and_subject(
        config,
        args.tenant.as_deref(),
        |s| s.feedback.clone(),
        |s, t| s.feedback_for(t),
    ) {
        Ok(found) => found,
        Err(err) => {
            eprintln!("router: {err:#}");
            return ExitCode::from(2);
        }
    };
    let mut body = json!({
        "tenant_id": tenant,
        "provider_id": args.provider,
        "outcome": args.outcome,
    });
    for (key, value) in [
        ("latency_ms", args.latency_ms.map(|v| json!(v))),
        ("policy_id", args.policy.as_ref().map(|v| json!(v))),
        ("decision_id", args.decision_id.as_ref().map(|v| json!(v))),
    ] {
        if let Some(value) = value {
            body[key] = value;
        }
    }
    answer(
        client,
        subject,
        body.to_string().into_bytes(),
        args.timeout,
        false,
    )
    .await
}

/// Sends `body` to `subject`, prints the answer; the exit code says what it was.
async fn answer(
    client: &Client,
    subject: String,
    body: Vec<u8>,
    timeout: Duration,
    raw: bool,
) -> ExitCode {
    let request = client.request(subject.clone(), body.into());
    let reply = match tokio::time::timeout(timeout, request).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(err)) if err.kind() == RequestErrorKind::NoResponders => {
            eprintln!(
                "router: no router is subscribed to {subject}; is one running and ready \
                 (router status, /readyz) with the same subject prefix?"
            );
            return ExitCode::from(2);
        }
        Ok(Err(err)) if err.kind() != RequestErrorKind::TimedOut => {
            eprintln!(
                "router: the request on {subject} failed: {}",
                error_chain(&err)
            );
            return ExitCode::from(2);
        }
        _ => {
            eprintln!(
                "router: no answer on {subject} within {:?}; check that a router is running \
                 and ready (router status, /readyz), and that this certificate may publish \
                 there (nats-server logs a permissions violation otherwise)",
                timeout
            );
            return ExitCode::from(2);
        }
    };
    let parsed: Option<Value> = serde_json::from_slice(&reply.payload).ok();
    match (&parsed, raw) {
        (Some(value), false) => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        _ => println!("{}", String::from_utf8_lossy(&reply.payload)),
    }
    match parsed {
        Some(value) if value["ok"] == true => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
