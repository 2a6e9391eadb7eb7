//! A plaintext NATS client speaking the protocol by hand: async-nats upgrades to TLS by
//! itself whenever the server asks for it, so it cannot play the client that does not.
//!
//! It reads `INFO`, then sends `CONNECT`, subscribes to a reply subject, publishes one
//! decide request and a `PING`, all without TLS, and reads until the server closes the
//! connection or the time is up. A `MSG` line means a request got through.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What the plaintext client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlainOutcome {
    /// A reply to the decide request arrived (the payload, lossily decoded).
    Answered(String),
    /// No reply: what the server said and why the exchange ended (server error line, PONG,
    /// close, reset, timeout).
    Refused(String),
}

/// Tries one plaintext decide request against `127.0.0.1:port` within `timeout`.
pub async fn try_request(port: u16, subject: &str, body: &[u8], timeout: Duration) -> PlainOutcome {
    match tokio::time::timeout(timeout, exchange(port, subject, body)).await {
        Ok(outcome) => outcome,
        Err(_) => PlainOutcome::Refused(format!(
            "no reply and no close within {} s",
            timeout.as_secs()
        )),
    }
}

async fn exchange(port: u16, subject: &str, body: &[u8]) -> PlainOutcome {
    let stream = match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(stream) => stream,
        Err(err) => return PlainOutcome::Refused(format!("TCP connect failed: {err}")),
    };
    let mut reader = BufReader::new(stream);
    let mut info = String::new();
    match reader.read_line(&mut info).await {
        Ok(0) => return PlainOutcome::Refused("server closed the connection before INFO".into()),
        Ok(_) => {}
        Err(err) => return PlainOutcome::Refused(format!("reading INFO failed: {err}")),
    }
    let mut out = Vec::with_capacity(body.len() + 256);
    out.extend_from_slice(
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\
          \"name\":\"validate-tls-plaintext\",\"lang\":\"rust\",\"version\":\"0\",\
          \"protocol\":1,\"headers\":false}\r\n",
    );
    out.extend_from_slice(b"SUB _INBOX.validate-tls.plain 1\r\n");
    out.extend_from_slice(
        format!("PUB {subject} _INBOX.validate-tls.plain {}\r\n", body.len()).as_bytes(),
    );
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\nPING\r\n");
    if let Err(err) = reader.get_mut().write_all(&out).await {
        return PlainOutcome::Refused(format!("server closed the connection: {err}"));
    }
    // Everything the server says before it hangs up; a PONG would mean it took the
    // plaintext CONNECT, which the caller must not count as a refusal.
    let mut said = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) => {
                said.push("server closed the connection".to_owned());
                return PlainOutcome::Refused(said.join("; "));
            }
            Ok(_) => {}
            Err(err) => {
                said.push(format!("connection failed: {err}"));
                return PlainOutcome::Refused(said.join("; "));
            }
        }
        let line = line.trim_end();
        if line.starts_with("MSG ") {
            let mut payload = String::new();
            let _ = reader.read_line(&mut payload).await;
            return PlainOutcome::Answered(payload.trim_end().to_owned());
        }
        if let Some(err) = line.strip_prefix("-ERR") {
            said.push(format!("server error {}", err.trim()));
        } else if line == "PONG" {
            said.push("PONG: the server accepted the plaintext CONNECT".to_owned());
        }
    }
}
