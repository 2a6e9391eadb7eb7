//! Request path micro-benchmark: request bytes in, reply bytes out, through
//! [`Router::handle`] with the shipped `default_tenant/default` policy.
//!
//! Run with `cargo bench -p router-core`. Every variant is single-threaded, so the reported
//! `elem/s` is requests per second on one core.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use router_core::{Router, RouterSettings};

/// A fixed "now" (epoch ms): sticky mappings never expire during a run.
const NOW_MS: u64 = 1_764_182_400_000;

fn router() -> Router {
    let router = Router::new(RouterSettings::default());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/policies");
    let report = router
        .policies()
        .load_dir(&dir)
        .expect("config/policies is readable");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    router
}

const PLAIN: &str = r#"{"version":"1","request_id":"8f2c1a4e-0b7d-4e34-9a61-2f0c5d9e7b13","tenant_id":"default_tenant","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","task":{"type":"text.generate","payload":{"prompt":"Summarise the quarterly report in three sentences.","max_tokens":256}},"constraints":{"region":"eu"}}"#;

const STICKY: &str = r#"{"version":"1","request_id":"8f2c1a4e-0b7d-4e34-9a61-2f0c5d9e7b13","tenant_id":"default_tenant","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","task":{"type":"text.generate","payload":{"prompt":"Summarise the quarterly report in three sentences.","max_tokens":256}},"constraints":{"region":"eu"},"metadata":{"user_id":"user-42"}}"#;

/// Valid JSON, rejected at intake: `task.type` is missing.
const INVALID: &str = r#"{"version":"1","request_id":"8f2c1a4e-0b7d-4e34-9a61-2f0c5d9e7b13","tenant_id":"default_tenant","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","task":{"payload":{"prompt":"Summarise the quarterly report in three sentences.","max_tokens":256}},"constraints":{"region":"eu"}}"#;

fn request_path(c: &mut Criterion) {
    let router = router();
    let mut group = c.benchmark_group("handle");
    group.throughput(Throughput::Elements(1));
    for (name, body, ok) in [
        ("plain", PLAIN, true),
        ("sticky_user_id", STICKY, true),
        ("invalid_request", INVALID, false),
    ] {
        let body = body.as_bytes();
        let mut rng = SmallRng::seed_from_u64(7);
        // Check once that the variant measures what its name says.
        let first = router.handle(body, None, NOW_MS, &mut rng);
        let reply: serde_json::Value = serde_json::from_slice(&first.reply).expect("reply is JSON");
        assert_eq!(reply["ok"], ok, "{name}: {reply}");
        group.bench_function(name, |b| {
            b.iter(|| {
                let handled = router.handle(black_box(body), Some("1"), NOW_MS, &mut rng);
                black_box(handled.reply)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, request_path);
criterion_main!(benches);
