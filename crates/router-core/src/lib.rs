//! Beamline Router core: the wire contract, the policy DSL and the decision engine.
//!
//! Pure library: no I/O except [`PolicyStore::load_dir`], which the caller invokes, no async
//! runtime, no clock and no entropy of its own — the current time and the random source are
//! arguments, so every decision is reproducible under test.
//!
//! The request path is [`Router::handle`]: raw bytes and the `version` header in, reply bytes
//! and an [`Outcome`] out. It never panics on input.

pub mod backpressure;
pub mod breaker;
pub mod condition;
pub mod decision;
pub mod error;
pub mod feedback;
pub mod idempotency;
pub mod identity;
pub mod ids;
pub mod json_bytes;
pub mod live;
pub mod policy;
pub mod quota;
pub mod record;
pub mod reply;
pub mod request;
pub mod router;
pub mod ttl_map;

pub use backpressure::{
    BackpressureMonitor, BackpressureStatus, Signals, StatusChange, StatusReport, Thresholds,
};
pub use breaker::{BreakerRegistry, BreakerState, CallOutcome, Transition};
pub use decision::{Decision, DecisionEngine, Reason};
pub use error::{ErrorCode, IntakeErrorCode, Rejection};
pub use feedback::{FeedbackEffect, FeedbackError};
pub use identity::{Identity, IdentityError, Role};
pub use policy::{Policy, PolicyError, PolicyStore};
pub use record::DecisionRecord;
pub use request::{DecideRequest, IntakeLimits};
pub use router::{Handled, IdempotentDecision, Outcome, Router, RouterSettings};
