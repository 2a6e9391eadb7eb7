//! `cargo xtask certs`: created, kept on the second run, renewed with --force.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::xtask;

const FILES: [&str; 6] = [
    "ca-cert.pem",
    "ca-key.pem",
    "server-cert.pem",
    "server-key.pem",
    "client-cert.pem",
    "client-key.pem",
];

#[test]
fn certs_are_created_kept_and_renewed_with_force() -> anyhow::Result<()> {
    let artifacts = tempfile::tempdir()?;
    let dir = artifacts.path().join("certs");

    let first = xtask(artifacts.path(), &["certs"])?;
    assert_eq!(first.code, 0, "{}", first.all());
    for name in FILES {
        let line = first
            .stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_default();
        assert!(line.contains("created"), "{name}: {}", first.stdout);
        // Each file is listed with its expiry date.
        assert!(
            line.split_whitespace()
                .any(|w| w.len() == 10 && w.starts_with("20")),
            "{line}"
        );
    }
    for key in ["ca-key.pem", "server-key.pem", "client-key.pem"] {
        let mode = fs::metadata(dir.join(key))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    let before: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| fs::read(dir.join(f)))
        .collect::<Result<_, _>>()?;

    let second = xtask(artifacts.path(), &["certs"])?;
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        second.stdout.contains("all certificates kept"),
        "{}",
        second.stdout
    );
    let after: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| fs::read(dir.join(f)))
        .collect::<Result<_, _>>()?;
    assert_eq!(before, after, "second run must not touch the files");

    let forced = xtask(artifacts.path(), &["certs", "--force"])?;
    assert_eq!(forced.code, 0, "{}", forced.all());
    assert_eq!(
        forced.stdout.matches("renewed: forced").count(),
        10,
        "{}",
        forced.stdout
    );
    for (name, old) in FILES.iter().zip(&before) {
        assert_ne!(&fs::read(dir.join(name))?, old, "{name} was not renewed");
    }

    // openssl, when installed, accepts the chain too.
    let openssl = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.join("ca-cert.pem"))
        .arg(dir.join("server-cert.pem"))
        .arg(dir.join("client-cert.pem"))
        .output();
    if let Ok(output) = openssl {
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "openssl verify: {text}");
        assert_eq!(text.matches(": OK").count(), 2, "{text}");
    }
    Ok(())
}

#[test]
fn out_and_days_are_honoured_and_short_validity_refused() -> anyhow::Result<()> {
    let artifacts = tempfile::tempdir()?;
    let out = artifacts.path().join("elsewhere");
    let out_text = out.to_string_lossy().into_owned();
    let run = xtask(
        artifacts.path(),
        &["certs", "--out", &out_text, "--days", "90"],
    )?;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(out.join("client-cert.pem").is_file());
    assert!(!artifacts.path().join("certs").exists());

    let short = xtask(artifacts.path(), &["certs", "--days", "10"])?;
    assert_ne!(short.code, 0, "{}", short.all());
    Ok(())
}
