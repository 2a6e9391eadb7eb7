//! Feedback (CONTRACT §4.4): provider outcomes reported by callers on the feedback subject,
//! read and applied to the circuit breakers.
//!
//! Which policy's breakers a report feeds:
//! - with a `decision_id` (from the decide reply): the policy that decision applied, whichever
//!   router of the fleet made it; the id also tells a late report from a probe result;
//! - else with a `policy_id`: that policy;
//! - else every policy of the tenant that can send calls to the provider.
//!
//! Every policy a report feeds also learns from it (live provider state, [`crate::live`]):
//! latency (`latency_ms` or `ttft_ms`, per the policy's metric), errors, and a cooldown for a
//! `rate_limited` report (`retry_after_s`, else the policy's default).
//!
//! A report that can be applied nowhere is refused with a reason ([`FeedbackError`]), which a
//! caller asking for a reply gets back.

use serde::Deserialize;

use crate::breaker::{CallOutcome, Report, Transition};
use crate::error::ErrorCode;
use crate::ids;
use crate::live::Observation;
use crate::policy::{LatencyMetric, Policy};
use crate::router::Router;

/// A feedback message that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    /// Not JSON or missing / wrongly typed fields.
    #[error("invalid feedback: {0}")]
    Invalid(String),
    /// No policy for the tenant (and policy id).
    #[error("no policy {policy_id} for tenant {tenant_id}")]
    UnknownPolicy {
        /// Tenant.
        tenant_id: String,
        /// Policy (`*` when none was named: the tenant has no policy at all).
        policy_id: String,
    },
    /// The provider appears in no policy the report could feed.
    #[error("provider {0} is not part of the policy")]
    UnknownProvider(String),
    /// A report on a tenant's scoped subject naming another tenant.
    #[error("tenant_id {tenant_id} does not match the tenant of the subject ({subject_tenant})")]
    TenantMismatch {
        /// The body's tenant.
        tenant_id: String,
        /// The subject's tenant.
        subject_tenant: String,
    },
}

impl FeedbackError {
    /// The error code a reply names (`invalid_request`, `policy_not_found`).
    pub fn code(&self) -> ErrorCode {
        match self {
            FeedbackError::Invalid(_) | FeedbackError::UnknownProvider(_) => {
                ErrorCode::InvalidRequest
            }
            FeedbackError::UnknownPolicy { .. } => ErrorCode::PolicyNotFound,
            FeedbackError::TenantMismatch { .. } => ErrorCode::Unauthorized,
        }
    }
}

/// One policy a report was applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The policy.
    pub policy_id: String,
    /// The breaker's state change, if any.
    pub transition: Option<Transition>,
}

/// The effect of one feedback message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackEffect {
    /// No policy the report concerns has a circuit breaker: nothing to record.
    Ignored,
    /// Recorded in these policies' breakers.
    Recorded(Vec<Applied>),
}

/// Longest cooldown a report may ask for, in seconds.
pub const MAX_RETRY_AFTER_S: f64 = 86_400.0;

/// A feedback message; unknown fields are ignored.
#[derive(Deserialize)]
struct Feedback {
    tenant_id: String,
    provider_id: String,
    /// Required unless `status` says what happened.
    #[serde(default)]
    outcome: Option<CallOutcome>,
    #[serde(default)]
    policy_id: Option<String>,
    #[serde(default)]
    decision_id: Option<String>,
    /// End to end, ms.
    #[serde(default)]
    latency_ms: Option<f64>,
    /// Time to first token, ms.
    #[serde(default)]
    ttft_ms: Option<f64>,
    /// `ok`, `timeout`, `5xx`, `rate_limited`, `context_length`, …
    #[serde(default)]
    status: Option<String>,
    /// Tokens in and out: they correct the decision's estimate in the quotas.
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    /// A provider's Retry-After, seconds.
    #[serde(default)]
    retry_after_s: Option<f64>,
}

