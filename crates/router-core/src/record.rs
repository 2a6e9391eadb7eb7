//! [`DecisionRecord`]: one decision written down for later — who asked, when, under which
//! policy version, the inputs that mattered, every candidate with what the decision saw of
//! it ([`Explanation`]), the choice and the plan. Built only for a sampled decision
//! ([`crate::Router::with_decision_records`]); the service writes it off the request path.

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decision::{CandidateView, Decision, Explanation, Reason};
use crate::request::DecideRequest;

/// Longest string input kept in a record, in bytes (longer ones are cut at a char boundary).
pub const MAX_RECORDED_STRING: usize = 128;

/// Most inputs kept in a record.
pub const MAX_RECORDED_INPUTS: usize = 32;

/// One decision, as a record an operator reads back (`router explain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The reply's `decision_id`.
    pub decision_id: String,
    /// When it was decided (ms since the epoch).
    pub at_ms: u64,
    /// The tenant.
    pub tenant_id: String,
    /// The policy applied.
    pub policy_id: String,
    /// That policy document's `version`.
    pub policy_version: String,
    /// The caller's `request_id`.
    pub request_id: String,
    /// The caller's `trace_id`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// `task.type`.
    pub task_type: String,
    /// The sticky session the decision looked up, by key and a hash of its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<StickyInput>,
    /// The routing context (constraints and metadata), the session value left out.
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    /// Every provider of the policy, as the decision saw it.
    pub candidates: Vec<CandidateView>,
    /// The provider chosen.
    pub provider_id: String,
    /// Why.
    pub reason: Reason,
    /// For `adaptive`: the winning score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The reply's `decision.fallbacks`: what to try next, in order.
    pub plan: Vec<String>,
}

/// The sticky input of a decision: the context key and a hash of its value (the value
/// itself, often a user id, is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StickyInput {
    /// The policy's `session_key`.
    pub session_key: String,
    /// 16 hex digits: a fixed-seed hash of the session value, equal on every router.
    pub value_hash: String,
}

impl DecisionRecord {
    /// The record of `decision`, taken for `request` under a policy of `policy_version`.
    pub fn new(
        request: &DecideRequest<'_>,
        decision: &Decision,
        policy_version: &str,
        explanation: Explanation,
        now_ms: u64,
    ) -> Self {
        let session_key = decision.metadata.sticky_key.as_deref();
        let sticky = session_key.and_then(|key| {
            let value = request.context.get(key)?;
            Some(StickyInput {
                session_key: key.to_owned(),
                value_hash: value_hash(value),
            })
        });
        let inputs = request
            .context
            .iter()
            .filter(|(key, _)| Some(*key) != session_key && *key != "tenant_id")
            .take(MAX_RECORDED_INPUTS)
            .map(|(key, value)| (key.to_owned(), bounded(value)))
            .collect();
        DecisionRecord {
            decision_id: decision.decision_id.clone(),
            at_ms: now_ms,
            tenant_id: request.tenant_id.to_string(),
            policy_id: decision.policy_id.clone(),
            policy_version: policy_version.to_owned(),
            request_id: request.request_id.to_string(),
            trace_id: request.trace_id.as_deref().map(str::to_owned),
            task_type: request.task_type.to_string(),
            sticky,
            inputs,
            candidates: explanation.candidates,
            provider_id: decision.provider_id.clone(),
            reason: decision.reason,
            score: decision.score,
            plan: decision.fallbacks.to_vec(),
        }
    }
}

/// A fixed-seed hash of a session value, as 16 hex digits.
fn value_hash(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let hash = foldhash::fast::FixedState::with_seed(0).hash_one(text.as_str());
    format!("{hash:016x}")
}

/// `value` with strings cut to [`MAX_RECORDED_STRING`] bytes and objects and long arrays
/// replaced by a note of their size, so that a record stays small.
fn bounded(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() > MAX_RECORDED_STRING => {
            let mut end = MAX_RECORDED_STRING;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Value::String(format!("{}…", &s[..end]))
        }
        Value::Array(items) if items.len() <= 64 && items.iter().all(is_scalar) => value.clone(),
        Value::Array(items) => Value::String(format!("[{} items]", items.len())),
        Value::Object(members) => Value::String(format!("{{{} members}}", members.len())),
        other => other.clone(),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}
