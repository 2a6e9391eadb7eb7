//! `NATS_URL` turns `from_env_or_start_*` into a handle on an external server.
//! (Its own test binary: it changes the process environment.)

use nats_harness::NatsServer;

#[test]
fn external_server_from_env_is_used_and_left_running() -> anyhow::Result<()> {
    let real = NatsServer::start_tls()?;
    let tls = real.tls().ok_or_else(|| anyhow::anyhow!("no TLS files"))?;
    std::env::set_var("NATS_URL", real.client_url());
    std::env::set_var("NATS_MONITOR_PORT", real.monitor_port().to_string());
    std::env::set_var("NATS_CA", &tls.ca_cert);
    std::env::set_var("NATS_CERT", &tls.client_cert);
    std::env::set_var("NATS_KEY", &tls.client_key);

    let mut external = NatsServer::from_env_or_start_tls()?;
    assert!(external.is_external());
    assert_eq!(external.client_url(), real.client_url());
    assert_eq!(external.port(), real.port());
    assert!(external.pid().is_none());
    assert_eq!(external.tls().map(|t| &t.ca_key), Some(&tls.ca_key));
    external.ping()?;
    assert!(external.stop().is_err());
    assert!(external.restart().is_err());
    drop(external);
    // Dropping the external handle left the real server running.
    real.ping()?;

    std::env::remove_var("NATS_URL");
    let own = NatsServer::from_env_or_start_plain()?;
    assert!(!own.is_external());
    own.ping()?;
    Ok(())
}
