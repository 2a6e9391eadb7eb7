//! The router against a nats-server that refuses it (mutual TLS, `verify: true`): it never
//! becomes ready, keeps trying, and says in its log why and what to do. These start the
//! `router` process, since what they check is the log it writes.
//!
//! Which clients nats-server refuses (plaintext, no certificate, another CA, expired, not yet
//! valid, no clientAuth, the wrong server name) is `cargo xtask validate-tls`, a step of
//! `cargo xtask ci`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use certs::negative::{self, NegativeSet};
use nats_harness::{NatsServer, RouterProcess, ServerOptions};
use support::{policy_dir, RouterArgs};

/// A TLS server and the negative certificates from its CA.
struct Lab {
    server: NatsServer,
    negative: NegativeSet,
}

impl Lab {
    fn start() -> Lab {
        let server = support::tls_server();
        let tls = server.tls().expect("TLS files");
        let ca = tls.authority().expect("load the CA");
        let negative = negative::write_negative_set(&tls.dir, &ca).expect("negative set");
        Lab { server, negative }
    }

    fn ca(&self) -> PathBuf {
        self.server.tls().expect("TLS files").ca_cert.clone()
    }
}

/// A second server, same CA, whose certificate's only SAN is `wrong.example`; the client
/// dials it as 127.0.0.1. Every loopback name (localhost, 127.0.0.1, ::1) is in the first
/// server's certificate, so a second server is the way to present a name mismatch.
fn wrong_san_server(lab: &Lab) -> NatsServer {
    second_server(
        lab,
        &lab.negative.wrong_san_server_cert,
        &lab.negative.wrong_san_server_key,
    )
}

/// A second nats-server with mutual TLS (the lab's CA, `verify: true`) presenting `cert`,
/// started from the plain template: the harness passes no TLS files to a router started
/// against it, so a test can give the router its own.
fn second_server(lab: &Lab, cert: &Path, key: &Path) -> NatsServer {
    let quoted = |p: &Path| format!("\"{}\"", p.display());
    NatsServer::start(ServerOptions {
        tls: false,
        jetstream: false,
        extra_config: format!(
            "tls {{\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\n  verify: true\n  timeout: 2\n}}\n",
            quoted(&lab.ca()),
            quoted(cert),
            quoted(key),
        ),
        ..ServerOptions::default()
    })
    .expect("start the second nats-server")
}

/// Starts a router against `server` with these TLS files (CA, certificate, key).
fn spawn_router_with(server: &NatsServer, tls: [&Path; 3], policies: &Path) -> RouterProcess {
    let [ca, cert, key] = tls;
    support::spawn_router_process(
        server,
        RouterArgs {
            policy_dir: policies,
            extra: vec![
                "--tls-ca".into(),
                ca.display().to_string(),
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ],
        },
    )
    .expect("router process starts")
}

/// Waits up to 10 s for the router to log why it cannot connect; returns that log line.
fn connect_diagnosis(router: &RouterProcess) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = router.log_text();
        if let Some(line) = log.lines().find(|l| l.contains("cannot connect to NATS")) {
            return line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no connection diagnosis in the router log: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn the_router_never_becomes_ready_against_a_server_without_its_name() {
    let lab = Lab::start();
    let wrong = wrong_san_server(&lab);
    let tls = lab.server.tls().expect("TLS files");
    let policies = policy_dir(&[]);
    // nats-harness passes the server's URL (nats://, the server was started from the plain
    // template); the TLS flags make the router require TLS and verify 127.0.0.1.
    let router = spawn_router_with(
        &wrong,
        [&tls.ca_cert, &tls.router_cert, &tls.router_key],
        policies.path(),
    );
    let ready = router.wait_ready(Duration::from_secs(3));
    assert!(ready.is_err(), "the router connected to a wrong-SAN server");
    assert_eq!(router.get("/readyz").expect("readyz").0, 503, "not ready");
    assert_eq!(router.get("/healthz").expect("healthz").0, 200, "but alive");
    // It keeps trying, and says why it fails and what to do.
    let log = router.log_text();
    assert!(
        log.matches("NATS client error").count() >= 2,
        "expected repeated connection errors in the log: {log}"
    );
    let diagnosis = connect_diagnosis(&router);
    assert!(
        diagnosis.contains("not valid for name") && diagnosis.contains("dial a name it carries"),
        "{diagnosis}"
    );
}

#[tokio::test]
async fn the_router_says_why_nats_refuses_its_client_certificate() {
    let lab = Lab::start();
    let tls = lab.server.tls().expect("TLS files");
    let server = second_server(&lab, &tls.server_cert, &tls.server_key);
    let policies = policy_dir(&[]);
    let router = spawn_router_with(
        &server,
        [
            &tls.ca_cert,
            &lab.negative.other_client_cert,
            &lab.negative.other_client_key,
        ],
        policies.path(),
    );
    let diagnosis = connect_diagnosis(&router);
    assert!(
        diagnosis.contains("UnknownCA") && diagnosis.contains("does not trust the CA"),
        "{diagnosis}"
    );
    assert_eq!(router.get("/readyz").expect("readyz").0, 503, "not ready");
}
