//! Hostile input over the wire: more than 10,000 generated bodies (fixed seed) sent to the
//! real router through a real TLS nats-server, 32 in flight. Every body must get exactly one
//! reply with the code its category calls for, and the router must stay ready. (Its resident
//! memory is judged by the `hostile_memory` suite.)
//!
//! Categories: random bytes, invalid UTF-8, truncated JSON, every field with every wrong JSON
//! type, numbers out of range, duplicate keys, NUL bytes, nesting 100,000 deep, strings of
//! about 1 MiB (on both sides of the limit), huge arrays, and valid requests that must get the
//! other error codes (unknown tenant or policy, past deadline) or a decision.
//!
//! The figures (bodies, codes seen, RSS before and after) are printed on stderr:
//! `cargo test -p router-bin --test hostile_input -- --nocapture`.

mod support;

use std::collections::BTreeMap;

use support::hostile::bench::{mib, Bench, IN_FLIGHT};
use support::hostile::generator::{hostile_cases, SEED};

/// Every body answered once with the code its category calls for, twice over (the second
/// pass meets warm idempotency and sticky stores), and the router stays ready. The RSS
/// figures are printed, not judged here: the `hostile_memory` suite judges them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hostile_bodies_each_get_exactly_one_right_reply() {
    let bench = Bench::start().await;
    let baseline = bench.warm_up().await;
    let cases = hostile_cases();
    assert!(cases.len() >= 10_000, "only {} bodies", cases.len());
    let total_bytes: usize = cases.iter().map(|c| c.body.len()).sum();
    let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        *per_category.entry(case.category).or_default() += 1;
    }

    let first = bench.pass(&cases).await;
    let after_first = bench.settled_rss().await;
    let second = bench.pass(&cases).await;
    let after_second = bench.settled_rss().await;
    let peak = bench
        .router
        .metric("router_process_peak_rss_bytes")
        .unwrap_or(0.0);

    eprintln!(
        "hostile input: {} bodies ({} MiB), {IN_FLIGHT} in flight, seed {SEED:#x}; \
         pass 1 {:.1} s, pass 2 {:.1} s",
        cases.len(),
        total_bytes / (1024 * 1024),
        first.elapsed.as_secs_f64(),
        second.elapsed.as_secs_f64()
    );
    eprintln!("  bodies by category:");
    for (category, n) in &per_category {
        eprintln!("    {category:<26} {n:>6}");
    }
    eprintln!("  replies by code (pass 1):");
    for (code, n) in &first.codes {
        eprintln!("    {code:<44} {n:>6}");
    }
    for (name, pass) in [("pass 1", &first), ("pass 2", &second)] {
        eprintln!(
            "  {name}: lost {}, answered twice {}, mismatches {}",
            pass.lost,
            pass.doubled,
            pass.mismatches.len()
        );
    }
    eprintln!(
        "  router RSS: warm baseline {}, after pass 1 {} ({:+.0} %), after pass 2 {} ({:+.0} % \
         vs pass 1), peak {}",
        mib(baseline),
        mib(after_first),
        (after_first / baseline - 1.0) * 100.0,
        mib(after_second),
        (after_second / after_first - 1.0) * 100.0,
        mib(peak)
    );

    first.assert_clean("pass 1");
    second.assert_clean("pass 2");
    bench.assert_still_serving();
}
