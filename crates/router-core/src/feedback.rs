//! Feedback (CONTRACT §4.4): provider outcomes reported by callers on the feedback subject,
//! read and applied to the circuit breakers.
//!
//! Which policy's breakers a report feeds:
//! - with a `decision_id` (from the decide reply): the policy that decision applied, whichever
//!   router of the fleet made it; the id also tells a late report from a probe result;
//! - else with a `policy_id`: that policy;
//! - else every policy of the tenant that can send calls to the provider.
//!
//! A report that can be applied nowhere is refused with a reason ([`FeedbackError`]), which a
//! caller asking for a reply gets back.

use serde::Deserialize;

use crate::breaker::{CallOutcome, Report, Transition};
use crate::error::ErrorCode;
use crate::ids;
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

#[derive(Deserialize)]
struct Feedback {
    tenant_id: String,
    provider_id: String,
    outcome: CallOutcome,
    #[serde(default)]
    policy_id: Option<String>,
    #[serde(default)]
    decision_id: Option<String>,
    #[serde(default)]
    latency_ms: Option<f64>,
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
        if feedback
            .latency_ms
            .is_some_and(|ms| !ms.is_finite() || ms < 0.0)
        {
            return Err(FeedbackError::Invalid(
                "latency_ms must be a number of milliseconds >= 0".into(),
            ));
        }
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
        let report = Report {
            outcome: feedback.outcome,
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
