//! Real nats-server processes: plain, TLS (positive and negative handshakes), restart.

use std::time::Duration;

use nats_harness::probe::{self, ClientTls};
use nats_harness::{monitor, NatsServer, ServerOptions};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Asserts that the probe failed and that its error mentions `reason`.
fn assert_refused(result: anyhow::Result<probe::ServerInfo>, reason: &str) {
    match result {
        Ok(info) => panic!("expected a refusal ({reason}), got a PONG from {info:?}"),
        Err(e) => {
            let message = format!("{e:#}");
            assert!(
                message.contains(reason),
                "expected {reason:?} in: {message}"
            );
        }
    }
}

#[test]
fn plain_server_answers_and_stops() -> anyhow::Result<()> {
    let mut server = NatsServer::start_plain()?;
    assert_eq!(
        server.client_url(),
        format!("nats://127.0.0.1:{}", server.port())
    );
    assert!(server.tls().is_none());
    let info = server.ping()?;
    assert!(!info.tls_required);
    assert_eq!(
        monitor::healthz(server.monitor_port(), TIMEOUT)?,
        r#"{"status":"ok"}"#
    );
    let jsz = monitor::get_json(server.monitor_port(), "/jsz", TIMEOUT)?;
    assert_ne!(jsz["disabled"], true, "JetStream is on: {jsz}");

    let port = server.port();
    let pid = server.pid().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    assert!(pid > 0);
    server.stop()?;
    assert!(server.pid().is_none());
    assert_refused(
        probe::ping("127.0.0.1", port, None, TIMEOUT),
        "could not connect",
    );
    server.stop()?; // idempotent
    Ok(())
}

#[test]
fn tls_server_requires_a_client_certificate_from_its_ca() -> anyhow::Result<()> {
    let server = NatsServer::start_tls()?;
    let tls = server
        .tls()
        .ok_or_else(|| anyhow::anyhow!("TLS files missing"))?;
    assert_eq!(
        server.client_url(),
        format!("tls://127.0.0.1:{}", server.port())
    );

    // Positive: mutual TLS with the generated client certificate.
    let info = server.ping()?;
    assert!(info.tls_required);
    let varz = monitor::get_json(server.monitor_port(), "/varz", TIMEOUT)?;
    assert_eq!(varz["tls_required"], true);
    assert_eq!(varz["tls_verify"], true);

    // No TLS at all.
    assert_refused(
        probe::ping("127.0.0.1", server.port(), None, TIMEOUT),
        "closed the connection",
    );

    // TLS without a client certificate.
    let anonymous = ClientTls {
        client: None,
        ..probe::client_tls(tls)
    };
    assert_refused(
        probe::ping("127.0.0.1", server.port(), Some(&anonymous), TIMEOUT),
        "CertificateRequired",
    );

    // Client certificate from another CA, and an expired one from the right CA.
    let ca = tls.authority()?;
    let negative = certs::negative::write_negative_set(&tls.dir, &ca)?;
    let other_client = ClientTls {
        client: Some((
            negative.other_client_cert.clone(),
            negative.other_client_key.clone(),
        )),
        ..probe::client_tls(tls)
    };
    assert_refused(
        probe::ping("127.0.0.1", server.port(), Some(&other_client), TIMEOUT),
        "UnknownCA",
    );
    let expired = ClientTls {
        client: Some((
            negative.expired_client_cert.clone(),
            negative.expired_client_key.clone(),
        )),
        ..probe::client_tls(tls)
    };
    assert_refused(
        probe::ping("127.0.0.1", server.port(), Some(&expired), TIMEOUT),
        "CertificateExpired",
    );

    // The client refuses the server when verifying it against another CA or another name.
    let wrong_ca = ClientTls {
        ca_cert: negative.other_ca_cert.clone(),
        ..probe::client_tls(tls)
    };
    assert_refused(
        probe::ping("127.0.0.1", server.port(), Some(&wrong_ca), TIMEOUT),
        "UnknownIssuer",
    );
    let wrong_name = ClientTls {
        server_name: Some("wrong.example".to_owned()),
        ..probe::client_tls(tls)
    };
    assert_refused(
        probe::ping("127.0.0.1", server.port(), Some(&wrong_name), TIMEOUT),
        "not valid for name",
    );

    // And still serves good clients afterwards.
    server.ping()?;
    Ok(())
}

#[test]
fn restart_comes_back_on_the_same_ports() -> anyhow::Result<()> {
    let mut server = NatsServer::start_tls()?;
    let (port, monitor_port, url) = (server.port(), server.monitor_port(), server.client_url());
    let first_pid = server.pid();
    server.restart()?;
    assert_eq!(server.port(), port);
    assert_eq!(server.monitor_port(), monitor_port);
    assert_eq!(server.client_url(), url);
    assert_ne!(server.pid(), first_pid);
    server.ping()?;
    monitor::healthz(monitor_port, TIMEOUT)?;
    Ok(())
}

#[test]
fn fixed_ports_and_no_jetstream() -> anyhow::Result<()> {
    // Let the OS pick a free port, then ask nats-server for exactly that one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let server = NatsServer::start(ServerOptions {
        port: Some(port),
        jetstream: false,
        ..ServerOptions::default()
    })?;
    assert_eq!(server.port(), port);
    server.ping()?;
    let reply = monitor::get(server.monitor_port(), "/jsz", TIMEOUT)?;
    let jsz: serde_json::Value = serde_json::from_str(&reply.body)?;
    assert_eq!(jsz["disabled"], true, "JetStream is off: {jsz}");
    Ok(())
}

#[test]
fn a_bad_config_fails_with_the_log_in_the_error() {
    let result = NatsServer::start(ServerOptions {
        extra_config: "this is not { valid".to_owned(),
        ..ServerOptions::default()
    });
    let message = result.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(message.contains("exited during start-up"), "{message}");
    assert!(message.contains("nats.log"), "{message}");
}
