//! The breaker states ([`BreakerState`]) and their changes ([`Transition`], and
//! [`BreakerEvent`] naming the breaker by its [`BreakerKey`]), for replies, logs and metrics.

use serde::{Deserialize, Serialize};

/// The three breaker states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are blocked until the timeout passes.
    Open,
    /// A limited number of probes decide whether to close again.
    HalfOpen,
}

impl BreakerState {
    /// The wire name (`closed`, `open`, `half_open`).
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

/// A state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
}

/// Which breaker: (tenant, policy, provider).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BreakerKey {
    /// The tenant.
    pub tenant: String,
    /// The policy.
    pub policy: String,
    /// The provider.
    pub provider: String,
}

/// A state change of one breaker, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerEvent {
    /// The breaker.
    pub key: BreakerKey,
    /// The change.
    pub transition: Transition,
    /// When, epoch milliseconds.
    pub at_ms: u64,
}
