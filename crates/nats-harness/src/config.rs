//! Rendering the nats-server configuration from the templates in `config/`.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// `config/nats.conf`: plain TCP, JetStream.
pub const PLAIN_TEMPLATE: &str = include_str!("../../../config/nats.conf");
/// `config/nats_tls.conf`: mutual TLS (`verify: true`), JetStream.
pub const TLS_TEMPLATE: &str = include_str!("../../../config/nats_tls.conf");

/// Server-side TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// CA that signed the client certificates.
    pub ca_cert: PathBuf,
    /// Server certificate.
    pub server_cert: PathBuf,
    /// Server private key.
    pub server_key: PathBuf,
}

/// The values put into a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValues {
    /// Listen address, e.g. `127.0.0.1`.
    pub host: String,
    /// Client port; `None` lets nats-server pick a free one.
    pub port: Option<u16>,
    /// Monitoring port; `None` lets nats-server pick a free one.
    pub monitor_port: Option<u16>,
    /// Enable JetStream.
    pub jetstream: bool,
    /// JetStream store directory (absolute).
    pub store_dir: PathBuf,
    /// TLS files; `Some` selects the TLS template.
    pub tls: Option<ServerTls>,
    /// Extra configuration lines appended verbatim.
    pub extra: String,
}

/// Renders the plain or TLS template. Paths must be absolute and free of `"` and `\`.
pub fn render(values: &ConfigValues) -> anyhow::Result<String> {
    let template = if values.tls.is_some() {
        TLS_TEMPLATE
    } else {
        PLAIN_TEMPLATE
    };
    let port = |p: Option<u16>| p.map_or_else(|| "-1".to_owned(), |p| p.to_string());
    let mut replacements = vec![
        ("{{HOST}}", values.host.clone()),
        ("{{PORT}}", port(values.port)),
        ("{{MONITOR_PORT}}", port(values.monitor_port)),
        ("{{JETSTREAM}}", values.jetstream.to_string()),
        ("{{STORE_DIR}}", quoted_path(&values.store_dir)?),
        ("{{EXTRA}}", values.extra.clone()),
    ];
    if let Some(tls) = &values.tls {
        replacements.push(("{{CA_CERT}}", quoted_path(&tls.ca_cert)?));
        replacements.push(("{{SERVER_CERT}}", quoted_path(&tls.server_cert)?));
        replacements.push(("{{SERVER_KEY}}", quoted_path(&tls.server_key)?));
    }
    // Only the lines that are not comments carry placeholders.
    let mut out = String::with_capacity(template.len() + values.extra.len());
    for line in template.lines() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            let mut line = line.to_owned();
            for (key, value) in &replacements {
                line = line.replace(key, value);
            }
            if let Some(start) = line.find("{{") {
                bail!(
                    "unfilled placeholder in the nats-server template: {}",
                    &line[start..]
                );
            }
            out.push_str(&line);
        }
        out.push('\n');
    }
    Ok(out)
}

fn quoted_path(path: &Path) -> anyhow::Result<String> {
    let text = path.to_string_lossy();
    if !path.is_absolute() {
        bail!("the nats-server config needs absolute paths, got {text}");
    }
    if text.contains(['"', '\\', '\n']) {
        bail!("the path {text} contains a quote, backslash or newline; use another directory");
    }
    Ok(text.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(tls: bool) -> ConfigValues {
        ConfigValues {
            host: "127.0.0.1".into(),
            port: Some(4333),
            monitor_port: None,
            jetstream: true,
            store_dir: "/tmp/store".into(),
            tls: tls.then(|| ServerTls {
                ca_cert: "/c/ca.pem".into(),
                server_cert: "/c/s.pem".into(),
                server_key: "/c/k.pem".into(),
            }),
            extra: "max_payload: 2MB".into(),
        }
    }

    #[test]
    fn plain_template_renders_every_placeholder() -> anyhow::Result<()> {
        let text = render(&values(false))?;
        assert!(text.contains("port: 4333"));
        assert!(text.contains("http_port: -1"));
        assert!(text.contains("store_dir: \"/tmp/store\""));
        assert!(text.contains("max_payload: 2MB"));
        assert!(!text.contains("tls {"));
        Ok(())
    }

    #[test]
    fn tls_template_requires_client_certificates() -> anyhow::Result<()> {
        let text = render(&values(true))?;
        assert!(text.contains("verify_and_map: true"));
        assert!(text.contains("user: \"CN=router,OU=router,O=Beamline Router\""));
        assert!(text.contains("ca_file: \"/c/ca.pem\""));
        assert!(text.contains("key_file: \"/c/k.pem\""));
        Ok(())
    }

    #[test]
    fn relative_paths_are_refused() {
        let mut v = values(false);
        v.store_dir = "store".into();
        assert!(render(&v).is_err());
    }
}
