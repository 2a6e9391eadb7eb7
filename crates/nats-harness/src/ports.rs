//! Reading the ports nats-server chose, from the file `--ports_file_dir` makes it write
//! (`<executable>_<pid>.ports`: `{"nats":["nats://127.0.0.1:P"],"monitoring":["http://…:M"]}`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The ports a running nats-server listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Client port.
    pub client: u16,
    /// HTTP monitoring port, if monitoring is on.
    pub monitor: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct PortsFile {
    #[serde(default)]
    nats: Vec<String>,
    #[serde(default)]
    monitoring: Vec<String>,
}

/// The ports file of process `pid` in `dir`, if nats-server has written it yet.
pub fn ports_file(dir: &Path, pid: u32) -> Option<PathBuf> {
    let suffix = format!("_{pid}.ports");
    fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
        })
}

/// Reads the ports of process `pid` from `dir`; `Ok(None)` while the file is not there yet.
pub fn read_ports(dir: &Path, pid: u32) -> anyhow::Result<Option<Ports>> {
    let Some(path) = ports_file(dir, pid) else {
        return Ok(None);
    };
    let text =
        fs::read_to_string(&path).with_context(|| format!("could not read {}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(None); // being written
    }
    parse(&text)
        .with_context(|| format!("unexpected content in {}: {text:?}", path.display()))
        .map(Some)
}

/// Parses the JSON of a ports file.
pub fn parse(text: &str) -> anyhow::Result<Ports> {
    let file: PortsFile = serde_json::from_str(text)?;
    let client = file
        .nats
        .first()
        .and_then(|url| port_of(url))
        .context("no client URL in the ports file")?;
    let monitor = file.monitoring.first().and_then(|url| port_of(url));
    Ok(Ports { client, monitor })
}

/// The port of `scheme://host:port[/path]`.
pub fn port_of(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ports_file() -> anyhow::Result<()> {
        let ports =
            parse(r#"{"nats":["tls://127.0.0.1:36871"],"monitoring":["http://127.0.0.1:33493"]}"#)?;
        assert_eq!(
            ports,
            Ports {
                client: 36871,
                monitor: Some(33493)
            }
        );
        assert_eq!(port_of("nats://[::1]:4222"), Some(4222));
        assert_eq!(port_of("tls://localhost:4223/"), Some(4223));
        Ok(())
    }
}
