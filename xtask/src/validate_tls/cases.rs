//! The cases: who connects how, what must happen, what happened.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::ConnectOptions;
use nats_harness::probe::{self, ClientTls};
use router_bin::transport::connect_diagnosis::error_chain;
use router_bin::transport::nats;
use serde_json::{json, Value};

use super::lab::{CaseCerts, RunLog};

/// The decide subject with the default prefix.
const DECIDE: &str = "beamline.router.v1.decide";
/// Longest wait for a connection (handshake included).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a reply once connected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A client certificate and its key.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// A server to dial on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Client port.
    pub port: u16,
    /// Name in the log.
    pub label: &'static str,
}

/// What a case must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The connection is made and a decide request is answered `ok: true`.
    Decision,
    /// The TLS handshake completes (control case on a server without a router).
    Handshake,
    /// The connection fails, or no request passes, and the error names one of these reasons.
    Refused(&'static [&'static str]),
    /// The router still answers `/readyz` with 200.
    Ready,
}

impl Expect {
    fn describe(self) -> String {
        match self {
            Expect::Decision => "accepted, decide ok:true".to_owned(),
            Expect::Handshake => "accepted (handshake)".to_owned(),
            Expect::Refused(reasons) => format!("refused ({})", reasons[0]),
            Expect::Ready => "/readyz 200".to_owned(),
        }
    }
}

/// What an attempt showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Connected, and the decide request got this reply.
    Answered(Value),
    /// The handshake completed (control case).
    HandshakeOk,
    /// Connected, but no request passed (why).
    NoReply(String),
    /// The connection or handshake failed (the error, with its causes).
    Refused(String),
    /// The server answered a plaintext CONNECT/PING with PONG (it should have hung up).
    PlaintextAccepted(String),
    /// The router's readiness.
    Ready(bool),
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// The expectation, in words.
    pub expected: String,
    /// What happened, in words.
    pub observed: String,
    pass: bool,
}

impl CaseResult {
    fn judge(name: &str, expect: Expect, observed: &Observed) -> Self {
        let pass = match (expect, observed) {
            (Expect::Decision, Observed::Answered(reply)) => reply["ok"] == true,
            (Expect::Handshake, Observed::HandshakeOk) => true,
            (Expect::Refused(reasons), Observed::Refused(error)) => {
                reasons.iter().any(|r| error.contains(r))
            }
            // Connected but nothing passed still counts as refused, whatever the reason.
            (Expect::Refused(_), Observed::NoReply(_)) => true,
            (Expect::Ready, Observed::Ready(ready)) => *ready,
            _ => false,
        };
        CaseResult {
            name: name.to_owned(),
            expected: expect.describe(),
            observed: describe(observed),
            pass,
        }
    }

    /// A row judged elsewhere (the authorization cases).
    pub fn new(name: &str, expected: &str, observed: &str, pass: bool) -> Self {
        CaseResult {
            name: name.to_owned(),
            expected: expected.to_owned(),
            observed: observed.to_owned(),
            pass,
        }
    }

    /// The row for the router's readiness after every case.
    pub fn router_still_ready(ready: bool) -> Self {
        Self::judge(
            "router still ready after the cases",
            Expect::Ready,
            &Observed::Ready(ready),
        )
    }

    /// True when the case behaved as expected.
    pub fn passed(&self) -> bool {
        self.pass
    }

    /// `pass` or `FAIL`.
    pub fn verdict(&self) -> &'static str {
        if self.pass {
            "pass"
        } else {
            "FAIL"
        }
    }
}

fn describe(observed: &Observed) -> String {
    match observed {
        Observed::Answered(reply) if reply["ok"] == true => format!(
            "connected; decide ok:true ({} via {})",
            reply["decision"]["provider_id"].as_str().unwrap_or("?"),
            reply["decision"]["reason"].as_str().unwrap_or("?")
        ),
        Observed::Answered(reply) => format!(
            "connected; request ANSWERED ok:{} {}",
            reply["ok"],
            reply["error"]["code"].as_str().unwrap_or("")
        ),
        Observed::HandshakeOk => "handshake ok (PONG)".to_owned(),
        Observed::NoReply(why) => format!("connected, no request passed: {why}"),
        Observed::Refused(error) => format!("refused: {error}"),
        Observed::PlaintextAccepted(said) => format!("plaintext ACCEPTED: {said}"),
        Observed::Ready(true) => "/readyz 200".to_owned(),
        Observed::Ready(false) => "/readyz NOT 200".to_owned(),
    }
}

