//! Unit tests of the candidate: building it from rounds, pooling runs, the Markdown, the files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::environment::Environment;
use crate::figures::{Ratio, RoundFigures, Side};
use crate::load::PhaseResult;
use crate::outcome::Outcome;
use crate::stats::Recorder;

/// A round's result: `ok` successes and `errors` timeouts of 1 ms each over 1 s.
fn result(ok: u64, errors: u64, cpu_s: f64) -> PhaseResult {
    let mut recorder = Recorder::new();
    for _ in 0..ok {
        recorder.record(&Outcome::Ok, Duration::from_millis(1));
    }
    for _ in 0..errors {
        recorder.record(&Outcome::Timeout, Duration::from_millis(1));
    }
    PhaseResult {
        recorder,
        window: Duration::from_secs(1),
        cpu_s: Some(cpu_s),
    }
}

fn interleaved(blocks: usize) -> Measured {
    interleaved_with(blocks, false)
}

/// `blocks` blocks of four rounds, or six with the raw echo (2000 ok in 1 s, 4 ms of CPU).
fn interleaved_with(blocks: usize, raw_echo: bool) -> Measured {
    let mut measured = Measured::default();
    for block in 0..blocks {
        for &side in crate::figures::block_pattern(raw_echo) {
            let (ok, cpu) = match side {
                Side::RawEcho => (2000, 0.004),
                Side::Echo => (1000, 0.01),
                Side::Router => (800, 0.012),
            };
            let result = result(ok, 0, cpu);
            let stats = result.stats();
            measured.rounds.push(RoundFigures {
                block,
                side,
                rps: stats.rps,
                p50_ms: 1.0,
                p99_ms: 1.0,
                requests: stats.requests_total,
                errors: 0,
                cpu_s: result.cpu_s,
            });
            measured
                .totals
                .entry(side.as_str().to_owned())
                .or_default()
                .add(&result);
        }
    }
    measured
}

#[test]
fn interleaved_rounds_give_every_metric_and_the_ratios() {
    let c = Candidate::new(Environment::default(), &interleaved(3));
    assert_eq!(c.rps, Some(800.0));
    assert_eq!(c.echo_rps, Some(1000.0));
    assert_eq!(c.rps_ratio_to_echo, Some(0.8));
    assert_eq!(c.blocks.len(), 3);
    assert_eq!(c.rounds.len(), 12);
    // Router 12 ms CPU / 800 requests = 15 µs; echo 10 ms / 1000 = 10 µs.
    assert_eq!(c.cpu_us_per_request, Some(15.0));
    assert_eq!(c.echo_cpu_us_per_request, Some(10.0));
    assert_eq!(c.cpu_per_request_ratio_to_echo, Some(1.5));
    assert_eq!(c.errors_total, Some(0));
    let v = serde_json::to_value(&c).expect("json");
    for key in [
        "rps",
        "latency_p95_ms",
        "latency_p99_ms",
        "errors_total",
        "backpressure_active_total",
        "mem_mb",
        "echo_rps",
        "rps_ratio_to_echo",
        "latency_p99_ratio_to_echo",
        "cpu_per_request_ratio_to_echo",
        "ratios",
        "rounds",
        "blocks",
        "environment",
        "status",
    ] {
        assert!(v.get(key).is_some(), "{key} is in the JSON");
    }
    // Not measured: null, never 0.
    assert!(v["mem_mb"].is_null());
    assert!(v["backpressure_active_total"].is_null());
    let back: Candidate = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, c);
    let md = c.to_markdown();
    assert!(md.contains("| rps_ratio_to_echo | 0.800 |"), "{md}");
    assert!(md.contains("| 2 | 1 | router | 800 |"), "{md}");
}

