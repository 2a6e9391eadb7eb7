//! Circuit breakers per (tenant, policy, provider), CONTRACT §4.4.
//!
//! Each policy of a tenant has breakers of its own, configured by that policy: a provider
//! failing under one policy's settings does not use another policy's. Closed → open on
//! `failure_threshold` consecutive failures, or when the error rate over the window reaches
//! `error_rate_threshold` (judged once the window holds at least `failure_threshold`
//! outcomes, so one early failure cannot open it). Open → half-open after `timeout_ms`;
//! half-open admits `half_open_max_calls` probes; `success_threshold` probe successes close it
//! and a probe failure reopens it.
//!
//! Probes are counted under the same lock that admitted them ([`PolicyBreakers`]), so
//! concurrent decisions never send more than `half_open_max_calls` probes. A success counts
//! as a probe result only for a call made while half-open: one whose decision (named by its
//! `decision_id`) was issued after the breaker went half-open, or, for a report without one,
//! while the round still has a probe without a result. A report about a decision issued
//! before the breaker went half-open changes nothing. Feedback is fire-and-forget, so probe
//! reports may be lost: when every probe of a round has been sent and `timeout_ms` has passed
//! since the last one without a verdict, a new round is admitted (successes so far still
//! count).

mod machine;
mod registry;
mod report;
mod state;

pub use registry::{BreakerRegistry, PolicyBreakers};
pub use report::{CallOutcome, Report};
pub use state::{BreakerEvent, BreakerKey, BreakerState, Transition};

#[cfg(test)]
mod tests;
