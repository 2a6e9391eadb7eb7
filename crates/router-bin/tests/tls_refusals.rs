//! Mutual TLS refusals against a real nats-server (`verify: true`) with the real router
//! subscribed: each bad client must fail the handshake (for the stated reason) or get no
//! request through. Every test first proves, on the same server and router, that a good
//! client gets a decision, so a broken setup cannot make a refusal pass.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use certs::negative::{self, NegativeSet};
use nats_harness::probe::{self, ClientTls};
use nats_harness::{NatsServer, RouterProcess, ServerOptions};
use serde_json::{json, Value};
use support::{policy_dir, request, RouterArgs, DECIDE};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A TLS server with the router subscribed, and the negative certificates from its CA.
struct Lab {
    // Fields drop in order: the router stops before the server.
    router: RouterProcess,
    server: NatsServer,
    negative: NegativeSet,
    _policies: tempfile::TempDir,
}

impl Lab {
    fn start() -> Lab {
        let server = support::tls_server();
        let tls = server.tls().expect("TLS files");
        let ca = tls.authority().expect("load the CA");
        let negative = negative::write_negative_set(&tls.dir, &ca).expect("negative set");
        let policies = policy_dir(&[]);
        let router = support::start_router(
            &server,
            RouterArgs {
                policy_dir: policies.path(),
                extra: Vec::new(),
            },
        )
        .expect("router starts");
        Lab {
            router,
            server,
            negative,
            _policies: policies,
        }
    }

    fn ca(&self) -> PathBuf {
        self.server.tls().expect("TLS files").ca_cert.clone()
    }

    /// A client certificate and key issued by the lab's CA with `issue`, written into a
    /// temporary directory (kept alive by the returned guard).
    fn issue_client(
        &self,
        issue: fn(&certs::Authority) -> certs::Result<certs::Issued>,
    ) -> (tempfile::TempDir, (PathBuf, PathBuf)) {
        let ca = self
            .server
            .tls()
            .expect("TLS files")
            .authority()
            .expect("CA");
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        issue(&ca)
            .expect("issue")
            .write(&cert, &key)
            .expect("write");
        (dir, (cert, key))
    }

    fn good_client(&self) -> (PathBuf, PathBuf) {
        let tls = self.server.tls().expect("TLS files");
        (tls.client_cert.clone(), tls.client_key.clone())
    }

    /// The positive control: the router-client certificate gets a decision.
    async fn assert_good_client_gets_a_decision(&self) {
        let attempt = attempt(
            &self.server.client_url(),
            &self.ca(),
            Some(self.good_client()),
        )
        .await;
        match attempt {
            Attempt::Answered(reply) => {
                assert_eq!(reply["ok"], true, "control request: {reply}");
                assert_eq!(reply["context"]["request_id"], "tls-probe", "{reply}");
            }
            other => panic!("control: the good client got no decision: {other:?}"),
        }
        assert_eq!(self.router.get("/readyz").expect("readyz").0, 200);
    }
}

/// What a client attempt came to.
#[derive(Debug)]
enum Attempt {
    /// The connection or handshake failed: the error with its causes.
    Refused(String),
    /// Connected, but the request got no reply.
    NoReply(String),
    /// Connected and answered.
    Answered(Value),
}

/// Connects with async-nats (TLS required, `ca` as the only root, optional client
/// certificate; a single attempt) and sends one decide request.
async fn attempt(url: &str, ca: &Path, client_cert: Option<(PathBuf, PathBuf)>) -> Attempt {
    let mut options = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .max_reconnects(1)
        .ignore_discovered_servers()
        .require_tls(true)
        .add_root_certificates(ca.to_path_buf());
    if let Some((cert, key)) = client_cert {
        options = options.add_client_certificate(cert, key);
    }
    let client = match tokio::time::timeout(CONNECT_TIMEOUT * 2, options.connect(url)).await {
        Err(_) => return Attempt::Refused("connect timed out".into()),
        Ok(Err(err)) => return Attempt::Refused(probe::error_chain(&err)),
        Ok(Ok(client)) => client,
    };
    let body = request("tls-probe", "default_tenant", json!({})).to_string();
    match tokio::time::timeout(REQUEST_TIMEOUT, client.request(DECIDE, body.into())).await {
        Ok(Ok(reply)) => Attempt::Answered(
            serde_json::from_slice(&reply.payload).unwrap_or(Value::String("not JSON".into())),
        ),
        Ok(Err(err)) => Attempt::NoReply(probe::error_chain(&err)),
        Err(_) => Attempt::NoReply("no reply in time".into()),
    }
}