#[test]
fn six_round_blocks_give_both_ratio_sets_and_three_columns() {
    let c = Candidate::new(Environment::default(), &interleaved_with(3, true));
    assert_eq!(c.blocks.len(), 3);
    assert_eq!(c.rounds.len(), 18);
    // Router ÷ echo is as without the raw echo.
    assert_eq!(c.rps_ratio_to_echo, Some(0.8));
    assert_eq!(c.cpu_per_request_ratio_to_echo, Some(1.5));
    // Router 15 µs per request against the raw echo's 2 µs; 800 against 2000 rps.
    assert_eq!(c.raw_echo_rps, Some(2000.0));
    assert_eq!(c.raw_echo_cpu_us_per_request, Some(2.0));
    assert_eq!(c.rps_ratio_to_raw_echo, Some(0.4));
    assert_eq!(c.cpu_per_request_ratio_to_raw_echo, Some(7.5));
    assert_eq!(c.latency_p99_ratio_to_raw_echo, Some(1.0));
    assert_eq!(c.raw_echo_errors_total, Some(0));
    assert!(c.ratios.contains_key("rps_ratio_to_raw_echo"));
    let v = serde_json::to_value(&c).expect("json");
    assert_eq!(v["rounds"][0]["side"], "raw_echo");
    assert_eq!(v["phases"]["raw_echo"]["requests_ok"], 12000);
    let back: Candidate = serde_json::from_value(v).expect("round trip");
    assert_eq!(back, c);
    let md = c.to_markdown();
    assert!(md.contains("| metric | router | echo | raw echo |"), "{md}");
    assert!(
        md.contains("| CPU per request (µs) | 15.00 | 10.00 | 2.00 |"),
        "{md}"
    );
    assert!(md.contains("| rps_ratio_to_raw_echo | 0.400 |"), "{md}");
    assert!(
        md.contains("*router ÷ raw echo: against the physical limit*"),
        "{md}"
    );
    assert!(md.contains("*router ÷ echo: the decision alone*"), "{md}");
    let physical = md.find("rps_ratio_to_raw_echo").expect("raw row");
    let decision = md.find("| rps_ratio_to_echo").expect("echo row");
    assert!(physical < decision, "the physical limit comes first: {md}");
    assert!(md.contains("| 1 | 1 | raw_echo | 2000 |"), "{md}");

    // Pooled with a four-round run, the raw ratios keep the six-round blocks only.
    let mut raw_mem = c.clone();
    raw_mem.raw_echo_mem_mb = Some(3.0);
    let pooled = raw_mem.absorb(Candidate::new(Environment::default(), &interleaved(2)));
    assert_eq!(pooled.blocks.len(), 5);
    assert_eq!(pooled.ratios["rps_ratio_to_raw_echo"].blocks, 3);
    assert_eq!(pooled.ratios["rps_ratio_to_echo"].blocks, 5);
    assert_eq!(pooled.raw_echo_mem_mb, None, "unknown in the second run");
}

#[test]
fn a_candidate_without_the_raw_echo_reads_and_prints_as_before() {
    let c = Candidate::new(Environment::default(), &interleaved(2));
    assert_eq!(c.rps_ratio_to_raw_echo, None);
    assert_eq!(c.raw_echo_cpu_us_per_request, None);
    assert!(!c.ratios.keys().any(|k| k.ends_with("_to_raw_echo")));
    let md = c.to_markdown();
    assert!(md.contains("| metric | router | echo |\n"), "{md}");
    assert!(!md.contains("raw echo"), "{md}");
    // A candidate written before the raw echo existed (no raw_echo keys at all) still reads.
    let mut v = serde_json::to_value(&c).expect("json");
    let object = v.as_object_mut().expect("object");
    object.retain(|key, _| !key.contains("raw_echo"));
    if let Some(env) = object
        .get_mut("environment")
        .and_then(|e| e.as_object_mut())
    {
        env.remove("raw_echo_subject");
    }
    let back: Candidate = serde_json::from_value(v).expect("an old candidate reads");
    assert_eq!(back, c);
}

#[test]
fn absorbing_a_second_run_pools_its_blocks() {
    let mut first = Candidate::new(Environment::default(), &interleaved(2));
    first.mem_mb = Some(20.0);
    first.backpressure_active_total = Some(0.0);
    let mut second = Candidate::new(Environment::default(), &interleaved(3));
    second.mem_mb = Some(25.0);
    second.backpressure_active_total = Some(1.0);
    second.errors_total = Some(2);
    let pooled = first.absorb(second);
    assert_eq!(pooled.blocks.len(), 5);
    assert_eq!(pooled.rounds.len(), 20);
    assert_eq!(pooled.rounds[19].block, 4, "blocks are numbered on");
    assert_eq!(pooled.ratios["rps_ratio_to_echo"].blocks, 5);
    assert_eq!(pooled.rps_ratio_to_echo, Some(0.8));
    assert_eq!(pooled.errors_total, Some(2));
    assert_eq!(pooled.backpressure_active_total, Some(1.0));
    assert_eq!(pooled.mem_mb, Some(25.0));
    assert_eq!(pooled.status, Status::Ok);
    let mut failed = Candidate::new(Environment::default(), &interleaved(1));
    failed.fail("no responders");
    let pooled = pooled.absorb(failed);
    assert_eq!(pooled.status, Status::Failed);
    assert_eq!(pooled.reason.as_deref(), Some("no responders"));
}

