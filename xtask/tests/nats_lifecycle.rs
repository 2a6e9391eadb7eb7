//! nats-start / nats-status / nats-stop against a real nats-server, in temporary artifacts
//! folders on free ports (never the developer's `_artifacts/` or 4222/8222).

mod common;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::{port_is_free, xtask, Sandbox};
use nats_harness::monitor;
use nats_harness::probe::{self, ClientTls};
use nats_harness::process::{self, Signal};

#[test]
fn start_twice_status_stop_and_ports_freed() -> anyhow::Result<()> {
    let sandbox = Sandbox::new()?;
    let first = sandbox.start(&[])?;
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(
        first.stdout.contains(r#"{"status":"ok"}"#),
        "{}",
        first.stdout
    );
    let pid = fs::read_to_string(sandbox.pid_file())?.trim().to_owned();

    let second = sandbox.start(&[])?;
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        second
            .stdout
            .contains(&format!("already running (pid {pid})")),
        "{}",
        second.stdout
    );

    let status = sandbox.status()?;
    assert_eq!(status.code, 0, "{}", status.all());
    for needle in [
        "status: healthy",
        "in_msgs",
        "slow_consumers",
        "/jsz: streams",
    ] {
        assert!(
            status.stdout.contains(needle),
            "{needle}: {}",
            status.stdout
        );
    }

    let stop = sandbox.stop()?;
    assert_eq!(stop.code, 0, "{}", stop.all());
    assert!(port_is_free(sandbox.port) && port_is_free(sandbox.monitor_port));
    assert!(!sandbox.pid_file().exists());

    let status = sandbox.status()?;
    assert_eq!(status.code, 1, "stopped server: {}", status.all());
    assert!(status.stdout.contains("not running"));

    let again = sandbox.stop()?;
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(again.stdout.contains("not running"), "{}", again.stdout);
    Ok(())
}

#[test]
fn stale_pid_file_is_removed_on_start() -> anyhow::Result<()> {
    let sandbox = Sandbox::new()?;
    // A pid that surely is not running any more: a child we started and reaped.
    let mut child = Command::new("true").spawn()?;
    let dead = child.id();
    child.wait()?;
    fs::write(sandbox.pid_file(), format!("{dead}\n"))?;

    let status = sandbox.status()?;
    assert_eq!(status.code, 1, "{}", status.all());
    assert!(status.stdout.contains("stale"), "{}", status.stdout);

    let start = sandbox.start(&[])?;
    assert_eq!(start.code, 0, "{}", start.all());
    assert!(
        start.stdout.contains("removed stale pid file"),
        "{}",
        start.stdout
    );
    let pid = fs::read_to_string(sandbox.pid_file())?;
    assert_ne!(pid.trim(), dead.to_string());
    assert_eq!(sandbox.stop()?.code, 0);
    Ok(())
}

#[test]
fn busy_port_is_named_and_nothing_is_left_behind() -> anyhow::Result<()> {
    let sandbox = Sandbox::new()?;
    let _holder = TcpListener::bind(("127.0.0.1", sandbox.port))?;
    let run = sandbox.start(&[])?;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains(&format!("port {} is in use", sandbox.port)),
        "{}",
        run.all()
    );
    // The holder is this test process.
    assert!(
        run.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        run.all()
    );
    assert!(!sandbox.pid_file().exists());
    Ok(())
}

