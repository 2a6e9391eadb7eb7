//! CONTRACT §4.3 step 2 through `Router::handle` with injected time: sticky sessions by
//! their session key, per tenant, for the policy's TTL, in a bounded store.

mod common;

use std::collections::HashMap;

use common::*;
use router_core::RouterSettings;
use serde_json::json;

const TEN_MINUTES: u64 = 10 * 60 * 1000;

#[test]
fn sticky_by_user_id() {
    let router = router();
    let first = send_rng(&router, &user(dt(), "u-1"), NOW, &mut rng(1));
    assert_eq!(reason(&first), "weighted");
    assert_eq!(first["decision"]["priority"], 50);
    assert_eq!(
        first["decision"]["metadata"],
        json!({"tenant_id": "default_tenant", "sticky_key": "user_id"}),
        "the key a mapping was recorded under"
    );
    let chosen = provider(&first).to_owned();
    assert_eq!(router.engine().sticky_sessions(NOW), 1);
    for seed in 2..52 {
        let reply = send_rng(&router, &user(dt(), "u-1"), NOW + seed, &mut rng(seed));
        assert_eq!(provider(&reply), chosen, "seed {seed}");
        assert_eq!(reason(&reply), "sticky");
        assert_eq!(reply["decision"]["priority"], 100);
        assert_eq!(
            reply["decision"]["metadata"],
            json!({"tenant_id": "default_tenant", "sticky_key": "user_id"})
        );
    }
    // The session key may come from constraints too; numbers are session values.
    let in_constraints = set(dt(), "constraints.user_id", json!("u-1"));
    assert_eq!(reason(&send(&router, &in_constraints)), "sticky");
    let numeric = set(dt(), "metadata.user_id", json!(42));
    assert_eq!(reason(&send(&router, &numeric)), "weighted");
    assert_eq!(reason(&send(&router, &numeric)), "sticky");
    // Other users get their own mapping; across many users both providers appear.
    let mut by_provider: HashMap<String, usize> = HashMap::new();
    for i in 0..200 {
        let reply = send_rng(&router, &user(dt(), &format!("v-{i}")), NOW, &mut rng(i));
        assert_eq!(reason(&reply), "weighted");
        *by_provider.entry(provider(&reply).to_owned()).or_default() += 1;
    }
    assert_eq!(by_provider.len(), 2, "{by_provider:?}");
}

/// No usable session value, no sticky: no mapping and no `sticky_key`.
#[test]
fn sticky_needs_a_session_value() {
    let router = router();
    for value in [
        json!(""),
        json!(null),
        json!(true),
        json!(["u-1"]),
        json!({"id": 1}),
    ] {
        for _ in 0..3 {
            let reply = send(&router, &set(dt(), "metadata.user_id", value.clone()));
            assert_eq!(reason(&reply), "weighted", "{value}");
            assert_eq!(
                reply["decision"]["metadata"],
                json!({"tenant_id": "default_tenant"})
            );
        }
    }
    assert_eq!(router.engine().sticky_sessions(NOW), 0);
    // globex has no sticky section: user ids are ignored.
    let reply = send(&router, &user(base_for("globex"), "u-1"));
    assert_eq!(
        reply["decision"]["metadata"],
        json!({"tenant_id": "globex"})
    );
    assert_eq!(router.engine().sticky_sessions(NOW), 0);
}

/// Sessions are per tenant: the same user id in another tenant starts afresh.
#[test]
fn sticky_sessions_are_per_tenant() {
    let router = router();
    assert_eq!(reason(&send(&router, &user(dt(), "u-1"))), "weighted");
    assert_eq!(reason(&send(&router, &user(dt(), "u-1"))), "sticky");
    assert_eq!(reason(&send(&router, &user(base(), "u-1"))), "weighted");
    assert_eq!(reason(&send(&router, &user(base(), "u-1"))), "sticky");
}