#[test]
fn a_second_shape_has_its_own_ratios_pools_and_prints_without_changing_the_gated_ones() {
    let mut c = Candidate::new(Environment::default(), &interleaved_with(4, true));
    let mut shape = LoadShape::new(1000, interleaved_with(2, true).rounds);
    shape.router_mem_mb = Some(30.0);
    shape.backpressure_active = Some(0.0);
    assert_eq!(shape.blocks.len(), 2);
    assert_eq!(shape.median(Ratio::Throughput), Some(0.8));
    assert_eq!(shape.median(Ratio::ThroughputToRawEcho), Some(0.4));
    assert_eq!((shape.router_requests, shape.router_errors), (3200, 0));
    c.second_shape = Some(shape.clone());
    let mut later = Candidate::new(Environment::default(), &interleaved_with(4, true));
    let mut later_shape = shape;
    later_shape.router_mem_mb = Some(35.0);
    later_shape.backpressure_active = Some(2.0);
    later.second_shape = Some(later_shape);
    let pooled = c.absorb(later);
    let pooled_shape = pooled.second_shape.as_ref().expect("the shape is pooled");
    assert_eq!(pooled_shape.blocks.len(), 4);
    assert_eq!(pooled_shape.rounds[23].block, 3, "blocks are numbered on");
    assert_eq!(pooled_shape.router_mem_mb, Some(35.0));
    assert_eq!(pooled_shape.backpressure_active, Some(2.0));
    let without_shapes = Candidate::new(Environment::default(), &interleaved_with(4, true)).absorb(
        Candidate::new(Environment::default(), &interleaved_with(4, true)),
    );
    assert_eq!(
        pooled.ratios, without_shapes.ratios,
        "the gated ratios are untouched"
    );
    assert_eq!(
        pooled.blocks.len(),
        8,
        "the shape's blocks stay out of the gated ones"
    );
    let md = pooled.to_markdown();
    assert!(
        md.contains("Second load shape, 1000 concurrent callers"),
        "{md}"
    );
    assert!(md.contains("Too few blocks for a ~90 % interval"), "{md}");
    assert!(
        md.contains("| rps_ratio_to_echo | 0.800 | 0.800 – 0.800 |"),
        "{md}"
    );
    assert!(!md.contains("stopped early"), "{md}");
    let json = serde_json::to_string(&pooled).expect("serializes");
    let back: Candidate = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, pooled);

    // A run without the shape pools into one with it (and the other way round), and a
    // shape that stopped early keeps its rounds and says why.
    let mut stopped = LoadShape::new(1000, interleaved_with(1, true).rounds);
    stopped.stopped = Some("no responders".to_owned());
    let mut with_stopped = Candidate::new(Environment::default(), &interleaved_with(2, true));
    with_stopped.second_shape = Some(stopped);
    let plain = Candidate::new(Environment::default(), &interleaved_with(2, true));
    let pooled = plain.absorb(with_stopped);
    let shape = pooled
        .second_shape
        .as_ref()
        .expect("kept from the later run");
    assert_eq!((shape.blocks.len(), shape.rounds.len()), (1, 6));
    let md = pooled.to_markdown();
    assert!(
        md.contains("The shape stopped early: no responders"),
        "{md}"
    );
    let many = LoadShape::new(1000, interleaved_with(6, true).rounds).to_markdown();
    assert!(
        many.contains("| rps_ratio_to_echo | 0.800 | 0.800 – 0.800 | 0.0 % |"),
        "{many}"
    );
}

#[test]
fn a_single_side_has_no_ratio() {
    let mut measured = Measured::default();
    measured
        .totals
        .entry("echo".to_owned())
        .or_default()
        .add(&result(1000, 0, 0.01));
    let c = Candidate::new(Environment::default(), &measured);
    assert_eq!(c.rps, None);
    assert_eq!(c.errors_total, None);
    assert_eq!(c.rps_ratio_to_echo, None);
    assert!(c.ratios.is_empty());
    assert_eq!(c.echo_errors_total, Some(0));
}

#[test]
fn failed_run_says_why_in_json_and_markdown() {
    let mut c = Candidate::new(Environment::default(), &Measured::default());
    c.fail("no responders on beamline.router.v1.decide");
    assert_eq!(c.exit_status, 1);
    let v = serde_json::to_value(&c).expect("json");
    assert_eq!(v["status"], "failed");
    let md = c.to_markdown();
    assert!(md.contains("**failed** — no responders"), "{md}");
}

#[test]
fn markdown_lists_errors_by_kind() {
    let mut measured = Measured::default();
    measured
        .totals
        .entry("router".to_owned())
        .or_default()
        .add(&result(100, 3, 0.01));
    let c = Candidate::new(Environment::default(), &measured);
    let md = c.to_markdown();
    assert!(md.contains("| rps | 100.0 | — |"), "{md}");
    assert!(md.contains("Errors by kind (router)"), "{md}");
    assert!(md.contains("- `timeout`: 3"), "{md}");
    assert!(md.contains("| errors | 3 | — |"), "{md}");
}

#[test]
fn writes_json_and_md_side_by_side_and_reads_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sub/perf_1.json");
    let c = Candidate::new(Environment::default(), &interleaved(1));
    let md = c.write(&path).expect("write");
    assert_eq!(md, dir.path().join("sub/perf_1.md"));
    let back = Candidate::read(&path).expect("read back");
    assert_eq!(back, c);
    assert!(std::fs::read_to_string(&md)
        .expect("md")
        .contains("router-bench result"));
    std::fs::write(&path, "{}").expect("write");
    let err = Candidate::read(&path).expect_err("not a candidate");
    assert!(format!("{err:#}").contains("cargo xtask bench"), "{err:#}");
}

#[test]
fn markdown_path_rules() {
    assert_eq!(
        markdown_path(Path::new("a/b.json")),
        PathBuf::from("a/b.md")
    );
    assert_eq!(
        markdown_path(Path::new("a/b.out")),
        PathBuf::from("a/b.out.md")
    );
}