/// Refused for the given reason (the handshake failed), or connected with nothing passing.
fn assert_refused(attempt: Attempt, reason: &str) {
    match attempt {
        Attempt::Refused(error) => assert!(
            error.contains(reason),
            "refused, but not for {reason:?}: {error}"
        ),
        Attempt::NoReply(why) => eprintln!("connected, but no request passed: {why}"),
        Attempt::Answered(reply) => panic!("expected a refusal ({reason}), got a reply: {reply}"),
    }
}

#[tokio::test]
async fn control_the_router_client_certificate_gets_a_decision() {
    let lab = Lab::start();
    lab.assert_good_client_gets_a_decision().await;
    // The raw probe (used as the control in the wrong-SAN test) completes a handshake with
    // the same files too.
    let info = lab
        .server
        .ping()
        .expect("probe handshake with the client certificate");
    assert!(info.tls_required);
}

#[tokio::test]
async fn a_plaintext_client_is_refused() {
    let lab = Lab::start();
    lab.assert_good_client_gets_a_decision().await;
    let body = request("plain-1", "default_tenant", json!({})).to_string();
    let outcome = tokio::time::timeout(
        CONNECT_TIMEOUT,
        plaintext_request(lab.server.port(), body.as_bytes()),
    )
    .await
    .expect("the server answers or hangs up within 5 s");
    match outcome {
        PlainOutcome::Refused(said) => {
            assert!(
                !said.iter().any(|l| l == "PONG"),
                "the server accepted a plaintext CONNECT: {said:?}"
            );
            assert!(
                said.last()
                    .is_some_and(|l| l.contains("closed") || l.contains("reset")),
                "the server should hang up: {said:?}"
            );
        }
        PlainOutcome::Answered(reply) => panic!("a plaintext request was answered: {reply}"),
    }
    lab.assert_good_client_gets_a_decision().await;
}

#[tokio::test]
async fn tls_without_a_client_certificate_is_refused() {
    let lab = Lab::start();
    lab.assert_good_client_gets_a_decision().await;
    let attempt = attempt(&lab.server.client_url(), &lab.ca(), None).await;
    assert_refused(attempt, "CertificateRequired");
    lab.assert_good_client_gets_a_decision().await;
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let lab = Lab::start();
    lab.assert_good_client_gets_a_decision().await;
    let other = (
        lab.negative.other_client_cert.clone(),
        lab.negative.other_client_key.clone(),
    );
    let attempt = attempt(&lab.server.client_url(), &lab.ca(), Some(other)).await;
    assert_refused(attempt, "UnknownCA");
    lab.assert_good_client_gets_a_decision().await;
}

#[tokio::test]
async fn an_expired_client_certificate_from_the_right_ca_is_refused() {
    let lab = Lab::start();
    lab.assert_good_client_gets_a_decision().await;
    let expired = (
        lab.negative.expired_client_cert.clone(),
        lab.negative.expired_client_key.clone(),
    );
    let attempt = attempt(&lab.server.client_url(), &lab.ca(), Some(expired)).await;
    assert_refused(attempt, "CertificateExpired");
    lab.assert_good_client_gets_a_decision().await;
}

#[tokio::test]
async fn a_client_certificate_not_valid_yet_is_refused() {
    let lab = Lab::start();
    lab.assert_good_client_gets_a_decision().await;
    let (_dir, client) = lab.issue_client(negative::not_yet_valid_client);
    let attempt = attempt(&lab.server.client_url(), &lab.ca(), Some(client)).await;
    // nats-server (Go) sends one alert for "expired or not yet valid".
    assert_refused(attempt, "CertificateExpired");
    lab.assert_good_client_gets_a_decision().await;
}