impl Feedback {
    /// The outcome: `outcome`, else read from `status`.
    fn outcome(&self) -> Result<CallOutcome, FeedbackError> {
        if let Some(outcome) = self.outcome {
            return Ok(outcome);
        }
        match self.status.as_deref() {
            Some("ok" | "success") => Ok(CallOutcome::Success),
            Some("timeout") => Ok(CallOutcome::Timeout),
            Some("rate_limited") => Ok(CallOutcome::RateLimited),
            Some(_) => Ok(CallOutcome::Failure),
            None => Err(FeedbackError::Invalid(
                "missing field `outcome` (or a `status` that says what happened)".into(),
            )),
        }
    }

    fn check_figures(&self) -> Result<(), FeedbackError> {
        let millis = |value: Option<f64>, field: &str| {
            if value.is_some_and(|ms| !ms.is_finite() || ms < 0.0) {
                return Err(FeedbackError::Invalid(format!(
                    "{field} must be a number of milliseconds >= 0"
                )));
            }
            Ok(())
        };
        millis(self.latency_ms, "latency_ms")?;
        millis(self.ttft_ms, "ttft_ms")?;
        if self
            .retry_after_s
            .is_some_and(|s| !s.is_finite() || !(0.0..=MAX_RETRY_AFTER_S).contains(&s))
        {
            return Err(FeedbackError::Invalid(format!(
                "retry_after_s must be a number of seconds from 0 to {MAX_RETRY_AFTER_S}"
            )));
        }
        Ok(())
    }

    /// What the live state of `policy` learns from this report at `now_ms`.
    fn observation(&self, outcome: CallOutcome, policy: &Policy, now_ms: u64) -> Observation {
        let latency_ms = match policy.adaptive.metric {
            LatencyMetric::E2e => self.latency_ms,
            LatencyMetric::Ttft => self.ttft_ms,
        };
        let cool_until_ms = (outcome == CallOutcome::RateLimited).then(|| {
            let ms = self
                .retry_after_s
                .map_or(policy.default_retry_after_ms, |s| (s * 1000.0) as u64);
            now_ms.saturating_add(ms)
        });
        Observation {
            latency_ms,
            failed: outcome != CallOutcome::Success,
            cool_until_ms,
        }
    }
}

impl Router {
    /// Applies one feedback message to the circuit breakers.
    pub fn feedback(&self, body: &[u8], now_ms: u64) -> Result<FeedbackEffect, FeedbackError> {
        self.feedback_scoped(body, None, now_ms)
    }

