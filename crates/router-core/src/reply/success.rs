//! The success reply written field by field into one buffer: the same bytes as the
//! `Serialize` form of the envelope (the tests compare them), at a fraction of the cost, as
//! every decided request pays it.

use crate::decision::{Decision, DecisionMetadata};

use super::json;
use super::ReplyContext;

/// Bytes of a typical success reply: one allocation covers it.
pub(super) const TYPICAL_LEN: usize = 512;

/// `{"ok":true,"decision":…,"context":…}`, with `"replayed":true` when replayed.
pub(super) fn encode(decision: &Decision, context: ReplyContext<'_>, replayed: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(TYPICAL_LEN);
    out.extend_from_slice(br#"{"ok":true,"decision":"#);
    write_decision(&mut out, decision);
    out.extend_from_slice(br#","context":"#);
    write_context(&mut out, context);
    if replayed {
        out.extend_from_slice(br#","replayed":true"#);
    }
    out.push(b'}');
    out
}

fn write_decision(out: &mut Vec<u8>, decision: &Decision) {
    out.extend_from_slice(br#"{"provider_id":"#);
    json::string(out, &decision.provider_id);
    out.extend_from_slice(br#","reason":""#);
    out.extend_from_slice(decision.reason.as_str().as_bytes());
    out.extend_from_slice(br#"","priority":"#);
    json::unsigned(out, u64::from(decision.priority));
    out.extend_from_slice(br#","expected_latency_ms":"#);
    json::whole_or_float(out, decision.expected_latency_ms);
    out.extend_from_slice(br#","expected_cost":"#);
    json::whole_or_float(out, decision.expected_cost);
    out.extend_from_slice(br#","policy_id":"#);
    json::string(out, &decision.policy_id);
    out.extend_from_slice(br#","decision_id":"#);
    json::string(out, &decision.decision_id);
    out.extend_from_slice(br#","fallbacks":["#);
    for (i, provider) in decision.fallbacks.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::string(out, provider);
    }
    out.push(b']');
    if let Some(score) = decision.score {
        out.extend_from_slice(br#","score":"#);
        json::whole_or_float(out, score.round());
    }
    out.extend_from_slice(br#","metadata":"#);
    write_metadata(out, &decision.metadata);
    out.push(b'}');
}

fn write_metadata(out: &mut Vec<u8>, metadata: &DecisionMetadata) {
    out.extend_from_slice(br#"{"tenant_id":"#);
    json::string(out, &metadata.tenant_id);
    if let Some(key) = &metadata.sticky_key {
        out.extend_from_slice(br#","sticky_key":"#);
        json::string(out, key);
    }
    if let Some(attempt) = metadata.retry_attempt {
        out.extend_from_slice(br#","retry_attempt":"#);
        json::unsigned(out, attempt);
    }
    if let Some(max) = metadata.max_retries {
        out.extend_from_slice(br#","max_retries":"#);
        json::unsigned(out, u64::from(max));
    }
    out.push(b'}');
}

fn write_context(out: &mut Vec<u8>, context: ReplyContext<'_>) {
    out.extend_from_slice(br#"{"request_id":"#);
    match context.request_id {
        Some(id) => json::string(out, id),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(trace_id) = context.trace_id {
        out.extend_from_slice(br#","trace_id":"#);
        json::string(out, trace_id);
    }
    out.push(b'}');
}
