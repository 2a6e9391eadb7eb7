//! The `router` binary as an operator runs it next to a running router.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nats_harness::NatsServer;
use router_core::Identity;

/// `router <args>` with the server's URL and the TLS files of `identity` (the router's own
/// by default, as next to a running router).
pub fn router_cli(server: &NatsServer, identity: &Identity, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_router"));
    command
        .args(["--config", "/dev/null", "--nats-url"])
        .arg(server.client_url());
    if let Some(tls) = server.tls() {
        let (cert, key) = tls
            .ensure_identity(identity)
            .expect("the identity's certificate");
        command
            .arg("--tls-ca")
            .arg(&tls.ca_cert)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key);
    }
    command.args(args).stdin(Stdio::null());
    command
}

pub fn run(mut command: Command) -> (Option<i32>, String, String, Duration) {
    let started = Instant::now();
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("router runs");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
        started.elapsed(),
    )
}