/// A mapping lives for the policy's TTL from when it was recorded; sticky hits do not extend
/// it.
#[test]
fn sticky_mapping_expires_after_the_ttl() {
    let router = router();
    let t0 = NOW;
    let at = |now: u64, seed: u64| send_rng(&router, &user(dt(), "u-1"), now, &mut rng(seed));
    let first = at(t0, 1);
    assert_eq!(reason(&first), "weighted");
    assert_eq!(reason(&at(t0 + TEN_MINUTES / 2, 2)), "sticky");
    assert_eq!(reason(&at(t0 + TEN_MINUTES - 1, 3)), "sticky");
    assert_eq!(
        reason(&at(t0 + TEN_MINUTES, 4)),
        "weighted",
        "expired at exactly the TTL"
    );
    // The new draw is recorded afresh.
    assert_eq!(reason(&at(t0 + TEN_MINUTES + 1, 5)), "sticky");
    assert_eq!(reason(&at(t0 + 2 * TEN_MINUTES - 1, 6)), "sticky");
    assert_eq!(reason(&at(t0 + 2 * TEN_MINUTES, 7)), "weighted");
}

/// The store is bounded; when full, the oldest mapping goes first.
#[test]
fn sticky_store_is_bounded_and_evicts_the_oldest() {
    let router = router_with(RouterSettings {
        sticky_capacity: 2,
        ..RouterSettings::default()
    });
    for (i, id) in ["u-1", "u-2", "u-3"].into_iter().enumerate() {
        assert_eq!(
            reason(&send_at(&router, &user(dt(), id), NOW + i as u64)),
            "weighted"
        );
    }
    assert_eq!(router.engine().sticky_sessions(NOW), 2);
    assert_eq!(reason(&send(&router, &user(dt(), "u-3"))), "sticky");
    assert_eq!(reason(&send(&router, &user(dt(), "u-2"))), "sticky");
    assert_eq!(
        reason(&send(&router, &user(dt(), "u-1"))),
        "weighted",
        "u-1 was the oldest and was evicted"
    );
    // Recording u-1 again evicted u-2, now the oldest.
    assert_eq!(reason(&send(&router, &user(dt(), "u-3"))), "sticky");
    assert_eq!(reason(&send(&router, &user(dt(), "u-2"))), "weighted");
    assert_eq!(router.engine().sticky_sessions(NOW), 2);
}

/// A mapping to a provider the policy no longer weights (or lists) is not used.
#[test]
fn sticky_mapping_to_a_provider_without_weight_is_skipped() {
    let router = router();
    upsert(
        &router,
        "acme",
        "two",
        json!({"providers": [{"name": "a", "weight": 100}, {"name": "b", "weight": 0}],
               "sticky": {"session_key": "user_id", "ttl_seconds": 60}}),
    );
    let request = user(set(base(), "policy_id", json!("two")), "u-1");
    assert_eq!(provider(&send(&router, &request)), "a");
    assert_eq!(reason(&send(&router, &request)), "sticky");
    upsert(
        &router,
        "acme",
        "two",
        json!({"providers": [{"name": "a", "weight": 0}, {"name": "b", "weight": 100}],
               "sticky": {"session_key": "user_id", "ttl_seconds": 60}}),
    );
    let reply = send(&router, &request);
    assert_eq!((provider(&reply), reason(&reply)), ("b", "weighted"));
    assert_eq!(reason(&send(&router, &request)), "sticky");
    upsert(
        &router,
        "acme",
        "two",
        json!({"providers": [{"name": "c", "weight": 100}],
               "sticky": {"session_key": "user_id", "ttl_seconds": 60}}),
    );
    let reply = send(&router, &request);
    assert_eq!((provider(&reply), reason(&reply)), ("c", "weighted"));
}

/// A custom `session_key` is read from the context.
#[test]
fn sticky_with_a_custom_session_key() {
    let router = router();
    upsert(
        &router,
        "acme",
        "by_session",
        json!({"providers": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}],
               "sticky": {"enabled": true, "session_key": "session", "ttl": "1h"}}),
    );
    let request = set(
        set(base(), "policy_id", json!("by_session")),
        "constraints.session",
        json!("s-9"),
    );
    let first = send_rng(&router, &request, NOW, &mut rng(1));
    for seed in 0..20 {
        let reply = send_rng(&router, &request, NOW + 3_599_999, &mut rng(seed));
        assert_eq!(provider(&reply), provider(&first));
        assert_eq!(reply["decision"]["metadata"]["sticky_key"], "session");
    }
    let reply = send_rng(&router, &request, NOW + 3_600_000, &mut rng(1));
    assert_eq!(reason(&reply), "weighted");
    // `user_id` means nothing to this policy.
    let other = set(
        set(base(), "policy_id", json!("by_session")),
        "metadata.user_id",
        json!("u"),
    );
    assert_eq!(
        send(&router, &other)["decision"]["metadata"],
        json!({"tenant_id": "acme"})
    );
}
