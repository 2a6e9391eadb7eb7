//! Is a TCP port free, and if not, which process listens on it (`/proc/net/tcp*` and
//! `/proc/*/fd`, falling back to `ss -ltnp`).

use std::collections::HashSet;
use std::fs;
use std::net::TcpListener;
use std::process::Command;

/// True when nothing listens on `127.0.0.1:port` (a bind succeeds).
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A short description of who holds `port`: "pid 123 (nats-server)", or an `ss` line, or
/// `None` when it cannot be found out.
pub fn describe(port: u16) -> Option<String> {
    let inodes = listening_inodes(port);
    if !inodes.is_empty() {
        if let Some((pid, name)) = owner_of(&inodes) {
            return Some(format!("pid {pid} ({name})"));
        }
    }
    ss_line(port)
}

/// The pid of the process listening on `port`, when `/proc` tells.
pub fn owner_pid(port: u16) -> Option<u32> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    owner_of(&inodes).map(|(pid, _)| pid)
}

/// "port 4222 is in use by pid 123 (nats-server)" or "port 4222 is in use".
pub fn busy_message(port: u16) -> String {
    match describe(port) {
        Some(holder) => format!("port {port} is in use by {holder}"),
        None => format!("port {port} is in use"),
    }
}

fn listening_inodes(port: u16) -> HashSet<String> {
    const LISTEN: &str = "0A";
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            if local_port == Some(port) && *state == LISTEN && *inode != "0" {
                inodes.insert((*inode).to_owned());
            }
        }
    }
    inodes
}

fn owner_of(inodes: &HashSet<String>) -> Option<(u32, String)> {
    let wanted: HashSet<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            if let Ok(target) = fs::read_link(fd.path()) {
                if wanted.contains(target.to_string_lossy().as_ref()) {
                    let name = super::process::name(pid).unwrap_or_else(|| "?".to_owned());
                    return Some((pid, name));
                }
            }
        }
    }
    None
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
