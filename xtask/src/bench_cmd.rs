//! `cargo xtask bench`: the main job end to end. Release build, its own nats-server (mutual
//! TLS by default) and router on free ports, `router-bench` measuring the raw NATS echo
//! ceiling and the router in the same run, then `_artifacts/perf_<timestamp>.json` and `.md`
//! (medians when `--runs N`). Everything started is stopped afterwards, on failure too.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use nats_harness::{NatsServer, RouterOptions, RouterProcess, ServerOptions};
use serde_json::{json, Map, Value};
use xshell::Shell;

use crate::paths;

/// Arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Measured runs; the candidate holds the median of each figure.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Plaintext NATS instead of mutual TLS.
    #[arg(long)]
    pub no_tls: bool,
    /// Also measure with plaintext NATS and report the TLS overhead.
    #[arg(long)]
    pub tls_overhead: bool,
    /// Length of each measured phase (e.g. 10s).
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Warm-up before each measured phase.
    #[arg(long, default_value = "2s")]
    pub warmup: String,
    /// Concurrent requesters.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// NATS connections of the load generator.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Candidate JSON path (default `_artifacts/perf_<timestamp>.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Extra flag passed to the router (repeatable), e.g. `--router-arg=--concurrency=32`.
    #[arg(long = "router-arg", allow_hyphen_values = true)]
    pub router_args: Vec<String>,
}

impl Args {
    /// The defaults of `cargo xtask bench` with no flag.
    pub fn defaults() -> Args {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            args: Args,
        }
        <Defaults as clap::Parser>::parse_from(["bench"]).args
    }
}

/// Runs the command: exit 0 when the candidate's status is ok, 1 otherwise.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let candidate = bench(&args)?;
    let text = std::fs::read_to_string(&candidate)?;
    let value: Value = serde_json::from_str(&text)?;
    Ok(if value["status"] == "ok" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the whole benchmark and returns the path of the candidate JSON.
pub fn bench(args: &Args) -> anyhow::Result<PathBuf> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let root = paths::project_root();
    let artifacts = paths::artifacts_dir();
    let stamp = paths::file_stamp();
    let run_dir = artifacts.join(format!("bench_{stamp}"));
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| artifacts.join(format!("perf_{stamp}.json")));

    println!("bench: building release binaries (router, router-bench)...");
    let sh = Shell::new()?;
    sh.change_dir(&root);
    crate::ci::cargo_command(&sh)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "router-bin",
            "-p",
            "bench",
        ])
        .run()
        .context("release build failed")?;
    let bin = paths::target_dir().join("release");

    let tls = !args.no_tls;
    let mut plans: Vec<(bool, usize)> = (1..=args.runs).map(|i| (tls, i)).collect();
    if args.tls_overhead {
        plans.extend((1..=args.runs).map(|i| (!tls, i)));
    }
    let progress = ProgressBar::new(plans.len() as u64).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let mut main_runs = Vec::new();
    let mut other_runs = Vec::new();
    for (run_tls, index) in plans {
        let label = format!("run{index}_{}", if run_tls { "tls" } else { "plain" });
        progress.set_message(format!("{label}: nats-server + router + load"));
        let candidate = one_run(&bin, &root, &run_dir, &label, run_tls, args)
            .with_context(|| format!("bench {label} failed; logs in {}", run_dir.display()))?;
        if run_tls == tls {
            main_runs.push(candidate);
        } else {
            other_runs.push(candidate);
        }
        progress.inc(1);
    }
    progress.finish_and_clear();

    let mut summary = median_candidate(&main_runs)?;
    if args.tls_overhead {
        let other = median_candidate(&other_runs)?;
        let (with_tls, plain) = if tls {
            (&summary, &other)
        } else {
            (&other, &summary)
        };
        let overhead = tls_overhead(with_tls, plain);
        summary["tls_overhead"] = overhead;
    }
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(&out, text + "\n").with_context(|| format!("cannot write {}", out.display()))?;
    let markdown = markdown(&summary, &main_runs);
    let md_path = out.with_extension("md");
    std::fs::write(&md_path, &markdown)
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    println!("{markdown}");
    println!(
        "bench: wrote {} and {}",
        paths::display(&out),
        paths::display(&md_path)
    );
    Ok(out)
}

