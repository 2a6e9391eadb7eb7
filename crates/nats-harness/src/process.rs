//! Processes by pid on Linux, read through `/proc` with the `procfs` crate: is a process
//! alive, what is it called, does it run nats-server, which processes descend from it, who
//! listens on a TCP port; and signalling a pid or a whole process tree.
//!
//! One rule covers a `/proc` that cannot be read (not mounted, or hidden by `hidepid`): a
//! pid that `kill(pid, 0)` finds is trusted. [`is_alive`] is then true for it, and
//! [`is_nats_server`] too, as it cannot look at the command line. Where `/proc` can be read,
//! a zombie is never alive and only a process whose `argv[0]` ends with `nats-server` is a
//! nats-server (which guards against a recorded pid reused by another program).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use procfs::net::TcpState;
use procfs::process::{FDTarget, Process};

pub use nix::sys::signal::Signal;

/// How often the waiting functions look again.
const POLL: Duration = Duration::from_millis(50);

/// True when `pid` exists and is not a zombie (see the module documentation for a `/proc`
/// that cannot be read).
pub fn is_alive(pid: u32) -> bool {
    let Some(raw) = raw_pid(pid) else {
        return false;
    };
    match Process::new(raw).and_then(|process| process.stat()) {
        Ok(stat) => stat.state != 'Z' && stat.state != 'X',
        Err(_) => exists(raw),
    }
}

/// The command name of `pid` (its `comm`: the executable's name, at most 15 bytes).
pub fn name(pid: u32) -> Option<String> {
    let process = Process::new(raw_pid(pid)?).ok()?;
    process.stat().ok().map(|stat| stat.comm)
}

/// True when `pid` is alive and runs a nats-server executable (`argv[0]` ends with
/// `nats-server`, or, while its command line is still empty during exec, its command name is
/// `nats-server`). When its command line cannot be read, a live pid is trusted.
pub fn is_nats_server(pid: u32) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let Some(raw) = raw_pid(pid) else {
        return false;
    };
    match Process::new(raw).and_then(|process| process.cmdline()) {
        Ok(argv) => match argv.first() {
            Some(argv0) => argv0.ends_with("nats-server"),
            // A process in the middle of exec has its new name but not yet its new command
            // line: judge by the name the kernel already set.
            None => name(pid).is_some_and(|comm| comm == "nats-server"),
        },
        Err(_) => true,
    }
}

/// The pid and command name of every descendant of `root` (children, their children, …),
/// not `root` itself, in pid order.
pub fn descendants(root: u32) -> Vec<(u32, String)> {
    let table = process_table();
    let mut found = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (&pid, (ppid, _)) in &table {
            if *ppid == parent && found.insert(pid) {
                frontier.push(pid);
            }
        }
    }
    found
        .into_iter()
        .map(|pid| {
            let name = table.get(&pid).map(|(_, n)| n.clone()).unwrap_or_default();
            (pid, name)
        })
        .collect()
}

/// True when a live process still belongs to process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    raw_pid(pgid)
        .is_some_and(|raw| matches!(kill(Pid::from_raw(-raw), None), Ok(()) | Err(Errno::EPERM)))
}

/// Stops `root`, its process group and every descendant: SIGTERM, then SIGKILL for whatever
/// is still alive after `grace`. The tree is read before the first signal, since orphans are
/// re-parented as soon as their parent dies. A `root` of 0 does nothing.
pub fn terminate_tree(root: u32, grace: Duration) {
    if raw_pid(root).is_none() {
        return;
    }
    let mut victims = descendant_pids(root);
    victims.push(root);
    signal_all(root, &victims, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        // A new descendant may have been spawned meanwhile.
        for pid in descendant_pids(root) {
            if !victims.contains(&pid) {
                victims.push(pid);
                let _ = signal(pid, Signal::SIGTERM);
            }
        }
        if !victims.iter().any(|&pid| is_alive(pid)) && !group_alive(root) {
            return;
        }
        std::thread::sleep(POLL);
    }
    signal_all(root, &victims, Signal::SIGKILL);
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    let raw = raw_pid(pid).ok_or_else(|| anyhow!("pid {pid} out of range"))?;
    match kill(Pid::from_raw(raw), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(anyhow!("could not send {signal} to pid {pid}: {e}")),
    }
}

/// Waits until `pid` is gone (or a zombie) or `timeout` passes; true when it is gone.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// The pid and command name of the process listening on TCP `port` (IPv4 or IPv6), found
/// through the socket tables (`/proc/net/tcp`, `/proc/net/tcp6`) and the processes' open
/// file descriptors; `None` when nothing listens or the owner cannot be seen (another
/// user's process). The name is `?` when it cannot be read.
pub fn port_owner(port: u16) -> Option<(u32, String)> {
    let inodes: HashSet<u64> = [procfs::net::tcp(), procfs::net::tcp6()]
        .into_iter()
        .filter_map(Result::ok)
        .flatten()
        .filter(|entry| {
            entry.state == TcpState::Listen
                && entry.local_address.port() == port
                && entry.inode != 0
        })
        .map(|entry| entry.inode)
        .collect();
    if inodes.is_empty() {
        return None;
    }
    for process in procfs::process::all_processes()
        .ok()?
        .filter_map(Result::ok)
    {
        let Ok(fds) = process.fd() else {
            continue;
        };
        let holds = fds
            .filter_map(Result::ok)
            .any(|fd| matches!(fd.target, FDTarget::Socket(inode) if inodes.contains(&inode)));
        if holds {
            let pid = u32::try_from(process.pid()).ok()?;
            return Some((pid, name(pid).unwrap_or_else(|| "?".to_owned())));
        }
    }
    None
}

