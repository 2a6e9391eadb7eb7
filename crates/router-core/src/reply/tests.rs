//! The success writer against the `serde` form of the same envelope: byte for byte.

use std::sync::Arc;

use proptest::prelude::*;

use super::{success, ReplyContext, Success};
use crate::decision::{Decision, DecisionMetadata, Reason};

fn reference(decision: &Decision, context: ReplyContext<'_>, replayed: bool) -> Vec<u8> {
    serde_json::to_vec(&Success {
        ok: true,
        decision,
        context,
        replayed,
    })
    .expect("the serde form encodes")
}

/// Text with what JSON must escape (quotes, backslashes, control characters) and what it
/// must not (slashes, non-ASCII).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._-]{0,24}",
        "[\\x00-\\x7f]{0,16}",
        "\\PC{0,12}",
        Just("\"\\/\u{7f}\u{2028}é\n\t\u{1}".to_owned()),
    ]
}

fn figure() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..100_000).prop_map(f64::from),
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        Just(9_007_199_254_740_993.0),
        (0.0f64..1.0),
    ]
}

prop_compose! {
    fn decision()(
        provider_id in text(),
        reason in prop::sample::select(Reason::ALL.to_vec()),
        latency in figure(),
        cost in figure(),
        policy_id in text(),
        decision_id in text(),
        fallbacks in prop::collection::vec(text(), 0..4),
        score in prop::option::of(figure()),
        tenant_id in text(),
        sticky_key in prop::option::of(text()),
        retry_attempt in prop::option::of(any::<u64>()),
        max_retries in prop::option::of(any::<u32>()),
    ) -> Decision {
        Decision {
            provider_id,
            reason,
            priority: reason.priority(),
            expected_latency_ms: latency,
            expected_cost: cost,
            policy_id,
            decision_id,
            fallbacks: Arc::from(fallbacks),
            score,
            metadata: DecisionMetadata { tenant_id, sticky_key, retry_attempt, max_retries },
        }
    }
}

proptest! {
    #[test]
    fn the_success_writer_writes_what_serde_writes(
        decision in decision(),
        request_id in prop::option::of(text()),
        trace_id in prop::option::of(text()),
        replayed in any::<bool>(),
    ) {
        let context = ReplyContext {
            request_id: request_id.as_deref(),
            trace_id: trace_id.as_deref(),
        };
        let ours = success::encode(&decision, context, replayed);
        let theirs = reference(&decision, context, replayed);
        prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
    }
}

#[test]
fn a_typical_reply_fits_one_allocation() {
    let decision = Decision {
        provider_id: "openai".to_owned(),
        reason: Reason::Weighted,
        priority: 50,
        expected_latency_ms: 850.0,
        expected_cost: 0.002,
        policy_id: "default".to_owned(),
        decision_id: "dec-default-0000019ad2b0e400-4bf92f3577b34da6".to_owned(),
        fallbacks: Arc::from(vec!["anthropic".to_owned(), "local".to_owned()]),
        score: None,
        metadata: DecisionMetadata {
            tenant_id: "default_tenant".to_owned(),
            sticky_key: None,
            retry_attempt: None,
            max_retries: None,
        },
    };
    let context = ReplyContext {
        request_id: Some("8f2c1a4e-0b7d-4e34-9a61-2f0c5d9e7b13"),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
    };
    let reply = success::encode(&decision, context, false);
    assert_eq!(reply, reference(&decision, context, false));
    assert_eq!(
        reply.capacity(),
        success::TYPICAL_LEN,
        "grew past one allocation at {} bytes",
        reply.len()
    );
}
