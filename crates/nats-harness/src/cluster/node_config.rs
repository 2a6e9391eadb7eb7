//! The cluster part of one node's nats-server configuration: its `server_name` and its
//! `cluster { … }` block with the route list and, with TLS, mutual TLS on the routes.

use std::path::Path;

use anyhow::bail;

use crate::server::TlsFiles;

/// Name of the cluster every node joins.
pub const CLUSTER_NAME: &str = "beamline";

/// The `server_name` and `cluster { … }` lines of one node.
pub(super) fn cluster_block(
    name: &str,
    route_port: u16,
    routes: &[String],
    tls: Option<&TlsFiles>,
) -> anyhow::Result<String> {
    let routes = routes
        .iter()
        .map(|r| format!("    \"{r}\""))
        .collect::<Vec<_>>()
        .join("\n");
    let route_tls = match tls {
        Some(t) => format!(
            "  tls {{\n    ca_file: \"{}\"\n    cert_file: \"{}\"\n    key_file: \"{}\"\n    \
             verify: true\n    timeout: 2\n  }}\n",
            quoted(&t.ca_cert)?,
            quoted(&t.server_cert)?,
            quoted(&t.server_key)?
        ),
        None => String::new(),
    };
    Ok(format!(
        "server_name: {name}\n\ncluster {{\n  name: {CLUSTER_NAME}\n  host: 127.0.0.1\n  \
         port: {route_port}\n  routes: [\n{routes}\n  ]\n{route_tls}}}\n"
    ))
}

fn quoted(path: &Path) -> anyhow::Result<String> {
    let text = path.to_string_lossy();
    if !path.is_absolute() || text.contains(['"', '\\', '\n']) {
        bail!("the nats-server config needs an absolute, plain path, got {text}");
    }
    Ok(text.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_block_lists_every_route_and_mutual_tls() -> anyhow::Result<()> {
        let tls = TlsFiles {
            ca_cert: "/c/ca.pem".into(),
            server_cert: "/c/node.pem".into(),
            server_key: "/c/node-key.pem".into(),
            ..TlsFiles::new(Path::new("/c"))
        };
        let routes = vec![
            "nats-route://127.0.0.1:1".to_owned(),
            "nats-route://127.0.0.1:2".to_owned(),
        ];
        let block = cluster_block("n2", 2, &routes, Some(&tls))?;
        assert!(block.contains("server_name: n2"));
        assert!(block.contains("port: 2"));
        assert!(block.contains("\"nats-route://127.0.0.1:1\""));
        assert!(block.contains("cert_file: \"/c/node.pem\""));
        assert!(block.contains("verify: true"));
        assert!(!cluster_block("n1", 1, &routes, None)?.contains("tls"));
        Ok(())
    }
}
