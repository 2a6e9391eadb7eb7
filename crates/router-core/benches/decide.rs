//! Request path micro-benchmark: request bytes in, reply bytes out, through
//! [`Router::handle`] with the shipped `default_tenant/default` policy.
//!
//! Run with `cargo bench -p router-core`. Every variant is single-threaded, so the reported
//! `elem/s` is requests per second on one core. Two groups measure the same variants:
//! `handle` by wall-clock time (criterion's default) and, on 64-bit Linux, `handle_cpu` by
//! the benchmark thread's CPU time, which other load on a shared machine does not inflate.

use std::hint::black_box;
use std::path::Path;

use criterion::measurement::Measurement;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use router_core::{Policy, Router, RouterSettings};

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
    // The same providers under the adaptive strategy, with live state from feedback.
    let text = std::fs::read_to_string(dir.join("default_tenant/default.json"))
        .expect("default_tenant/default.json is readable");
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("policy JSON");
    doc["strategy"] = serde_json::json!("adaptive");
    let adaptive = Policy::from_value(&doc, "default_tenant", "adaptive").expect("valid policy");
    let providers: Vec<String> = adaptive.providers.iter().map(|p| p.name.clone()).collect();
    router.policies().upsert(adaptive);
    // The same providers with per-provider rpm/tpm, for a tenant with a quota (limits never
    // reached during a run): the cost of counting. Another tenant, so `plain` counts nothing.
    let mut counted: serde_json::Value = serde_json::from_str(&text).expect("policy JSON");
    for provider in counted["providers"].as_array_mut().expect("providers") {
        provider["rpm"] = serde_json::json!(1_000_000_000_000u64);
        provider["tpm"] = serde_json::json!(1_000_000_000_000u64);
    }
    counted["quota"] =
        serde_json::json!({"rpm": 1_000_000_000_000u64, "tpm": 1_000_000_000_000u64});
    let counted = Policy::from_value(&counted, "metered", "default").expect("valid policy");
    router.policies().upsert(counted);
    for (i, provider) in providers.iter().enumerate() {
        let feedback = serde_json::json!({"tenant_id": "default_tenant", "policy_id": "adaptive",
            "provider_id": provider, "outcome": "success", "latency_ms": 800 + 100 * i});
        router
            .feedback(feedback.to_string().as_bytes(), NOW_MS)
            .expect("feedback applied");
    }
    router
}

const PLAIN: &str = r#"{"version":"1","request_id":"8f2c1a4e-0b7d-4e34-9a61-2f0c5d9e7b13","tenant_id":"default_tenant","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","task":{"type":"text.generate","payload":{"prompt":"Summarise the quarterly report in three sentences.","max_tokens":256}},"constraints":{"region":"eu"}}"#;

const STICKY: &str = r#"{"version":"1","request_id":"8f2c1a4e-0b7d-4e34-9a61-2f0c5d9e7b13","tenant_id":"default_tenant","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","task":{"type":"text.generate","payload":{"prompt":"Summarise the quarterly report in three sentences.","max_tokens":256}},"constraints":{"region":"eu"},"metadata":{"user_id":"user-42"}}"#;

/// `PLAIN` under the adaptive strategy (same providers).
const ADAPTIVE: &str = r#"{"version":"1","request_id":"8f2c1a4e-0b7d-4e34-9a61-2f0c5d9e7b13","tenant_id":"default_tenant","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","task":{"type":"text.generate","payload":{"prompt":"Summarise the quarterly report in three sentences.","max_tokens":256}},"constraints":{"region":"eu","policy_id":"adaptive"}}"#;

/// `PLAIN` for the tenant whose policy has quotas (same providers, limits never reached).
const QUOTA: &str = r#"{"version":"1","request_id":"8f2c1a4e-0b7d-4e34-9a61-2f0c5d9e7b13","tenant_id":"metered","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","task":{"type":"text.generate","payload":{"prompt":"Summarise the quarterly report in three sentences.","max_tokens":256}},"constraints":{"region":"eu"}}"#;

/// Valid JSON, rejected at intake: `task.type` is missing.
const INVALID: &str = r#"{"version":"1","request_id":"8f2c1a4e-0b7d-4e34-9a61-2f0c5d9e7b13","tenant_id":"default_tenant","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","task":{"payload":{"prompt":"Summarise the quarterly report in three sentences.","max_tokens":256}},"constraints":{"region":"eu"}}"#;

fn wall_time(c: &mut Criterion) {
    request_path(c, "handle");
}

fn request_path<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
    let router = router();
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));
    for (name, body, ok) in [
        ("plain", PLAIN, true),
        ("sticky_user_id", STICKY, true),
        ("adaptive", ADAPTIVE, true),
        ("quota", QUOTA, true),
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

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod cpu_time {
    //! CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`) as a criterion measurement.

    use std::time::Duration;

    use criterion::measurement::{Measurement, ValueFormatter, WallTime};

    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }

    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

    fn now() -> Duration {
        let mut time = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `time` is a valid, writable timespec (two 64-bit fields on 64-bit Linux).
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
    }

    /// Thread CPU time; values are reported like wall time (nanoseconds).
    pub struct ThreadCpuTime {
        wall: WallTime,
    }

    impl ThreadCpuTime {
        pub fn new() -> Self {
            ThreadCpuTime { wall: WallTime }
        }
    }

    impl Measurement for ThreadCpuTime {
        type Intermediate = Duration;
        type Value = Duration;

        fn start(&self) -> Duration {
            now()
        }
        fn end(&self, start: Duration) -> Duration {
            now().saturating_sub(start)
        }
        fn add(&self, a: &Duration, b: &Duration) -> Duration {
            *a + *b
        }
        fn zero(&self) -> Duration {
            Duration::ZERO
        }
        fn to_f64(&self, value: &Duration) -> f64 {
            value.as_nanos() as f64
        }
        fn formatter(&self) -> &dyn ValueFormatter {
            self.wall.formatter()
        }
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu_time(c: &mut Criterion<cpu_time::ThreadCpuTime>) {
    request_path(c, "handle_cpu");
}

criterion_group!(wall, wall_time);
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(cpu_time::ThreadCpuTime::new());
    targets = thread_cpu_time
}
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
criterion_main!(wall, cpu);
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
criterion_main!(wall);
