//! Request path micro-benchmark: request bytes in, reply bytes out, through
//! [`Router::handle`] with the shipped `default_tenant/default` policy.
//!
//! Run with `cargo bench -p router-core`. Every variant is single-threaded, so the reported
//! `elem/s` is requests per second on one core. Two groups measure the same variants:
//! `handle` by wall-clock time (criterion's default) and, on 64-bit Linux, `handle_cpu` by
//! the benchmark thread's CPU time, which other load on a shared machine does not inflate.

mod fixture;

use std::hint::black_box;

use criterion::measurement::Measurement;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use fixture::{router, NOW_MS, VARIANTS};

fn wall_time(c: &mut Criterion) {
    request_path(c, "handle");
}

fn request_path<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
    let router = router();
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(1));
    for (name, body, ok) in VARIANTS {
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
