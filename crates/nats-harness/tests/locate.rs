//! Locating nats-server through `NATS_SERVER`. (Own test binary: it changes the environment.)

use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn nats_server_env_is_checked_for_version_and_existence() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;

    // A stand-in that reports an old version is refused with a clear message.
    let old = dir.path().join("nats-server");
    fs::write(&old, "#!/bin/sh\necho 'nats-server: v2.9.10'\n")?;
    fs::set_permissions(&old, fs::Permissions::from_mode(0o755))?;
    std::env::set_var("NATS_SERVER", &old);
    let message = nats_harness::locate::locate()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(message.contains("2.9.10"), "{message}");
    assert!(message.contains("older than 2.10.0"), "{message}");

    // A path that does not exist is refused too.
    std::env::set_var("NATS_SERVER", dir.path().join("missing"));
    let message = nats_harness::locate::locate()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(message.contains("not an executable"), "{message}");

    // A real one (whatever the harness finds without NATS_SERVER) is accepted through it.
    std::env::remove_var("NATS_SERVER");
    let found = nats_harness::locate::locate()?;
    std::env::set_var("NATS_SERVER", &found.path);
    let again = nats_harness::locate::locate()?;
    assert_eq!(again.source, nats_harness::Source::Env);
    assert_eq!(again.version, found.version);
    assert!(again.version >= nats_harness::MIN_VERSION);
    Ok(())
}
