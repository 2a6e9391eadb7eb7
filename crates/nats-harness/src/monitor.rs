//! The HTTP monitoring endpoints of nats-server (`/healthz`, `/varz`, `/jsz`), and GET on
//! any local HTTP listener (the router's `/metrics`, `/readyz`).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A GET answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
}

/// GET `http://127.0.0.1:<port><path>` with a timeout; any status is returned, not an error.
pub fn get(port: u16, path: &str, timeout: Duration) -> anyhow::Result<Reply> {
    get_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), path, timeout)
}

/// GET `http://<addr><path>` with a timeout; any status is returned, not an error.
pub fn get_addr(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<Reply> {
    let url = format!("http://{addr}{path}");
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut response = agent
        .get(&url)
        .call()
        .with_context(|| format!("GET {url} failed"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("could not read the body of {url}"))?;
    Ok(Reply { status, body })
}

/// GET a JSON endpoint (`/varz`, `/jsz`) and parse it.
pub fn get_json(port: u16, path: &str, timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let reply = get(port, path, timeout)?;
    if reply.status != 200 {
        bail!(
            "GET {path} answered {}: {}",
            reply.status,
            reply.body.trim()
        );
    }
    serde_json::from_str(&reply.body).with_context(|| format!("{path} is not JSON"))
}

/// `/healthz` once: `Ok(body)` on 200, an error naming the status and body otherwise.
pub fn healthz(port: u16, timeout: Duration) -> anyhow::Result<String> {
    let reply = get(port, "/healthz", timeout)?;
    if reply.status == 200 {
        Ok(reply.body.trim().to_owned())
    } else {
        bail!("/healthz answered {}: {}", reply.status, reply.body.trim())
    }
}

/// Polls `/healthz` until it answers 200 or `timeout` passes. `still_running` is called
/// between attempts and should fail when the server process has exited, to stop early.
pub fn wait_healthy(
    port: u16,
    timeout: Duration,
    mut still_running: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = healthz(port, Duration::from_secs(2));
        match attempt {
            Ok(body) => return Ok(body),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!(
                    "nats-server did not become healthy within {} s",
                    timeout.as_secs()
                )))
            }
            Err(_) => {}
        }
        still_running()?;
        std::thread::sleep(Duration::from_millis(100));
    }
}
