//! The performance canary: with the cargo feature `canary` (off by default), every decision
//! costs about 25 % more CPU than without it. `cargo xtask gate-selftest` benchmarks such a
//! build to prove that the perf gate fails a slower router.
//!
//! The extra cost is calibrated against the process itself: every `CALIBRATION_EVERY`
//! decisions the canary reads the process's CPU time, subtracts what it burnt itself, and
//! sets the burn per decision to [`EXTRA`] of what a decision costs without it. The burn
//! spins on the thread's own CPU clock, so being preempted does not shorten it.

/// Extra CPU per decision, as a share of the decision's own cost.
pub const EXTRA: f64 = 0.25;

/// Decisions between two calibrations.
#[cfg(feature = "canary")]
const CALIBRATION_EVERY: u64 = 2_000;

/// Burns the calibrated extra CPU for one decision; a no-op without the `canary` feature.
#[inline]
pub fn burn() {
    #[cfg(feature = "canary")]
    imp::burn();
}

#[cfg(feature = "canary")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    use super::{CALIBRATION_EVERY, EXTRA};

    /// Decisions since start.
    static DECISIONS: AtomicU64 = AtomicU64::new(0);
    /// Nanoseconds burnt by the canary since start.
    static BURNT_NS: AtomicU64 = AtomicU64::new(0);
    /// Nanoseconds to burn per decision (0 until the first calibration).
    static TARGET_NS: AtomicU64 = AtomicU64::new(0);
    /// (process CPU ns, burnt ns, decisions) at the last calibration.
    static LAST: Mutex<(u64, u64, u64)> = Mutex::new((0, 0, 0));

    fn cpu_ns(clock: libc::clockid_t) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own; the clock ids are constants.
        if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
            return 0;
        }
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    fn calibrate(decisions: u64) {
        let Ok(mut last) = LAST.try_lock() else {
            return;
        };
        let process = cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
        let burnt = BURNT_NS.load(Ordering::Relaxed);
        let (last_process, last_burnt, last_decisions) = *last;
        *last = (process, burnt, decisions);
        let count = decisions.saturating_sub(last_decisions);
        if last_decisions == 0 || count == 0 {
            return;
        }
        let own = process
            .saturating_sub(last_process)
            .saturating_sub(burnt.saturating_sub(last_burnt));
        let target = (own as f64 / count as f64 * EXTRA) as u64;
        TARGET_NS.store(target, Ordering::Relaxed);
    }

    pub fn burn() {
        let decisions = DECISIONS.fetch_add(1, Ordering::Relaxed) + 1;
        if decisions % CALIBRATION_EVERY == 0 {
            calibrate(decisions);
        }
        let target = TARGET_NS.load(Ordering::Relaxed);
        if target == 0 {
            return;
        }
        let start = cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID);
        let mut now = start;
        while now.saturating_sub(start) < target {
            std::hint::spin_loop();
            now = cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID);
        }
        BURNT_NS.fetch_add(now - start, Ordering::Relaxed);
    }
}
