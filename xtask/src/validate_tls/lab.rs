//! The test bench: certificates, the two nats-servers and the router, started in order and
//! stopped by their Drop guards whatever happens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use certs::negative::{self, NegativeSet};
use certs::{LeafSpec, Validity};
use nats_harness::{NatsServer, RouterOptions, RouterProcess, ServerOptions};

use super::cases::{self, CaseResult, ClientCert, Target};

/// Certificate files used by the cases, all under `<artifacts>/validate-tls/certs/`.
#[derive(Debug, Clone)]
pub struct CaseCerts {
    /// Copy of the server's CA certificate (what a good client verifies the server against).
    pub ca_cert: PathBuf,
    /// A fresh certificate of the internal caller from that CA (OU `internal`, EKU
    /// clientAuth).
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// The deliberately bad ones.
    pub negative: NegativeSet,
    /// From the right CA, but EKU serverAuth only (no clientAuth).
    pub no_client_auth: ClientCert,
    /// From the right CA, valid from tomorrow.
    pub not_yet_valid: ClientCert,
}

impl CaseCerts {
    /// The good client certificate.
    pub fn good_client(&self) -> ClientCert {
        ClientCert {
            cert: self.client_cert.clone(),
            key: self.client_key.clone(),
        }
    }
}

/// A line-per-event log file.
pub struct RunLog {
    file: std::fs::File,
    path: PathBuf,
}

