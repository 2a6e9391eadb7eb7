//! The TLS cases: who connects how, with which certificate, and whether the server lets
//! them in for the right reason.

use std::path::Path;
use std::time::Duration;

use async_nats::ConnectOptions;
use nats_harness::probe::{self, ClientTls};
use router_bin::transport::connect_diagnosis::error_chain;
use router_bin::transport::nats;
use serde_json::json;

use crate::case_certs::CaseCerts;
use crate::log::RunLog;
use crate::result::{CaseResult, Expect, Observed};
use crate::target::{ClientCert, Target};

/// The decide subject with the default prefix.
const DECIDE: &str = "beamline.router.v1.decide";
/// Longest wait for a connection (handshake included).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a reply once connected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs every TLS case in order: `main` is the server of the shipped config with the router,
/// `wrong_san` the server whose certificate names only `wrong.example`.
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
