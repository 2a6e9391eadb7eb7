//! `cargo xtask heavy` leaves no process and no port behind: when a suite fails, and when
//! it is interrupted with Ctrl-C (SIGINT) in the middle of a suite.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::port_is_free;
use nats_harness::process::{self, descendants, is_alive, Signal};

/// The server line heavy prints: `heavy: nats-server pid N on tls://127.0.0.1:P (monitor port M), …`.
#[derive(Debug, Clone, Copy)]
struct Server {
    pid: u32,
    port: u16,
    monitor_port: u16,
}

fn parse_server(output: &str) -> Option<Server> {
    let line = output
        .lines()
        .find(|l| l.starts_with("heavy: nats-server pid ") && l.contains(" on "))?;
    let rest = line.strip_prefix("heavy: nats-server pid ")?;
    let (pid, rest) = rest.split_once(" on ")?;
    let (url, rest) = rest.split_once(" (monitor port ")?;
    let (monitor, _) = rest.split_once(')')?;
    Some(Server {
        pid: pid.parse().ok()?,
        port: url.rsplit_once(':')?.1.parse().ok()?,
        monitor_port: monitor.parse().ok()?,
    })
}

fn assert_server_gone(server: Server, output: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_alive(server.pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !is_alive(server.pid),
        "nats-server {} still runs:\n{output}",
        server.pid
    );
    assert!(
        port_is_free(server.port),
        "port {} busy:\n{output}",
        server.port
    );
    assert!(
        port_is_free(server.monitor_port),
        "monitor port {} busy:\n{output}",
        server.monitor_port
    );
}

#[test]
fn a_failing_suite_still_stops_the_server_and_frees_its_ports() -> anyhow::Result<()> {
    let artifacts = tempfile::tempdir()?;
    let run = common::xtask(
        artifacts.path(),
        &[
            "heavy",
            "--suite",
            "does-not-exist",
            "--allow-unknown-suite",
        ],
    )?;
    let output = run.all();
    assert_eq!(run.code, 1, "{output}");
    let server = parse_server(&run.stdout).expect("heavy names its nats-server");
    assert_server_gone(server, &output);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("does-not-exist") && l.contains("FAILED")),
        "{output}"
    );
    assert!(
        run.stdout.contains("heavy: 0 of 1 suites passed"),
        "{output}"
    );
    let logs: Vec<_> = std::fs::read_dir(artifacts.path())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("heavy_") && n.ends_with(".log"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(artifacts.path().join(&logs[0]))?;
    assert!(log.contains("does-not-exist"), "{log}");
    assert!(log.contains("stopped; ports"), "{log}");
    Ok(())
}

#[test]
fn an_unknown_suite_is_refused_before_anything_starts() -> anyhow::Result<()> {
    let artifacts = tempfile::tempdir()?;
    let run = common::xtask(artifacts.path(), &["heavy", "--suite", "does-not-exist"])?;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("no suite named \"does-not-exist\""),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("decide") && run.stderr.contains("lifecycle"));
    assert!(parse_server(&run.stdout).is_none(), "{}", run.all());
    Ok(())
}

#[test]
fn list_names_every_test_file_of_router_bin() -> anyhow::Result<()> {
    let artifacts = tempfile::tempdir()?;
    let run = common::xtask(artifacts.path(), &["heavy", "--list"])?;
    assert_eq!(run.code, 0, "{}", run.all());
    let listed: Vec<&str> = run.stdout.lines().collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/router-bin/tests");
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".rs") {
            assert!(listed.contains(&stem), "{stem} missing from {listed:?}");
        }
    }
    Ok(())
}

#[test]
fn ctrl_c_in_a_suite_stops_the_tests_and_the_server() -> anyhow::Result<()> {
    let artifacts = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["heavy", "--suite", "decide"])
        .env("BEAMLINE_ARTIFACTS", artifacts.path())
        .env_remove("NATS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let xtask_pid = child.id();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    // Wait until the suite's test binary runs (it starts its routers in process): the
    // middle of a test.
    let mut seen = String::new();
    let mut server = None;
    // Generous: on a cold CI machine the suite is built first, under other tests' load.
    let deadline = Instant::now() + Duration::from_secs(900);
    let in_flight = loop {
        while let Ok(line) = lines.try_recv() {
            seen.push_str(&line);
            seen.push('\n');
            server = server.or_else(|| parse_server(&seen));
        }
        let tree = descendants(xtask_pid);
        if server.is_some() && tree.iter().any(|(_, name)| name.starts_with("decide-")) {
            break tree;
        }
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            let _ = child.kill();
            panic!("the suite's test binary never ran:\n{seen}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let server = server.expect("server line seen");
    process::signal(xtask_pid, Signal::SIGINT)?;

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("heavy did not exit within 60 s of SIGINT:\n{seen}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = reader.join();
    let stderr = err_reader.join().unwrap_or_default();
    while let Ok(line) = lines.try_recv() {
        seen.push_str(&line);
        seen.push('\n');
    }
    let output = format!("{seen}\n{stderr}");
    assert_eq!(status.code(), Some(130), "{output}");
    assert!(stderr.contains("SIGINT received"), "{output}");
    assert!(
        seen.lines()
            .any(|l| l.starts_with("decide") && l.contains("interrupted")),
        "{output}"
    );
    assert_server_gone(server, &output);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left: Vec<&(u32, String)> =
        in_flight.iter().filter(|(pid, _)| is_alive(*pid)).collect();
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left.retain(|(pid, _)| is_alive(*pid));
    }
    assert!(
        left.is_empty(),
        "still running after heavy exited: {left:?}\n{output}"
    );
    Ok(())
}

#[test]
fn parses_the_server_line() {
    let server = parse_server(
        "heavy: log x\nheavy: nats-server pid 42 on tls://127.0.0.1:4310 (monitor port 8310), certificates in /tmp/x\n",
    )
    .expect("parsed");
    assert_eq!(
        (server.pid, server.port, server.monitor_port),
        (42, 4310, 8310)
    );
}
