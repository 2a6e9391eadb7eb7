//! Process trees on Linux (`/proc`): finding every descendant of a process and stopping
//! them all, so that a `cargo test` interrupted by `heavy` leaves nothing running (test
//! binaries start routers and nats-servers, some in process groups of their own).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// True when `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).is_some_and(|(state, _)| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// True when a live process still belongs to process group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    pgid > 0 && matches!(kill(Pid::from_raw(-pgid), None), Ok(()) | Err(Errno::EPERM))
}

/// Every live descendant of `root` (children, their children, ...), not `root` itself.
pub fn descendants(root: i32) -> Vec<i32> {
    let parents = parent_map();
    let mut found = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (&pid, &ppid) in &parents {
            if ppid == parent && found.insert(pid) {
                frontier.push(pid);
            }
        }
    }
    found.into_iter().collect()
}

/// Stops `root`, its process group and every descendant: SIGTERM, then SIGKILL for whatever
/// is still alive after `grace`. The tree is read before the first signal, since orphans are
/// re-parented as soon as their parent dies.
pub fn terminate_tree(root: i32, grace: Duration) {
    if root <= 0 {
        return;
    }
    let mut victims = descendants(root);
    victims.push(root);
    signal_all(root, &victims, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        // A new descendant may have been spawned meanwhile.
        for pid in descendants(root) {
            if !victims.contains(&pid) {
                victims.push(pid);
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        if !victims.iter().any(|&pid| is_alive(pid)) && !group_alive(root) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_all(root, &victims, Signal::SIGKILL);
}

fn signal_all(group: i32, pids: &[i32], signal: Signal) {
    let _ = kill(Pid::from_raw(-group), signal);
    for &pid in pids {
        if is_alive(pid) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

/// pid → parent pid of every process in `/proc`.
fn parent_map() -> BTreeMap<i32, i32> {
    let mut map = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return map;
    };
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((_, ppid)) = stat_fields(&stat) {
            map.insert(pid, ppid);
        }
    }
    map
}

/// (state, parent pid) from the text of `/proc/<pid>/stat`; the command name in parentheses
/// may itself contain spaces and parentheses, so the fields are read after the last `)`.
fn stat_fields(stat: &str) -> Option<(&str, i32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn reads_state_and_parent_after_the_command_name() {
        assert_eq!(stat_fields("42 (odd) name)) S 7 42 42 0"), Some(("S", 7)));
        assert_eq!(stat_fields("garbage"), None);
    }

    #[test]
    fn terminates_a_shell_and_its_background_child() -> anyhow::Result<()> {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 60 & wait"])
            .process_group(0)
            .spawn()?;
        let root = i32::try_from(child.id())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let grandchild = loop {
            if let Some(&pid) = descendants(root).first() {
                break pid;
            }
            assert!(Instant::now() < deadline, "sleep never started");
            std::thread::sleep(Duration::from_millis(20));
        };
        terminate_tree(root, Duration::from_secs(2));
        child.wait()?;
        assert!(!is_alive(grandchild));
        assert!(!group_alive(root));
        Ok(())
    }
}
