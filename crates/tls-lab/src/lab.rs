//! The test bench: certificates, the two nats-servers and the router, started in order and
//! stopped by their Drop guards whatever happens, and every case run against them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use certs::negative::{self, NegativeSet};
use nats_harness::{NatsServer, RouterOptions, RouterProcess, ServerOptions};

use crate::log::RunLog;
use crate::result::CaseResult;
use crate::target::Target;
use crate::{authz, case_certs, tls_cases};

/// Starts everything, runs every case, copies the server logs into `out_dir` and stops
/// everything; the case certificates go to `certs_dir`.
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

    let case_certs = case_certs::issue(&server_tls, certs_dir)?;
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
            policy_dir: crate::project_root().join("config/policies"),
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
    let mut results = tls_cases::run(&case_certs, main_target, wrong_san_target, &mut log).await;
    results.extend(
        authz::run(
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
