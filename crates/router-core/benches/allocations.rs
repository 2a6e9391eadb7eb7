//! Allocations per request on the request path: bytes in, reply bytes out, through
//! [`router_core::Router::handle`] for each variant of the `decide` bench, counted by a
//! global allocator that wraps the system's.
//!
//! Run with `cargo bench -p router-core --bench allocations` (a name filters the variants:
//! `-- plain`). It prints a table: allocations and bytes allocated per request. With
//! `ALLOCATIONS_ITERATIONS=N` it runs N requests per variant, so that a counter such as
//! `perf stat -e instructions:u` can be read per request.

mod fixture;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::SmallRng;
use rand::SeedableRng;

use fixture::{router, NOW_MS, VARIANTS};

/// The system allocator, counting every allocation (`realloc` included) and its bytes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counters have no effect on it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as it is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Requests per variant, unless `ALLOCATIONS_ITERATIONS` says otherwise.
const DEFAULT_ITERATIONS: u64 = 10_000;

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let iterations = std::env::var("ALLOCATIONS_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS)
        .max(1);
    let router = router();
    println!("| variant | allocations / request | bytes / request |");
    println!("|---|---|---|");
    for (name, body, _) in VARIANTS {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let body = body.as_bytes();
        let mut rng = SmallRng::seed_from_u64(7);
        // Warm up: first-use allocations (meters, caches) are not the request path's.
        for _ in 0..100 {
            black_box(router.handle(body, Some("1"), NOW_MS, &mut rng));
        }
        let (allocations, bytes) = (
            ALLOCATIONS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        for _ in 0..iterations {
            black_box(router.handle(black_box(body), Some("1"), NOW_MS, &mut rng));
        }
        let per = |now: u64, before: u64| (now - before) as f64 / iterations as f64;
        println!(
            "| {name} | {:.1} | {:.0} |",
            per(ALLOCATIONS.load(Ordering::Relaxed), allocations),
            per(BYTES.load(Ordering::Relaxed), bytes)
        );
    }
}