impl RunLog {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("could not create {}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends one line (a failure to log is reported once on stderr, not fatal).
    pub fn line(&mut self, text: &str) {
        let now = time::OffsetDateTime::now_utc();
        let stamp = format!(
            "{:02}:{:02}:{:02}.{:03}",
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond()
        );
        if let Err(err) = writeln!(self.file, "{stamp} {text}") {
            eprintln!(
                "validate-tls: could not write {}: {err}",
                self.path.display()
            );
        }
    }
}

/// Starts everything, runs every case, copies the server logs and stops everything.
pub async fn run_all(
    router_binary: &Path,
    out_dir: &Path,
    certs_dir: &Path,
) -> anyhow::Result<Vec<CaseResult>> {
    let mut log = RunLog::create(&out_dir.join("validate-tls.log"))?;
    log.line(&format!("router binary: {}", router_binary.display()));

    // The main server: mutual TLS with its own CA, server and router-client certificates,
    // and JetStream for the router's dead-letter stream, as deployed.
    let main = NatsServer::start(ServerOptions {
        tls: true,
        ..ServerOptions::default()
    })
    .context("could not start the TLS nats-server")?;
    let _main_logs = CopyOnDrop::new(&main, out_dir, "nats-main");
    log.line(&format!("main nats-server: {}", main.client_url()));
    let server_tls = main
        .tls()
        .context("the TLS nats-server has no TLS files")?
        .clone();

    let case_certs = issue_case_certs(&server_tls, certs_dir)?;
    log.line(&format!(
        "case certificates issued from the server CA into {}",
        certs_dir.display()
    ));

    // The second server: same CA, but a server certificate whose only SAN is wrong.example.
    let wrong_san = NatsServer::start(ServerOptions {
        tls: false,
        jetstream: false,
        extra_config: wrong_san_tls_block(&server_tls.ca_cert, &case_certs.negative)?,
        ..ServerOptions::default()
    })
    .context("could not start the nats-server with the wrong-SAN certificate")?;
    let _wrong_san_logs = CopyOnDrop::new(&wrong_san, out_dir, "nats-wrong-san");
    log.line(&format!(
        "wrong-SAN nats-server: tls://127.0.0.1:{} (certificate SAN {})",
        wrong_san.port(),
        negative::WRONG_SAN
    ));

    let mut router = RouterProcess::start(
        &main,
        &RouterOptions {
            binary: router_binary.to_path_buf(),
            policy_dir: crate::paths::project_root().join("config/policies"),
            log: out_dir.join("router.log"),
            extra_args: Vec::new(),
        },
    )
    .context("the router did not become ready")?;
    log.line(&format!(
        "router ready (pid {}, http {})",
        router.pid(),
        router.http
    ));

    let main_target = Target {
        port: main.port(),
        label: "main",
    };
    let wrong_san_target = Target {
        port: wrong_san.port(),
        label: "wrong-SAN",
    };
    let mut results = cases::run(&case_certs, main_target, wrong_san_target, &mut log).await;
    results.extend(
        super::authz::run(
            &server_tls,
            certs_dir,
            main_target,
            &router,
            router_binary,
            &mut log,
        )
        .await,
    );

    // The router must have survived every attempt.
    let ready = matches!(router.get("/readyz"), Ok((200, _)));
    log.line(&format!("router ready after the cases: {ready}"));
    let status = router.stop(Duration::from_secs(10));
    log.line(&format!("router stopped: {status:?}"));
    results.push(CaseResult::router_still_ready(ready));
    for result in &results {
        log.line(&format!(
            "case {:?}: expected {}, observed {}, verdict {}",
            result.name,
            result.expected,
            result.observed,
            result.verdict()
        ));
    }
    Ok(results)
}

/// The server's CA copied next to a fresh good client certificate and the negative set.
fn issue_case_certs(server_tls: &nats_harness::TlsFiles, dir: &Path) -> anyhow::Result<CaseCerts> {
    // Start from an empty folder so no stale key from an earlier run is ever used.
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("could not clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let ca = server_tls
        .authority()
        .with_context(|| format!("could not load the CA from {}", server_tls.dir.display()))?;
    let ca_cert = dir.join(certs::CA_CERT);
    std::fs::copy(&server_tls.ca_cert, &ca_cert)
        .with_context(|| format!("could not copy the CA certificate to {}", ca_cert.display()))?;
    let client_cert = dir.join(certs::CLIENT_CERT);
    let client_key = dir.join(certs::CLIENT_KEY);
    ca.issue(&LeafSpec::for_identity(
        &certs::Identity::internal(),
        Validity::days_from_now(1)?,
    ))?
    .write(&client_cert, &client_key)
    .context("could not write the client certificate")?;
    let negative = negative::write_negative_set(dir, &ca).with_context(|| {
        format!(
            "could not write the negative certificates into {}",
            dir.display()
        )
    })?;
    let no_client_auth = ClientCert {
        cert: dir.join("no-client-auth-cert.pem"),
        key: dir.join("no-client-auth-key.pem"),
    };
    negative::client_without_client_auth(&ca)?
        .write(&no_client_auth.cert, &no_client_auth.key)
        .context("could not write the certificate without clientAuth")?;
    let not_yet_valid = ClientCert {
        cert: dir.join("not-yet-valid-client-cert.pem"),
        key: dir.join("not-yet-valid-client-key.pem"),
    };
    negative::not_yet_valid_client(&ca)?
        .write(&not_yet_valid.cert, &not_yet_valid.key)
        .context("could not write the not-yet-valid client certificate")?;
    Ok(CaseCerts {
        ca_cert,
        client_cert,
        client_key,
        negative,
        no_client_auth,
        not_yet_valid,
    })
}

/// The `tls {}` block for the wrong-SAN server (the plain template plus this block gives a
/// server that requires mutual TLS with another server certificate).
fn wrong_san_tls_block(ca_cert: &Path, negative: &NegativeSet) -> anyhow::Result<String> {
    let quoted = |path: &Path| -> anyhow::Result<String> {
        let text = path.to_string_lossy();
        if text.contains(['"', '\\', '\n']) {
            anyhow::bail!("the path {text} cannot be written into a nats-server config");
        }
        Ok(format!("\"{text}\""))
    };
    Ok(format!(
        "tls {{\n  ca_file: {}\n  cert_file: {}\n  key_file: {}\n  verify: true\n  timeout: 2\n}}\n",
        quoted(ca_cert)?,
        quoted(&negative.wrong_san_server_cert)?,
        quoted(&negative.wrong_san_server_key)?,
    ))
}

/// Copies a server's log and config into the artifacts folder when dropped, i.e. before the
/// server itself (declared earlier) is stopped and its temporary folder removed.
struct CopyOnDrop {
    files: Vec<(PathBuf, PathBuf)>,
}

impl CopyOnDrop {
    fn new(server: &NatsServer, out_dir: &Path, name: &str) -> Self {
        let mut files = Vec::new();
        if let Some(log) = server.log_path() {
            files.push((log.to_path_buf(), out_dir.join(format!("{name}.log"))));
        }
        if let Some(dir) = server.dir() {
            files.push((dir.join("nats.conf"), out_dir.join(format!("{name}.conf"))));
        }
        Self { files }
    }
}

impl Drop for CopyOnDrop {
    fn drop(&mut self) {
        for (from, to) in &self.files {
            if let Err(err) = std::fs::copy(from, to) {
                eprintln!(
                    "validate-tls: could not copy {} to {}: {err}",
                    from.display(),
                    to.display()
                );
            }
        }
    }
}