#[tokio::test]
async fn a_client_certificate_without_eku_client_auth_is_refused() {
    let lab = Lab::start();
    lab.assert_good_client_gets_a_decision().await;
    let (_dir, client) = lab.issue_client(negative::client_without_client_auth);
    let attempt = attempt(&lab.server.client_url(), &lab.ca(), Some(client)).await;
    assert_refused(attempt, "BadCertificate");
    lab.assert_good_client_gets_a_decision().await;
}

#[tokio::test]
async fn a_client_verifying_the_server_against_another_ca_refuses_it() {
    let lab = Lab::start();
    lab.assert_good_client_gets_a_decision().await;
    let attempt = attempt(
        &lab.server.client_url(),
        &lab.negative.other_ca_cert,
        Some(lab.good_client()),
    )
    .await;
    assert_refused(attempt, "UnknownIssuer");
    lab.assert_good_client_gets_a_decision().await;
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
    support::spawn_router(
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
async fn a_server_certificate_without_the_dialled_host_is_refused() {
    let lab = Lab::start();
    lab.assert_good_client_gets_a_decision().await;
    let wrong = wrong_san_server(&lab);
    let url = format!("tls://127.0.0.1:{}", wrong.port());

    // Control: the same client, verifying the name the certificate does carry, completes
    // the handshake with this server; only the name differs in the refused attempt.
    let tls = ClientTls {
        ca_cert: lab.ca(),
        client: Some(lab.good_client()),
        server_name: Some(negative::WRONG_SAN.to_owned()),
    };
    let port = wrong.port();
    let control = tokio::task::spawn_blocking(move || {
        probe::ping("127.0.0.1", port, Some(&tls), CONNECT_TIMEOUT)
    })
    .await
    .expect("probe task");
    assert!(
        control.is_ok(),
        "control handshake as {}: {control:?}",
        negative::WRONG_SAN
    );

    let attempt = attempt(&url, &lab.ca(), Some(lab.good_client())).await;
    assert_refused(attempt, "not valid for name");
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
        [&tls.ca_cert, &tls.client_cert, &tls.client_key],
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

/// What the plaintext client saw.
#[derive(Debug)]
enum PlainOutcome {
    Answered(String),
    /// Every line the server sent, then how the connection ended.
    Refused(Vec<String>),
}

/// Reads INFO, then sends CONNECT, SUB, PUB (a decide request) and PING without TLS, and
/// reads until a reply arrives or the server hangs up.
async fn plaintext_request(port: u16, body: &[u8]) -> PlainOutcome {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("TCP connect");
    let mut reader = BufReader::new(stream);
    let mut info = String::new();
    reader.read_line(&mut info).await.expect("INFO");
    assert!(info.starts_with("INFO "), "{info}");
    assert!(info.contains("\"tls_required\":true"), "{info}");
    let mut out = Vec::new();
    out.extend_from_slice(
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"protocol\":1}\r\n",
    );
    out.extend_from_slice(b"SUB _INBOX.plain 1\r\n");
    out.extend_from_slice(format!("PUB {DECIDE} _INBOX.plain {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\nPING\r\n");
    let mut said = Vec::new();
    if let Err(err) = reader.get_mut().write_all(&out).await {
        said.push(format!("write failed, connection closed: {err}"));
        return PlainOutcome::Refused(said);
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) => {
                said.push("server closed the connection".into());
                return PlainOutcome::Refused(said);
            }
            Err(err) => {
                said.push(format!("connection reset: {err}"));
                return PlainOutcome::Refused(said);
            }
            Ok(_) => {}
        }
        let line = line.trim_end().to_owned();
        if line.starts_with("MSG ") {
            let mut payload = String::new();
            let _ = reader.read_line(&mut payload).await;
            return PlainOutcome::Answered(payload);
        }
        said.push(line);
    }
}