/// Runs every case in order.
pub async fn run(
    certs: &CaseCerts,
    main: Target,
    wrong_san: Target,
    log: &mut RunLog,
) -> Vec<CaseResult> {
    let negative = &certs.negative;
    let good = certs.good_client();
    let mut results = Vec::new();
    let mut record = |name: &str, expect: Expect, observed: Observed, log: &mut RunLog| {
        log.line(&format!("{name}: {observed:?}"));
        results.push(CaseResult::judge(name, expect, &observed));
    };

    let observed = nats_attempt(main, &certs.ca_cert, Some(&good), "accepted").await;
    record(
        "internal caller's certificate",
        Expect::Decision,
        observed,
        log,
    );

    let observed = plaintext_attempt(main).await;
    record(
        "plaintext client (no TLS)",
        Expect::Refused(&["server closed the connection", "TLS Required", "reset"]),
        observed,
        log,
    );

    let observed = nats_attempt(main, &certs.ca_cert, None, "no-cert").await;
    record(
        "TLS without a client certificate",
        Expect::Refused(&["CertificateRequired"]),
        observed,
        log,
    );

    let other = ClientCert {
        cert: negative.other_client_cert.clone(),
        key: negative.other_client_key.clone(),
    };
    let observed = nats_attempt(main, &certs.ca_cert, Some(&other), "other-ca").await;
    record(
        "client certificate from another CA",
        Expect::Refused(&["UnknownCA", "BadCertificate"]),
        observed,
        log,
    );

    let expired = ClientCert {
        cert: negative.expired_client_cert.clone(),
        key: negative.expired_client_key.clone(),
    };
    let observed = nats_attempt(main, &certs.ca_cert, Some(&expired), "expired").await;
    record(
        "expired client certificate (right CA)",
        Expect::Refused(&["CertificateExpired"]),
        observed,
        log,
    );

    let observed = nats_attempt(main, &certs.ca_cert, Some(&certs.not_yet_valid), "not-yet").await;
    record(
        "client certificate not valid yet (right CA)",
        // Go's TLS stack reports "expired or not yet valid" with one alert.
        Expect::Refused(&["CertificateExpired"]),
        observed,
        log,
    );

    let observed = nats_attempt(main, &certs.ca_cert, Some(&certs.no_client_auth), "no-eku").await;
    record(
        "client certificate without EKU clientAuth",
        Expect::Refused(&["BadCertificate"]),
        observed,
        log,
    );

    let observed = nats_attempt(main, &negative.other_ca_cert, Some(&good), "wrong-ca").await;
    record(
        "server verified against another CA",
        Expect::Refused(&["UnknownIssuer"]),
        observed,
        log,
    );

    let observed = nats_attempt(wrong_san, &certs.ca_cert, Some(&good), "wrong-san").await;
    record(
        "server SAN lacks the dialled 127.0.0.1 (2nd server)",
        Expect::Refused(&["NotValidForName", "not valid for name"]),
        observed,
        log,
    );

    let observed = handshake_as(wrong_san, &certs.ca_cert, &good, certs::negative::WRONG_SAN).await;
    record(
        "control: 2nd server verified as wrong.example",
        Expect::Handshake,
        observed,
        log,
    );

    results
}

/// A valid decide request for the shipped `default_tenant` policy.
fn decide_body(case: &str) -> Vec<u8> {
    json!({
        "version": "1",
        "request_id": format!("validate-tls-{case}"),
        "tenant_id": "default_tenant",
        "task": {"type": "text.generate", "payload": {"prompt": "validate tls"}},
    })
    .to_string()
    .into_bytes()
}

