//! Feedback (CONTRACT §4.4): provider outcomes reported by callers on the feedback subject,
//! read and applied to the circuit breakers of the tenant's policy.

use serde::Deserialize;

use crate::breaker::{CallOutcome, Transition};
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
        /// Policy.
        policy_id: String,
    },
    /// The provider appears nowhere in the policy.
    #[error("provider {0} is not part of the policy")]
    UnknownProvider(String),
}

/// The effect of one feedback message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackEffect {
    /// The policy has no circuit breaker: nothing to record.
    Ignored,
    /// Recorded; maybe a state change.
    Recorded(Option<Transition>),
}

#[derive(Deserialize)]
struct Feedback {
    tenant_id: String,
    provider_id: String,
    outcome: CallOutcome,
    #[serde(default)]
    policy_id: Option<String>,
    #[allow(dead_code)]
    #[serde(default)]
    latency_ms: Option<f64>,
}

impl Router {
    /// Applies one feedback message to the circuit breakers.
    pub fn feedback(&self, body: &[u8], now_ms: u64) -> Result<FeedbackEffect, FeedbackError> {
        if body.len() > self.settings.limits.max_payload {
            return Err(FeedbackError::Invalid("body over the size limit".into()));
        }
        let feedback: Feedback =
            serde_json::from_slice(body).map_err(|err| FeedbackError::Invalid(err.to_string()))?;
        let policy_id = feedback.policy_id.unwrap_or_else(|| "default".to_owned());
        let policy = self
            .policies()
            .get(&feedback.tenant_id, &policy_id)
            .ok_or_else(|| FeedbackError::UnknownPolicy {
                tenant_id: feedback.tenant_id.clone(),
                policy_id: policy_id.clone(),
            })?;
        let known = policy.provider(&feedback.provider_id).is_some()
            || policy
                .fallbacks
                .iter()
                .any(|r| r.to == feedback.provider_id)
            || policy.legacy_fallback.as_deref() == Some(feedback.provider_id.as_str());
        if !known {
            return Err(FeedbackError::UnknownProvider(feedback.provider_id));
        }
        let Some(config) = &policy.circuit_breaker else {
            return Ok(FeedbackEffect::Ignored);
        };
        Ok(FeedbackEffect::Recorded(self.engine().breakers().record(
            &feedback.tenant_id,
            &feedback.provider_id,
            feedback.outcome,
            config,
            now_ms,
        )))
    }
}
