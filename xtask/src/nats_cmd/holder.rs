//! Is a TCP port free, and if not, which process listens on it
//! ([`nats_harness::process::port_owner`], falling back to `ss -ltnp`).

use std::net::TcpListener;
use std::process::Command;

use nats_harness::process;

/// True when nothing listens on `127.0.0.1:port` (a bind succeeds).
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A short description of who holds `port`: "pid 123 (nats-server)", or an `ss` line, or
/// `None` when it cannot be found out.
pub fn describe(port: u16) -> Option<String> {
    if let Some((pid, name)) = process::port_owner(port) {
        return Some(format!("pid {pid} ({name})"));
    }
    ss_line(port)
}

/// The pid of the process listening on `port`, when `/proc` tells.
pub fn owner_pid(port: u16) -> Option<u32> {
    process::port_owner(port).map(|(pid, _)| pid)
}

/// "port 4222 is in use by pid 123 (nats-server)" or "port 4222 is in use".
pub fn busy_message(port: u16) -> String {
    match describe(port) {
        Some(holder) => format!("port {port} is in use by {holder}"),
        None => format!("port {port} is in use"),
    }
}

fn ss_line(port: u16) -> Option<String> {
    let output = Command::new("ss")
        .args(["-ltnpH", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().next()?.split_whitespace().collect::<Vec<_>>();
    line.last().map(|users| (*users).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_own_listener() -> std::io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        assert!(!is_free(port));
        let message = busy_message(port);
        assert!(message.contains(&format!("port {port}")), "{message}");
        assert!(
            message.contains(&std::process::id().to_string()),
            "{message}"
        );
        drop(listener);
        assert!(is_free(port));
        Ok(())
    }
}
