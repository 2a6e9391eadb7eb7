//! Ctrl-C (SIGINT), SIGTERM and SIGHUP while `heavy` runs.
//!
//! The first signal stops the running `cargo test` with its whole process tree and marks the
//! run interrupted; the main thread then stops nats-server as on any other path and exits
//! with [`EXIT_INTERRUPTED`]. Should the main thread not get there within [`WATCHDOG`], or a
//! second signal arrive, the handler kills nats-server itself and exits.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use nats_harness::process::{self, Signal};
use tokio::signal::unix::{signal, SignalKind};

/// Exit status of an interrupted run (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 130;
/// How long the running `cargo test` gets between SIGTERM and SIGKILL.
pub const CHILD_GRACE: Duration = Duration::from_secs(5);
/// How long the main thread gets to stop nats-server after a signal.
const WATCHDOG: Duration = Duration::from_secs(30);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicU32 = AtomicU32::new(0);
/// Pid (= process group) of the running `cargo` child, 0 when none.
static CHILD: AtomicU32 = AtomicU32::new(0);
/// Pid of the nats-server `heavy` started, 0 when none.
static SERVER: AtomicU32 = AtomicU32::new(0);

/// True once a signal has been received.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Records the running `cargo` child (its own process group); stops it at once when a
/// signal came before it was recorded.
pub fn set_child(pid: u32) {
    CHILD.store(pid, Ordering::SeqCst);
    if interrupted() {
        process::terminate_tree(pid, CHILD_GRACE);
    }
}

/// Forgets the `cargo` child (it has exited).
pub fn clear_child() {
    CHILD.store(0, Ordering::SeqCst);
}

/// Records the nats-server pid for the watchdog (`None` once it is stopped).
pub fn set_server(pid: Option<u32>) {
    SERVER.store(pid.unwrap_or(0), Ordering::SeqCst);
}

/// Installs the handlers on a thread of their own. Call once, before starting anything.
pub fn install() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("could not start the signal-handling runtime")?;
    let (mut int, mut term, mut hup) = {
        let _entered = runtime.enter();
        (
            signal(SignalKind::interrupt()).context("could not handle SIGINT")?,
            signal(SignalKind::terminate()).context("could not handle SIGTERM")?,
            signal(SignalKind::hangup()).context("could not handle SIGHUP")?,
        )
    };
    std::thread::Builder::new()
        .name("heavy-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    let name = tokio::select! {
                        _ = int.recv() => "SIGINT",
                        _ = term.recv() => "SIGTERM",
                        _ = hup.recv() => "SIGHUP",
                    };
                    on_signal(name);
                }
            });
        })
        .context("could not start the signal-handling thread")?;
    Ok(())
}

fn on_signal(name: &str) {
    let count = SIGNALS.fetch_add(1, Ordering::SeqCst) + 1;
    INTERRUPTED.store(true, Ordering::SeqCst);
    if count > 1 {
        eprintln!("heavy: {name} again: killing everything now");
        hard_stop();
    }
    eprintln!("heavy: {name} received: stopping the tests and nats-server");
    let child = CHILD.load(Ordering::SeqCst);
    std::thread::spawn(move || process::terminate_tree(child, CHILD_GRACE));
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!(
            "heavy: still not stopped {} s after the signal: killing everything",
            WATCHDOG.as_secs()
        );
        hard_stop();
    });
}

/// Kills the `cargo` tree and nats-server without waiting for the main thread, then exits.
fn hard_stop() -> ! {
    let child = CHILD.load(Ordering::SeqCst);
    process::terminate_tree(child, Duration::ZERO);
    let server = SERVER.load(Ordering::SeqCst);
    if server > 0 {
        let _ = process::signal(server, Signal::SIGTERM);
        std::thread::sleep(Duration::from_secs(2));
        if process::is_alive(server) {
            let _ = process::signal(server, Signal::SIGKILL);
        }
    }
    std::process::exit(i32::from(EXIT_INTERRUPTED));
}
