//! `cargo xtask cluster-start|cluster-status|cluster-stop` and `cargo xtask policy` against
//! the real cluster they start, in a temporary artifacts folder.

mod common;

use std::path::Path;

use common::{port_is_free, xtask};

const GOOD: &str =
    r#"{"providers": [{"name": "openai", "weight": 70}, {"name": "anthropic", "weight": 30}]}"#;
const BAD: &str = r#"{"providers": [{"name": "openai", "weight": -1}]}"#;

/// A base port whose nine cluster ports are free now.
fn free_base() -> anyhow::Result<u16> {
    for attempt in 0..50u16 {
        let base = 20_000 + (std::process::id() as u16 % 400) * 20 + attempt * 7;
        let ports = (0..3).flat_map(|i| [base + i, base + 100 + i, base + 200 + i]);
        if ports.into_iter().all(port_is_free) {
            return Ok(base);
        }
    }
    anyhow::bail!("no free base port for a cluster")
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path.display().to_string())
}

#[test]
fn cluster_lifecycle_and_policies_in_the_bucket() -> anyhow::Result<()> {
    let artifacts = tempfile::tempdir()?;
    let dir = artifacts.path();
    let base = free_base()?.to_string();
    let start = xtask(
        dir,
        &["cluster-start", "--nodes", "3", "--base-port", &base],
    )?;
    // Stop whatever started, even when an assertion below fails.
    struct Stop<'a>(&'a Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = xtask(self.0, &["cluster-stop"]);
        }
    }
    let _stop = Stop(dir);
    assert_eq!(start.code, 0, "{}", start.all());
    assert!(start.stdout.contains("3 replicas"), "{}", start.all());
    assert!(dir.join("cluster/cluster.json").is_file());

    let again = xtask(dir, &["cluster-start", "--base-port", &base])?;
    assert_eq!(again.code, 0, "second start: {}", again.all());
    assert!(again.stdout.contains("already running"), "{}", again.all());
    let status = xtask(dir, &["cluster-status"])?;
    assert_eq!(status.code, 0, "{}", status.all());
    assert_eq!(
        status.stdout.matches("healthz ok").count(),
        3,
        "{}",
        status.all()
    );

    let good = write(dir, "good.json", GOOD)?;
    let bad = write(dir, "bad.json", BAD)?;
    let valid = xtask(dir, &["policy", "validate", "acme", "default", &good])?;
    assert_eq!(valid.code, 0, "{}", valid.all());
    let invalid = xtask(dir, &["policy", "validate", "acme", "default", &bad])?;
    assert_eq!(invalid.code, 1, "{}", invalid.all());
    assert!(
        invalid.stderr.contains("providers[0].weight"),
        "{}",
        invalid.all()
    );

    let put = xtask(
        dir,
        &["policy", "--cluster", "put", "acme", "default", &good],
    )?;
    assert_eq!(put.code, 0, "{}", put.all());
    let refused = xtask(dir, &["policy", "--cluster", "put", "acme", "broken", &bad])?;
    assert_eq!(refused.code, 1, "{}", refused.all());
    let missing = xtask(dir, &["policy", "--cluster", "get", "acme", "broken"])?;
    assert_eq!(
        missing.code,
        1,
        "an invalid policy never reaches the bucket: {}",
        missing.all()
    );
    let get = xtask(dir, &["policy", "--cluster", "get", "acme", "default"])?;
    assert_eq!(get.code, 0, "{}", get.all());
    assert_eq!(get.stdout.trim(), GOOD);
    let list = xtask(dir, &["policy", "--cluster", "list"])?;
    assert_eq!(list.code, 0, "{}", list.all());
    assert!(
        list.stdout.contains("acme.default") && list.stdout.contains("valid"),
        "{}",
        list.all()
    );
    let delete = xtask(dir, &["policy", "--cluster", "delete", "acme", "default"])?;
    assert_eq!(delete.code, 0, "{}", delete.all());
    let gone = xtask(dir, &["policy", "--cluster", "get", "acme", "default"])?;
    assert_eq!(gone.code, 1, "{}", gone.all());

    let stop = xtask(dir, &["cluster-stop"])?;
    assert_eq!(stop.code, 0, "{}", stop.all());
    assert!(stop.stdout.contains("stopped 3 node(s)"), "{}", stop.all());
    let after = xtask(dir, &["cluster-status"])?;
    assert_eq!(after.code, 1, "{}", after.all());
    Ok(())
}
