//! [`Meter`]: one quota's count in the current window on this router, read and taken with
//! atomics on the request path.
//!
//! A meter admits while `used + amount ≤ allowance`. The allowance is the limit itself when
//! the router counts alone (memory store), or the share of the window's limit this router
//! holds as a lease from the fleet's shared store. Leases are taken and returned by the
//! service's sync task (never on the request path), which calls the `*lease*` methods here.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::key::MeterKey;

/// What a meter says about an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the allowance.
    Admit,
    /// Beyond this router's lease, but the fleet may still have some: a lease is asked for.
    Pending,
    /// The window's limit is reached: it frees at the window's end.
    Exhausted {
        /// Milliseconds until the window ends.
        retry_after_ms: u64,
    },
}

/// One quota's count on this router.
#[derive(Debug)]
pub struct Meter {
    key: MeterKey,
    /// The allowance is a lease from the fleet (else the limit itself).
    leased: bool,
    window_start_ms: AtomicU64,
    window_end_ms: AtomicU64,
    limit: AtomicU64,
    /// The lease this router holds for the window (leased meters only).
    granted: AtomicU64,
    /// What this router admitted in the window, corrected by feedback.
    used: AtomicU64,
    /// The fleet has no more to lease this window.
    fleet_full: AtomicBool,
    /// The fleet's count at the last read of the shared store.
    fleet_used: AtomicU64,
    /// What waiting decisions need beyond the lease.
    wanted: AtomicU64,
    /// When a decision last took from this meter (ms).
    last_take_ms: AtomicU64,
    /// Serialises the start of a new window.
    roll: Mutex<()>,
}

impl Meter {
    /// A meter for `key` with `limit`; `leased` when the allowance comes from the fleet.
    pub fn new(key: MeterKey, limit: u64, leased: bool) -> Self {
        Meter {
            key,
            leased,
            window_start_ms: AtomicU64::new(0),
            window_end_ms: AtomicU64::new(0),
            limit: AtomicU64::new(limit),
            granted: AtomicU64::new(0),
            used: AtomicU64::new(0),
            fleet_full: AtomicBool::new(false),
            fleet_used: AtomicU64::new(0),
            wanted: AtomicU64::new(0),
            last_take_ms: AtomicU64::new(0),
            roll: Mutex::new(()),
        }
    }

    /// What this meter counts.
    pub fn key(&self) -> &MeterKey {
        &self.key
    }

    /// True when the allowance is a lease from the fleet.
    pub fn is_leased(&self) -> bool {
        self.leased
    }

    /// Starts the window holding `now_ms` when the current one is over.
    fn current(&self, now_ms: u64) {
        if now_ms < self.window_end_ms.load(Ordering::Acquire) {
            return;
        }
        let _guard = self.roll.lock().unwrap_or_else(|p| p.into_inner());
        if now_ms < self.window_end_ms.load(Ordering::Acquire) {
            return;
        }
        let (start, end) = self.key.kind.window().bounds(now_ms);
        self.used.store(0, Ordering::Relaxed);
        self.granted.store(0, Ordering::Relaxed);
        self.fleet_full.store(false, Ordering::Relaxed);
        self.fleet_used.store(0, Ordering::Relaxed);
        self.wanted.store(0, Ordering::Relaxed);
        self.window_start_ms.store(start, Ordering::Relaxed);
        self.window_end_ms.store(end, Ordering::Release);
    }

    fn allowance(&self) -> u64 {
        let limit = self.limit.load(Ordering::Relaxed);
        if self.leased {
            self.granted.load(Ordering::Relaxed).min(limit)
        } else {
            limit
        }
    }

    fn refusal(&self, now_ms: u64) -> Verdict {
        if self.leased && !self.fleet_full.load(Ordering::Relaxed) {
            Verdict::Pending
        } else {
            Verdict::Exhausted {
                retry_after_ms: self.retry_after_ms(now_ms),
            }
        }
    }

    /// Milliseconds from `now_ms` to the end of the window.
    pub fn retry_after_ms(&self, now_ms: u64) -> u64 {
        self.window_end_ms
            .load(Ordering::Relaxed)
            .saturating_sub(now_ms)
            .max(1)
    }

    /// Sets the limit (a policy change applies at once; the window's count stays). A raised
    /// limit may have room again: the fleet is asked for it on the next decision.
    pub fn set_limit(&self, limit: u64) {
        let old = self.limit.swap(limit, Ordering::Relaxed);
        if limit > old {
            self.fleet_full.store(false, Ordering::Relaxed);
        }
    }

    /// Whether `amount` would be admitted at `now_ms`, taking nothing.
    pub fn check(&self, amount: u64, now_ms: u64) -> Verdict {
        self.current(now_ms);
        if amount > self.limit.load(Ordering::Relaxed) {
            return Verdict::Exhausted {
                retry_after_ms: self.retry_after_ms(now_ms),
            };
        }
        let used = self.used.load(Ordering::Relaxed);
        if used.saturating_add(amount) <= self.allowance() {
            Verdict::Admit
        } else {
            self.refusal(now_ms)
        }
    }

