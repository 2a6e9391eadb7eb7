//! A minimal NATS client handshake, to prove a server answers (optionally over mutual TLS):
//! TCP connect, read `INFO`, upgrade to TLS (rustls) when asked, `CONNECT` + `PING`, expect
//! `PONG`. Negative TLS tests use it to see a handshake refused.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The client side of a TLS probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// CA file used to verify the server.
    pub ca_cert: PathBuf,
    /// Client certificate and key to present, if any.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Name to verify the server certificate against; the host dialled when `None`.
    pub server_name: Option<String>,
}

/// Client-side TLS settings that verify the server against the bundle's CA and present its
/// client certificate.
pub fn client_tls(files: &crate::TlsFiles) -> ClientTls {
    ClientTls {
        ca_cert: files.ca_cert.clone(),
        client: Some((files.client_cert.clone(), files.client_key.clone())),
        server_name: None,
    }
}

/// What the server said in its `INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Server version.
    pub version: String,
    /// The server requires TLS.
    pub tls_required: bool,
    /// The server's id.
    pub server_id: String,
}

/// Connects to `host:port`, optionally upgrades to TLS, and completes CONNECT/PING/PONG.
pub fn ping(
    host: &str,
    port: u16,
    tls: Option<&ClientTls>,
    timeout: Duration,
) -> anyhow::Result<ServerInfo> {
    let addr = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("could not resolve {host}:{port}"))?
        .next()
        .with_context(|| format!("{host}:{port} resolves to nothing"))?;
    let mut tcp = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("could not connect to {addr}"))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;

    let info_line = read_line_unbuffered(&mut tcp).context("no INFO from the server")?;
    let info = parse_info(&info_line)?;

    let connect = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"tls_required\":{},\"name\":\"nats-harness-probe\",\"lang\":\"rust\",\"version\":\"0\",\"protocol\":1}}\r\nPING\r\n",
        tls.is_some()
    );
    match tls {
        Some(tls) => {
            let name = tls.server_name.as_deref().unwrap_or(host);
            let conn = rustls::ClientConnection::new(client_config(tls)?, server_name(name)?)
                .context("could not set up the TLS client")?;
            let stream = rustls::StreamOwned::new(conn, tcp);
            exchange(stream, &connect).context("TLS session failed")?;
        }
        None => exchange(tcp, &connect)?,
    }
    Ok(info)
}

fn exchange<S: Read + Write>(stream: S, connect: &str) -> anyhow::Result<()> {
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(connect.as_bytes())?;
    reader.get_mut().flush()?;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            bail!("the server closed the connection before PONG");
        }
        let line = line.trim_end();
        if line == "PONG" {
            return Ok(());
        }
        if let Some(err) = line.strip_prefix("-ERR") {
            bail!("the server refused the connection: {}", err.trim());
        }
        // +OK, INFO updates, PING: keep reading.
    }
}

fn read_line_unbuffered(stream: &mut TcpStream) -> anyhow::Result<String> {
    let mut bytes = Vec::with_capacity(512);
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n") {
        if bytes.len() > 64 * 1024 {
            bail!("INFO line longer than 64 KiB");
        }
        let n = stream.read(&mut byte)?;
        if n == 0 {
            bail!("connection closed");
        }
        bytes.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_owned())
}

fn parse_info(line: &str) -> anyhow::Result<ServerInfo> {
    let json = line
        .strip_prefix("INFO ")
        .with_context(|| format!("expected INFO, got {line:?}"))?;
    let value: serde_json::Value = serde_json::from_str(json).context("INFO is not JSON")?;
    let text = |key: &str| {
        value
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    Ok(ServerInfo {
        version: text("version"),
        tls_required: value
            .get("tls_required")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        server_id: text("server_id"),
    })
}

fn server_name(name: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(name.to_owned())
        .with_context(|| format!("{name:?} is not a valid TLS server name"))
}

fn client_config(tls: &ClientTls) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&tls.ca_cert)
        .with_context(|| format!("could not read {}", tls.ca_cert.display()))?;
    for cert in certs {
        let cert = cert.with_context(|| format!("bad PEM in {}", tls.ca_cert.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("unusable CA in {}", tls.ca_cert.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("no TLS protocol version available")?
        .with_root_certificates(roots);
    let config = match &tls.client {
        Some((cert_path, key_path)) => {
            let chain = CertificateDer::pem_file_iter(cert_path)
                .with_context(|| format!("could not read {}", cert_path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("bad PEM in {}", cert_path.display()))?;
            let key = PrivateKeyDer::from_pem_file(key_path)
                .with_context(|| format!("could not read a key from {}", key_path.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("unusable client certificate or key")?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