    /// [`Router::feedback`] for a report that arrived on a tenant's scoped subject: one
    /// naming another tenant is refused ([`FeedbackError::TenantMismatch`]) before it
    /// touches a breaker. `None` is the unscoped subject of a trusted caller.
    pub fn feedback_scoped(
        &self,
        body: &[u8],
        subject_tenant: Option<&str>,
        now_ms: u64,
    ) -> Result<FeedbackEffect, FeedbackError> {
        if body.len() > self.settings.limits.max_payload {
            return Err(FeedbackError::Invalid("body over the size limit".into()));
        }
        let feedback: Feedback =
            serde_json::from_slice(body).map_err(|err| FeedbackError::Invalid(err.to_string()))?;
        if let Some(scope) = subject_tenant {
            if feedback.tenant_id != scope {
                return Err(FeedbackError::TenantMismatch {
                    tenant_id: feedback.tenant_id,
                    subject_tenant: scope.to_owned(),
                });
            }
        }
        feedback.check_figures()?;
        let outcome = feedback.outcome()?;
        let decided = match feedback.decision_id.as_deref() {
            None => None,
            Some(id) => Some(ids::parse_decision_id(id).ok_or_else(|| {
                FeedbackError::Invalid(format!("decision_id {id:?} is not a decision id"))
            })?),
        };
        let named_policy = match (&decided, &feedback.policy_id) {
            (Some((_, from_id)), Some(named)) if from_id != named => {
                return Err(FeedbackError::Invalid(format!(
                    "policy_id {named:?} differs from the policy of decision_id ({from_id:?})"
                )))
            }
            (Some((_, from_id)), _) => Some(from_id.clone()),
            (None, named) => named.clone(),
        };
        let snapshot = self.policies().snapshot();
        let policies = match &named_policy {
            Some(policy_id) => {
                let policy = snapshot
                    .get(&feedback.tenant_id, policy_id)
                    .ok_or_else(|| FeedbackError::UnknownPolicy {
                        tenant_id: feedback.tenant_id.clone(),
                        policy_id: policy_id.clone(),
                    })?;
                if !policy.names(&feedback.provider_id) {
                    return Err(FeedbackError::UnknownProvider(feedback.provider_id));
                }
                vec![policy]
            }
            None => {
                let all = snapshot.of_tenant(&feedback.tenant_id);
                if all.is_empty() {
                    return Err(FeedbackError::UnknownPolicy {
                        tenant_id: feedback.tenant_id.clone(),
                        policy_id: "*".to_owned(),
                    });
                }
                let listing: Vec<_> = all
                    .into_iter()
                    .filter(|p| p.names(&feedback.provider_id))
                    .collect();
                if listing.is_empty() {
                    return Err(FeedbackError::UnknownProvider(feedback.provider_id));
                }
                listing
            }
        };
        if let Some(id) = feedback.decision_id.as_deref() {
            self.correct_estimate(id, feedback.input_tokens, feedback.output_tokens, now_ms);
        }
        let live = self.engine().live();
        for policy in &policies {
            let seen = feedback.observation(outcome, policy, now_ms);
            if let Some(until) = seen.cool_until_ms {
                live.cooling_until(until);
            }
            live.policy_or_new(&feedback.tenant_id, &policy.policy_id)
                .observe(
                    &feedback.provider_id,
                    seen,
                    now_ms,
                    policy.adaptive.decay_ms,
                    policy.adaptive.error_decay_ms,
                );
        }
        let report = Report {
            outcome,
            decided_at_ms: decided.map(|(at, _)| at),
        };
        let applied: Vec<Applied> = policies
            .iter()
            .filter_map(|policy| {
                let config = policy.circuit_breaker.as_ref()?;
                let key = (
                    feedback.tenant_id.as_str(),
                    policy.policy_id.as_str(),
                    feedback.provider_id.as_str(),
                );
                Some(Applied {
                    policy_id: policy.policy_id.clone(),
                    transition: self.engine().breakers().record(key, report, config, now_ms),
                })
            })
            .collect();
        if applied.is_empty() {
            Ok(FeedbackEffect::Ignored)
        } else {
            Ok(FeedbackEffect::Recorded(applied))
        }
    }
}

impl Router {
    /// Corrects a decision's token and spend estimate with the real counts. Only the
    /// router that decided holds the estimate, so a report seen by every router of the
    /// fleet corrects once; a report without counts leaves the estimate standing.
    fn correct_estimate(
        &self,
        decision_id: &str,
        input: Option<u64>,
        output: Option<u64>,
        now_ms: u64,
    ) {
        if input.is_none() && output.is_none() {
            return;
        }
        let book = self.engine().quota();
        let Some(estimate) = book.estimate(decision_id, now_ms) else {
            return;
        };
        let (input, output) = (input.unwrap_or(0), output.unwrap_or(0));
        let tokens = input.saturating_add(output);
        let spend = estimate
            .price
            .map_or(0, |price| price.micros(input, output));
        let mut grew = false;
        for meter in &estimate.meters {
            let real = if meter.key().kind.is_spend() {
                spend
            } else {
                tokens
            };
            let delta = i64::try_from(real).unwrap_or(i64::MAX)
                - i64::try_from(estimate.amount(meter)).unwrap_or(i64::MAX);
            if meter.correct(estimate.window_start_ms(meter), delta) && delta > 0 {
                grew = true;
            }
        }
        if grew {
            book.wake();
        }
    }
}