/// `pid` as the kernel's signed pid; `None` for 0 and for values past `i32::MAX`.
fn raw_pid(pid: u32) -> Option<i32> {
    i32::try_from(pid).ok().filter(|raw| *raw > 0)
}

/// True when `kill(pid, 0)` finds the process (a zombie included).
fn exists(raw: i32) -> bool {
    matches!(kill(Pid::from_raw(raw), None), Ok(()) | Err(Errno::EPERM))
}

fn descendant_pids(root: u32) -> Vec<u32> {
    descendants(root).into_iter().map(|(pid, _)| pid).collect()
}

fn signal_all(group: u32, pids: &[u32], signal: Signal) {
    if let Some(raw) = raw_pid(group) {
        let _ = kill(Pid::from_raw(-raw), signal);
    }
    for &pid in pids {
        if is_alive(pid) {
            let _ = self::signal(pid, signal);
        }
    }
}

/// pid → (parent pid, command name) of every process `/proc` shows.
fn process_table() -> BTreeMap<u32, (u32, String)> {
    let Ok(processes) = procfs::process::all_processes() else {
        return BTreeMap::new();
    };
    processes
        .filter_map(Result::ok)
        .filter_map(|process| process.stat().ok())
        .filter_map(|stat| {
            let pid = u32::try_from(stat.pid).ok()?;
            let ppid = u32::try_from(stat.ppid).ok()?;
            Some((pid, (ppid, stat.comm)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::process::CommandExt;
    use std::path::Path;
    use std::process::{Child, Command};

    /// `/bin/sleep 30` started under another name (a symbolic link), so that the process's
    /// `comm` and `argv[0]` are that name.
    fn sleep_as(dir: &Path, name: &str) -> anyhow::Result<Child> {
        let link = dir.join(name);
        std::os::unix::fs::symlink("/bin/sleep", &link)?;
        Ok(Command::new(&link).arg("30").spawn()?)
    }

    fn stop(mut child: Child) -> anyhow::Result<()> {
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    #[test]
    fn reads_state_and_parent_after_the_command_name() -> anyhow::Result<()> {
        // The command name sits in parentheses in /proc/<pid>/stat and may itself hold
        // spaces and parentheses.
        let dir = tempfile::tempdir()?;
        let child = sleep_as(dir.path(), "odd) name)")?;
        let pid = child.id();
        let seen = (is_alive(pid), name(pid), descendants(std::process::id()));
        stop(child)?;
        let (alive, its_name, mine) = seen;
        assert!(alive);
        assert_eq!(its_name.as_deref(), Some("odd) name)"));
        assert!(
            mine.contains(&(pid, "odd) name)".to_owned())),
            "{pid} not among {mine:?}"
        );
        assert!(!is_alive(pid));
        Ok(())
    }

    #[test]
    fn a_zombie_is_not_alive_and_pid_zero_is_nothing() -> anyhow::Result<()> {
        let mut child = Command::new("true").spawn()?;
        let pid = child.id();
        // Not reaped yet: a zombie once it has exited.
        assert!(wait_gone(pid, Duration::from_secs(5)), "true never exited");
        assert!(exists(i32::try_from(pid)?), "a zombie still has its pid");
        child.wait()?;
        assert!(!is_alive(0));
        assert!(!is_nats_server(0));
        assert!(name(0).is_none());
        assert!(!group_alive(0));
        Ok(())
    }

    #[test]
    fn a_nats_server_is_known_by_its_argv0() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let fake = sleep_as(dir.path(), "nats-server")?;
        let other = sleep_as(dir.path(), "not-nats")?;
        let (fake_pid, other_pid) = (fake.id(), other.id());
        let seen = (is_nats_server(fake_pid), is_nats_server(other_pid));
        stop(fake)?;
        stop(other)?;
        assert_eq!(seen, (true, false));
        assert!(!is_nats_server(std::process::id()));
        assert!(!is_nats_server(fake_pid), "a stopped nats-server");
        Ok(())
    }

    #[test]
    fn signals_a_process_and_waits_until_it_is_gone() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut child = sleep_as(dir.path(), "sleeper")?;
        let pid = child.id();
        assert!(!wait_gone(pid, Duration::from_millis(100)));
        signal(pid, Signal::SIGTERM)?;
        let gone = wait_gone(pid, Duration::from_secs(5));
        child.wait()?;
        assert!(gone);
        // Gone already: not an error.
        signal(pid, Signal::SIGTERM)?;
        assert!(signal(0, Signal::SIGTERM).is_err());
        Ok(())
    }

    #[test]
    fn terminates_a_shell_and_its_background_child() -> anyhow::Result<()> {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 60 & wait"])
            .process_group(0)
            .spawn()?;
        let root = child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        let grandchild = loop {
            if let Some(&(pid, _)) = descendants(root).first() {
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

    #[test]
    fn finds_the_owner_of_our_own_listener() -> anyhow::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let owner = port_owner(port);
        drop(listener);
        let (pid, name) = owner.expect("our listener has an owner");
        assert_eq!(pid, std::process::id());
        assert!(!name.is_empty() && name != "?", "{name}");
        assert_eq!(port_owner(port), None, "nothing listens any more");
        Ok(())
    }
}