/// One measurement: fresh nats-server and router, router-bench with the echo phase.
fn one_run(
    bin: &Path,
    root: &Path,
    run_dir: &Path,
    label: &str,
    tls: bool,
    args: &Args,
) -> anyhow::Result<Value> {
    let server = NatsServer::start(ServerOptions {
        tls,
        ..ServerOptions::default()
    })
    .context("cannot start nats-server")?;
    let mut router = RouterProcess::start(
        &server,
        &RouterOptions {
            binary: bin.join("router"),
            policy_dir: root.join("config/policies"),
            log: run_dir.join(format!("router_{label}.log")),
            extra_args: args.router_args.clone(),
        },
    )
    .context("cannot start the router")?;
    let candidate_path = run_dir.join(format!("{label}.json"));
    let mut command = Command::new(bin.join("router-bench"));
    command
        .arg("--nats-url")
        .arg(server.client_url())
        .arg("--echo")
        .arg("--quiet")
        .args(["--duration", &args.duration, "--warmup", &args.warmup])
        .args(["--concurrency", &args.concurrency.to_string()])
        .args(["--connections", &args.connections.to_string()])
        .arg("--metrics-url")
        .arg(format!("http://{}/metrics", router.http))
        .arg("--out")
        .arg(&candidate_path);
    if let Some(files) = server.tls() {
        command
            .arg("--tls-ca")
            .arg(&files.ca_cert)
            .arg("--tls-cert")
            .arg(&files.client_cert)
            .arg("--tls-key")
            .arg(&files.client_key);
    }
    let output = command.output().context("cannot run router-bench")?;
    std::fs::write(
        run_dir.join(format!("bench_{label}.log")),
        [&output.stdout[..], &output.stderr[..]].concat(),
    )?;
    router.stop(Duration::from_secs(10));
    let text = std::fs::read_to_string(&candidate_path).with_context(|| {
        format!(
            "router-bench wrote no candidate ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    serde_json::from_str(&text).context("router-bench candidate is not JSON")
}

/// The first run's document with every top-level number replaced by the median over runs,
/// `status` failed when any run failed, and a `runs` array of per-run figures.
fn median_candidate(runs: &[Value]) -> anyhow::Result<Value> {
    let Some(first) = runs.first() else {
        bail!("no run to summarise");
    };
    let mut summary = first.clone();
    let Some(fields) = summary.as_object_mut() else {
        bail!("candidate is not a JSON object");
    };
    let keys: Vec<String> = fields.keys().cloned().collect();
    for key in keys {
        let values: Vec<f64> = runs.iter().filter_map(|r| r[&key].as_f64()).collect();
        if values.len() == runs.len() && fields[&key].is_number() {
            fields.insert(key, json!(median(values)));
        }
    }
    if let Some(failed) = runs.iter().find(|r| r["status"] != "ok") {
        fields.insert("status".into(), json!("failed"));
        fields.insert("reason".into(), failed["reason"].clone());
        fields.insert("exit_status".into(), json!(1));
    }
    // Errors are summed, not medianed: one failed request in any run must show.
    let errors: f64 = runs.iter().filter_map(|r| r["errors_total"].as_f64()).sum();
    fields.insert("errors_total".into(), json!(errors));
    let per_run: Vec<Value> = runs
        .iter()
        .map(|r| {
            let mut row = Map::new();
            for key in RUN_COLUMNS {
                row.insert(key.to_owned(), r[key].clone());
            }
            Value::Object(row)
        })
        .collect();
    fields.insert("runs".into(), Value::Array(per_run));
    fields.insert(
        "aggregate".into(),
        json!(format!("median of {} run(s)", runs.len())),
    );
    Ok(summary)
}

const RUN_COLUMNS: [&str; 9] = [
    "rps",
    "echo_rps",
    "rps_ratio_to_echo",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "errors_total",
    "backpressure_active_total",
    "mem_mb",
];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn tls_overhead(with_tls: &Value, plain: &Value) -> Value {
    let ratio = |key: &str| match (with_tls[key].as_f64(), plain[key].as_f64()) {
        (Some(t), Some(p)) if p > 0.0 => json!(t / p),
        _ => Value::Null,
    };
    json!({
        "router_rps_tls": with_tls["rps"], "router_rps_plain": plain["rps"],
        "router_rps_tls_over_plain": ratio("rps"),
        "echo_rps_tls": with_tls["echo_rps"], "echo_rps_plain": plain["echo_rps"],
        "echo_rps_tls_over_plain": ratio("echo_rps"),
        "router_p99_ms_tls": with_tls["latency_p99_ms"], "router_p99_ms_plain": plain["latency_p99_ms"],
    })
}

fn markdown(summary: &Value, runs: &[Value]) -> String {
    let cell = |v: &Value| match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e12 => format!("{x:.0}"),
        Some(x) => format!("{x:.3}"),
        None => v.to_string(),
    };
    let mut out = String::from("# Beamline Router benchmark\n\n");
    let env = &summary["environment"];
    out.push_str(&format!(
        "Status **{}** · {} · TLS {} · concurrency {} · {} s per phase · nats-server {} · {} CPU(s) · commit {}\n\n",
        summary["status"].as_str().unwrap_or("?"),
        summary["aggregate"].as_str().unwrap_or(""),
        env["tls"],
        env["concurrency"],
        env["duration_s"],
        env["nats_server_version"].as_str().unwrap_or("?"),
        env["cpu_count"],
        env["git_commit"].as_str().unwrap_or("?").get(..12).unwrap_or("?"),
    ));
    out.push_str("| run |");
    for key in RUN_COLUMNS {
        out.push_str(&format!(" {key} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(RUN_COLUMNS.len()));
    out.push('\n');
    for (i, run) in runs.iter().enumerate() {
        out.push_str(&format!("| {} |", i + 1));
        for key in RUN_COLUMNS {
            out.push_str(&format!(" {} |", cell(&run[key])));
        }
        out.push('\n');
    }
    out.push_str("| **median** |");
    for key in RUN_COLUMNS {
        out.push_str(&format!(" **{}** |", cell(&summary[key])));
    }
    out.push('\n');
    if let Some(overhead) = summary.get("tls_overhead") {
        out.push_str(&format!(
            "\nTLS overhead: router rps TLS/plain = {}, echo rps TLS/plain = {}\n",
            cell(&overhead["router_rps_tls_over_plain"]),
            cell(&overhead["echo_rps_tls_over_plain"]),
        ));
    }
    if let Some(reason) = summary["reason"].as_str() {
        out.push_str(&format!("\nFailure: {reason}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_summed_errors() {
        let runs = vec![
            json!({"status": "ok", "rps": 10.0, "errors_total": 0, "latency_p99_ms": 3.0}),
            json!({"status": "ok", "rps": 30.0, "errors_total": 2, "latency_p99_ms": 1.0}),
            json!({"status": "ok", "rps": 20.0, "errors_total": 0, "latency_p99_ms": 2.0}),
        ];
        let summary = median_candidate(&runs).expect("summary");
        assert_eq!(summary["rps"], 20.0);
        assert_eq!(summary["latency_p99_ms"], 2.0);
        assert_eq!(summary["errors_total"], 2.0);
        assert_eq!(summary["status"], "ok");
        assert_eq!(summary["runs"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn one_failed_run_fails_the_summary() {
        let runs = vec![
            json!({"status": "ok", "rps": 10.0}),
            json!({"status": "failed", "reason": "no responders", "rps": 0.0}),
        ];
        let summary = median_candidate(&runs).expect("summary");
        assert_eq!(summary["status"], "failed");
        assert_eq!(summary["reason"], "no responders");
    }

    #[test]
    fn even_median() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