#[test]
fn tls_start_uses_the_generated_certificates_and_requires_client_certs() -> anyhow::Result<()> {
    let sandbox = Sandbox::new()?;
    let run = sandbox.start(&["--tls"])?;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .contains(&format!("tls://127.0.0.1:{}", sandbox.port)),
        "{}",
        run.stdout
    );
    let certs = sandbox.path().join("certs");
    let conf = fs::read_to_string(sandbox.path().join("nats.conf"))?;
    assert!(conf.contains("verify_and_map: true"));
    assert!(conf.contains(&certs.join("server-cert.pem").to_string_lossy().into_owned()));

    let timeout = Duration::from_secs(5);
    let varz = monitor::get_json(sandbox.monitor_port, "/varz", timeout)?;
    assert_eq!(varz["tls_required"], true, "{varz}");
    assert_eq!(varz["tls_verify"], true, "{varz}");

    // A real mutual-TLS handshake with the generated client certificate succeeds...
    let good = ClientTls {
        ca_cert: certs.join("ca-cert.pem"),
        client: Some((certs.join("client-cert.pem"), certs.join("client-key.pem"))),
        server_name: None,
    };
    let info = probe::ping("127.0.0.1", sandbox.port, Some(&good), timeout)?;
    assert!(info.tls_required);
    // ...and one without a client certificate is refused.
    let anonymous = ClientTls {
        client: None,
        ..good.clone()
    };
    assert!(probe::ping("127.0.0.1", sandbox.port, Some(&anonymous), timeout).is_err());

    let status = sandbox.status()?;
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(
        status.stdout.contains("mutual TLS handshake + PING: ok"),
        "{}",
        status.stdout
    );

    // Starting with the same options again is a no-op; without --tls it is refused.
    assert_eq!(sandbox.start(&["--tls"])?.code, 0);
    let plain = sandbox.start(&[])?;
    assert_eq!(plain.code, 1, "{}", plain.all());
    assert!(plain.stderr.contains("other settings"), "{}", plain.all());

    // nats-reload renders the configuration again and the same server reloads it.
    let pid = fs::read_to_string(sandbox.pid_file())?;
    let reload = xtask(sandbox.path(), &["nats-reload"])?;
    assert_eq!(reload.code, 0, "{}", reload.all());
    assert!(reload.stdout.contains("users)"), "{}", reload.stdout);
    assert_eq!(fs::read_to_string(sandbox.pid_file())?, pid);
    assert_eq!(sandbox.status()?.code, 0);

    assert_eq!(sandbox.stop()?.code, 0);
    assert!(port_is_free(sandbox.port));
    let nothing = xtask(sandbox.path(), &["nats-reload"])?;
    assert_eq!(nothing.code, 1, "{}", nothing.all());
    assert!(
        nothing.stderr.contains("no nats-server running"),
        "{}",
        nothing.all()
    );
    Ok(())
}

#[test]
fn unhealthy_server_gives_status_2() -> anyhow::Result<()> {
    let sandbox = Sandbox::new()?;
    assert_eq!(sandbox.start(&[])?.code, 0);
    let pid: u32 = fs::read_to_string(sandbox.pid_file())?.trim().parse()?;
    process::signal(pid, Signal::SIGSTOP)?;
    let status = sandbox.status();
    process::signal(pid, Signal::SIGCONT)?;
    let status = status?;
    assert_eq!(status.code, 2, "{}", status.all());
    assert!(status.stdout.contains("UNHEALTHY"), "{}", status.stdout);
    assert_eq!(sandbox.stop()?.code, 0);
    Ok(())
}

#[test]
fn failed_start_prints_the_log_and_cleans_up() -> anyhow::Result<()> {
    let sandbox = Sandbox::new()?;
    // A stand-in nats-server that passes the version check but dies at start.
    let fake = sandbox.path().join("nats-server");
    fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'nats-server: v2.14.6'; exit 0; }\n\
         echo 'fatal: simulated start-up failure' >&2\nexit 1\n",
    )?;
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755))?;
    let port = sandbox.port.to_string();
    let monitor_port = sandbox.monitor_port.to_string();
    let store = sandbox.path().join("store").to_string_lossy().into_owned();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "nats-start",
            "--port",
            &port,
            "--monitor-port",
            &monitor_port,
        ])
        .args(["--store-dir", &store])
        .env("BEAMLINE_ARTIFACTS", sandbox.path())
        .env("NATS_SERVER", &fake)
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exited during start-up"), "{stderr}");
    assert!(stderr.contains("simulated start-up failure"), "{stderr}");
    assert!(!sandbox.pid_file().exists());
    Ok(())
}