    /// Takes `amount` when it fits; a `Pending` verdict asks the sync task for a lease.
    pub fn take(&self, amount: u64, now_ms: u64) -> Verdict {
        self.current(now_ms);
        if amount > self.limit.load(Ordering::Relaxed) {
            return Verdict::Exhausted {
                retry_after_ms: self.retry_after_ms(now_ms),
            };
        }
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let next = used.saturating_add(amount);
                (next <= self.allowance()).then_some(next)
            });
        if taken.is_ok() {
            self.last_take_ms.store(now_ms, Ordering::Relaxed);
            return Verdict::Admit;
        }
        let verdict = self.refusal(now_ms);
        if verdict == Verdict::Pending {
            self.wanted.fetch_add(amount, Ordering::Relaxed);
        }
        verdict
    }

    /// Gives back what [`Meter::take`] took (another meter of the same decision refused).
    pub fn untake(&self, amount: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(amount))
            });
    }

    /// Corrects the count of the window that started at `window_start_ms` by `delta`
    /// (feedback's real tokens or spend against the estimate). A correction for a window
    /// that is over changes nothing. True when applied.
    pub fn correct(&self, window_start_ms: u64, delta: i64) -> bool {
        if self.window_start_ms.load(Ordering::Acquire) != window_start_ms || delta == 0 {
            return false;
        }
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(if delta >= 0 {
                    used.saturating_add(delta.unsigned_abs())
                } else {
                    used.saturating_sub(delta.unsigned_abs())
                })
            });
        true
    }

    /// The current window's start and end (exclusive), epoch ms.
    pub fn window_ms(&self, now_ms: u64) -> (u64, u64) {
        self.current(now_ms);
        (
            self.window_start_ms.load(Ordering::Acquire),
            self.window_end_ms.load(Ordering::Acquire),
        )
    }

    /// The limit.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// What this router admitted in the window (with corrections).
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// The lease this router holds for the window.
    pub fn granted(&self) -> u64 {
        self.granted.load(Ordering::Acquire)
    }

    /// What waiting decisions need beyond the lease.
    pub fn wanted(&self) -> u64 {
        self.wanted.load(Ordering::Relaxed)
    }

    /// When a decision last took from this meter (ms).
    pub fn last_take_ms(&self) -> u64 {
        self.last_take_ms.load(Ordering::Relaxed)
    }

    /// The fleet's count at the last read of the shared store, at least this router's own.
    pub fn fleet_used(&self) -> u64 {
        self.fleet_used.load(Ordering::Relaxed).max(self.used())
    }

    /// How much of the limit is left, as a share from 0 to 1 (the headroom strategy).
    pub fn headroom(&self, now_ms: u64) -> f64 {
        self.current(now_ms);
        let limit = self.limit().max(1) as f64;
        (1.0 - self.fleet_used() as f64 / limit).clamp(0.0, 1.0)
    }

    /// The sync task leased `amount` more at `now_ms` for the window starting
    /// `window_start_ms`. A lease counts as use: it is not idle before decisions took from it.
    pub fn add_lease(&self, window_start_ms: u64, amount: u64, now_ms: u64) {
        if self.window_start_ms.load(Ordering::Acquire) == window_start_ms {
            self.granted.fetch_add(amount, Ordering::AcqRel);
            self.wanted.store(0, Ordering::Relaxed);
            if amount > 0 {
                self.last_take_ms.fetch_max(now_ms, Ordering::Relaxed);
            }
        }
    }

    /// What the shared store says of the window: the fleet's count, and whether it has
    /// no more to lease.
    pub fn set_fleet(&self, window_start_ms: u64, fleet_used: u64, full: bool) {
        if self.window_start_ms.load(Ordering::Acquire) == window_start_ms {
            self.fleet_used.store(fleet_used, Ordering::Relaxed);
            self.fleet_full.store(full, Ordering::Relaxed);
            if full {
                self.wanted.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Shrinks the lease to what is used, and returns what it freed: the sync task gives it
    /// back to the fleet. A decision admitted meanwhile keeps its share.
    pub fn shrink_lease(&self) -> u64 {
        loop {
            let granted = self.granted.load(Ordering::Acquire);
            let used = self.used.load(Ordering::Acquire);
            if used >= granted {
                return 0;
            }
            if self
                .granted
                .compare_exchange(granted, used, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            // Decisions that took between the two loads above are inside `granted`: keep
            // their share in the lease.
            let after = self.used.load(Ordering::Acquire);
            if after > used {
                self.granted.fetch_add(after - used, Ordering::AcqRel);
            }
            return granted.saturating_sub(after.max(used));
        }
    }

    /// Raises the lease to cover what corrections added beyond it, and returns by how much:
    /// the sync task adds it to the fleet's count, so the others see the true usage.
    pub fn cover_overuse(&self) -> u64 {
        let used = self.used.load(Ordering::Acquire);
        let granted = self.granted.load(Ordering::Acquire);
        if used <= granted {
            return 0;
        }
        match self
            .granted
            .compare_exchange(granted, used, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => used - granted,
            Err(_) => 0,
        }
    }
}