/// Connects with async-nats (TLS required, `ca` as the only root, optional client
/// certificate: the router's [`nats::tls_options`]), then sends one decide request.
async fn nats_attempt(
    target: Target,
    ca: &Path,
    client_cert: Option<&ClientCert>,
    case: &str,
) -> Observed {
    let options = ConnectOptions::new()
        .name(format!("validate-tls-{case}"))
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        // One attempt at connecting, and at most one reconnect should the server drop us.
        .max_reconnects(1)
        .ignore_discovered_servers();
    let tls = nats::ClientTls {
        ca: Some(ca.to_path_buf()),
        client: client_cert.map(|c| (c.cert.clone(), c.key.clone())),
    };
    let options = nats::tls_options(options, Some(&tls));
    let url = format!("tls://127.0.0.1:{}", target.port);
    let client = match tokio::time::timeout(CONNECT_TIMEOUT * 2, options.connect(url)).await {
        Err(_) => {
            return Observed::Refused(format!(
                "no connection to the {} server within {} s",
                target.label,
                (CONNECT_TIMEOUT * 2).as_secs()
            ))
        }
        Ok(Err(err)) => return Observed::Refused(error_chain(&err)),
        Ok(Ok(client)) => client,
    };
    let request = client.request(DECIDE, decide_body(case).into());
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(reply)) => Observed::Answered(
            serde_json::from_slice(&reply.payload)
                .unwrap_or_else(|_| json!({"ok": "reply is not JSON"})),
        ),
        Ok(Err(err)) => Observed::NoReply(error_chain(&err)),
        Err(_) => Observed::NoReply(format!("no reply within {} s", REQUEST_TIMEOUT.as_secs())),
    }
}

/// A plaintext CONNECT + PING (the nats-harness probe without TLS; async-nats cannot play
/// this client, as it upgrades to TLS whenever the server asks for it). A server that
/// requires TLS closes the connection, resets it or answers `-ERR` (TLS Required); a PONG
/// means it took the plaintext CONNECT.
async fn plaintext_attempt(target: Target) -> Observed {
    let port = target.port;
    let attempt =
        tokio::task::spawn_blocking(move || probe::ping("127.0.0.1", port, None, CONNECT_TIMEOUT))
            .await;
    match attempt {
        Ok(Ok(_)) => Observed::PlaintextAccepted(
            "PONG: the server accepted the plaintext CONNECT".to_owned(),
        ),
        Ok(Err(err)) => Observed::Refused(format!("{err:#}")),
        Err(err) => Observed::Refused(format!("the probe task failed: {err}")),
    }
}

/// A raw handshake (nats-harness probe) that verifies the server as `server_name`.
async fn handshake_as(
    target: Target,
    ca: &Path,
    client: &ClientCert,
    server_name: &str,
) -> Observed {
    let tls = ClientTls {
        ca_cert: ca.to_path_buf(),
        client: Some((client.cert.clone(), client.key.clone())),
        server_name: Some(server_name.to_owned()),
    };
    let port = target.port;
    let attempt = tokio::task::spawn_blocking(move || {
        probe::ping("127.0.0.1", port, Some(&tls), CONNECT_TIMEOUT)
    })
    .await;
    match attempt {
        Ok(Ok(_)) => Observed::HandshakeOk,
        Ok(Err(err)) => Observed::Refused(format!("{err:#}")),
        Err(err) => Observed::Refused(format!("the probe task failed: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REASONS: &[&str] = &["UnknownCA"];

    #[test]
    fn a_refusal_passes_only_for_the_expected_reason() {
        let right = Observed::Refused("IO error: received fatal alert: UnknownCA".into());
        assert!(CaseResult::judge("c", Expect::Refused(REASONS), &right).passed());
        let wrong = Observed::Refused("IO error: connection refused".into());
        assert!(!CaseResult::judge("c", Expect::Refused(REASONS), &wrong).passed());
        let no_reply = Observed::NoReply("no reply within 3 s".into());
        assert!(CaseResult::judge("c", Expect::Refused(REASONS), &no_reply).passed());
    }

    #[test]
    fn an_answer_or_a_plaintext_pong_is_never_a_refusal() {
        let answered =
            Observed::Answered(json!({"ok": false, "error": {"code": "invalid_request"}}));
        assert!(!CaseResult::judge("c", Expect::Refused(REASONS), &answered).passed());
        let pong = Observed::PlaintextAccepted("PONG; server closed the connection".into());
        let reasons: &[&str] = &["server closed the connection"];
        assert!(!CaseResult::judge("c", Expect::Refused(reasons), &pong).passed());
    }

    #[test]
    fn acceptance_needs_ok_true() {
        let ok = Observed::Answered(json!({"ok": true, "decision": {"provider_id": "openai"}}));
        assert!(CaseResult::judge("c", Expect::Decision, &ok).passed());
        let error = Observed::Answered(json!({"ok": false}));
        assert!(!CaseResult::judge("c", Expect::Decision, &error).passed());
        let refused = Observed::Refused("UnknownIssuer".into());
        assert!(!CaseResult::judge("c", Expect::Decision, &refused).passed());
        assert!(!CaseResult::judge("c", Expect::Handshake, &refused).passed());
        assert!(!CaseResult::router_still_ready(false).passed());
    }
}
