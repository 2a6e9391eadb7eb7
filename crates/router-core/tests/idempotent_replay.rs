//! Idempotent replay (CONTRACT §2 `idempotency_key`) through `Router::handle`: a repeat of
//! (tenant, key) gets the first decision while it is kept, in a bounded store.

mod common;

use common::*;
use router_core::{Outcome, RouterSettings};
use serde_json::{json, Value};

fn keyed(request: Value, key: &str) -> Value {
    set(request, "idempotency_key", json!(key))
}

#[test]
fn idempotent_replay() {
    let router = router();
    let first_handled = router.handle(&bytes(&keyed(base(), "k-1")), None, NOW, &mut rng(1));
    let first = parse(&first_handled);
    assert!(first.get("replayed").is_none(), "{first}");
    for seed in 2..30 {
        let again = keyed(set(base(), "request_id", json!(format!("r-{seed}"))), "k-1");
        let handled = router.handle(&bytes(&again), None, NOW + seed, &mut rng(seed));
        let reply = parse(&handled);
        assert_eq!(reply["replayed"], true);
        assert_eq!(reply["decision"], first["decision"], "the same decision");
        assert_eq!(reply["ok"], true);
        assert_eq!(
            reply["context"],
            json!({"request_id": format!("r-{seed}")}),
            "the context is the repeat's"
        );
        assert!(matches!(
            handled.outcome,
            Outcome::Decided { replayed: true, .. }
        ));
    }
    // A different key, or the same key for another tenant: a fresh decision.
    let other_key = send(&router, &keyed(base(), "k-2"));
    assert!(other_key.get("replayed").is_none());
    upsert(
        &router,
        "globex",
        "default",
        json!({"providers": [{"name": "g", "weight": 100}]}),
    );
    let other_tenant = send(&router, &keyed(base_for("globex"), "k-1"));
    assert!(other_tenant.get("replayed").is_none(), "{other_tenant}");
    assert_eq!(provider(&other_tenant), "g");
    // Replay is by (tenant, key) alone: a repeat naming another policy or carrying a past
    // deadline still gets the first decision.
    let reply = send(
        &router,
        &set(keyed(base(), "k-1"), "policy_id", json!("nope")),
    );
    assert_eq!(reply["replayed"], true);
    let reply = send(
        &router,
        &set(keyed(base(), "k-1"), "constraints.deadline", json!(0)),
    );
    assert_eq!(reply["replayed"], true);
    // But the repeat is still validated and authorised first.
    let reply = send(&router, &del(keyed(base(), "k-1"), "task.type"));
    assert_eq!(code(&reply), "invalid_request");
}

/// Replays last `idempotency_ttl_ms` from the first decision.
#[test]
fn idempotent_replay_expires() {
    let ttl = 10 * 60 * 1000;
    let router = router();
    assert_eq!(RouterSettings::default().idempotency_ttl_ms, ttl);
    let request = keyed(user(dt(), "u-1"), "k-1");
    let first = send_at(&router, &request, NOW);
    assert_eq!(reason(&first), "weighted");
    assert_eq!(send_at(&router, &request, NOW + ttl - 1)["replayed"], true);
    let fresh = send_at(&router, &request, NOW + ttl);
    assert!(fresh.get("replayed").is_none(), "{fresh}");
    assert_eq!(reason(&fresh), "weighted", "the sticky mapping expired too");
    assert_eq!(send_at(&router, &request, NOW + ttl + 1)["replayed"], true);

    let short = router_with(RouterSettings {
        idempotency_ttl_ms: 1_000,
        ..RouterSettings::default()
    });
    let request = keyed(base(), "k-1");
    send_at(&short, &request, NOW);
    assert_eq!(send_at(&short, &request, NOW + 999)["replayed"], true);
    assert!(send_at(&short, &request, NOW + 1_000)
        .get("replayed")
        .is_none());
}

/// Only decisions are remembered: a rejected first attempt does not block a later one.
#[test]
fn rejections_are_not_replayed() {
    let router = router();
    let request = set(keyed(base(), "k-1"), "policy_id", json!("later"));
    assert_eq!(code(&send(&router, &request)), "policy_not_found");
    upsert(
        &router,
        "acme",
        "later",
        json!({"providers": [{"name": "l", "weight": 100}]}),
    );
    let reply = send(&router, &request);
    assert!(reply.get("replayed").is_none());
    assert_eq!(provider(&reply), "l");
    assert_eq!(send(&router, &request)["replayed"], true);
}

/// The key store is bounded; the oldest key goes first.
#[test]
fn idempotency_store_is_bounded() {
    let router = router_with(RouterSettings {
        idempotency_capacity: 2,
        ..RouterSettings::default()
    });
    for key in ["k-1", "k-2", "k-3"] {
        send(&router, &keyed(base(), key));
    }
    assert_eq!(send(&router, &keyed(base(), "k-3"))["replayed"], true);
    assert_eq!(send(&router, &keyed(base(), "k-2"))["replayed"], true);
    assert!(send(&router, &keyed(base(), "k-1"))
        .get("replayed")
        .is_none());
}
