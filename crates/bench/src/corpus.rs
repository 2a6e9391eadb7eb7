//! The requests the bench sends: a deterministic mix of decide requests.
//!
//! Request `n` is always the same bytes, so two runs send the same traffic. The mix covers
//! three tenants with the `default` policy, sticky users (a bounded pool of `user_id`s per
//! tenant), requests without a session key (pure weighted draw), requests with a W3C
//! `trace_id`, and the gateway `message` shape (whose `message_id` stands for `request_id`).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Tenants exercised by the corpus; each needs `config/policies/<tenant>/default.json`.
pub const TENANTS: [&str; 3] = ["default_tenant", "acme", "globex"];

/// The policy every request asks for (explicitly or by default).
pub const POLICY_ID: &str = "default";

/// Sticky users per tenant unless `router-bench --users` says otherwise.
pub const DEFAULT_USERS: u64 = 100;

/// The shape of request `n` (cycle of ten).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `task` with a sticky `constraints.user_id`.
    TaskSticky,
    /// `task` with an explicit `policy_id` and no session key.
    TaskNoSession,
    /// `task` with a sticky user and a `trace_id`.
    TaskTraced,
    /// Gateway `message` shape with a sticky user.
    GatewayMessage,
}

impl Shape {
    /// The shape used for request number `n`.
    pub fn of(n: u64) -> Shape {
        match n % 10 {
            0..=4 => Shape::TaskSticky,
            5 => Shape::TaskNoSession,
            6 | 7 => Shape::TaskTraced,
            _ => Shape::GatewayMessage,
        }
    }
}

/// Hands out request bodies in sequence; shared by all requesters of a phase.
#[derive(Debug)]
pub struct Corpus {
    next: AtomicU64,
    users: u64,
}

impl Corpus {
    /// A corpus whose sticky users are `u-0` .. `u-<users - 1>` (at least one).
    pub fn new(users: u64) -> Self {
        Self {
            next: AtomicU64::new(0),
            users: users.max(1),
        }
    }

    /// The next request body.
    pub fn next_body(&self) -> Bytes {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Bytes::from(self.body(n))
    }

    /// The body of request number `n`.
    pub fn body(&self, n: u64) -> String {
        // 10 shapes and 3 tenants are coprime: every tenant sees every shape.
        let tenant = TENANTS[(n % TENANTS.len() as u64) as usize];
        let user = (n / TENANTS.len() as u64) % self.users;
        let task = r#""task":{"type":"text.generate","payload":{"prompt":"hello world"}}"#;
        match Shape::of(n) {
            Shape::TaskSticky => format!(
                r#"{{"version":"1","request_id":"r-{n}","tenant_id":"{tenant}",{task},"constraints":{{"user_id":"u-{user}"}}}}"#
            ),
            Shape::TaskNoSession => format!(
                r#"{{"version":"1","request_id":"r-{n}","tenant_id":"{tenant}","policy_id":"{POLICY_ID}",{task}}}"#
            ),
            Shape::TaskTraced => format!(
                r#"{{"version":"1","request_id":"r-{n}","tenant_id":"{tenant}","trace_id":"{trace}",{task},"constraints":{{"user_id":"u-{user}"}}}}"#,
                trace = trace_id(n)
            ),
            Shape::GatewayMessage => format!(
                r#"{{"version":"1","tenant_id":"{tenant}","message":{{"message_id":"r-{n}","message_type":"text.generate","payload":{{"prompt":"hello world"}}}},"constraints":{{"user_id":"u-{user}"}}}}"#
            ),
        }
    }
}

/// A valid, never all-zero W3C trace id (32 lowercase hex digits) derived from `n`.
fn trace_id(n: u64) -> String {
    let mixed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    format!("4bf92f3577b34da6{mixed:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn parse(body: &str) -> Value {
        serde_json::from_str(body).expect("corpus bodies are JSON")
    }

    #[test]
    fn every_body_carries_the_contract_fields() {
        let corpus = Corpus::new(10);
        for n in 0..300 {
            let v = parse(&corpus.body(n));
            assert_eq!(v["version"], "1");
            let tenant = v["tenant_id"].as_str().expect("tenant_id");
            assert!(TENANTS.contains(&tenant));
            let id = format!("r-{n}");
            match Shape::of(n) {
                Shape::GatewayMessage => {
                    assert_eq!(v["message"]["message_id"], id.as_str());
                    assert_eq!(v["message"]["message_type"], "text.generate");
                    assert!(v["message"]["payload"].is_object());
                    assert!(v.get("task").is_none());
                }
                _ => {
                    assert_eq!(v["request_id"], id.as_str());
                    assert_eq!(v["task"]["type"], "text.generate");
                    // min_payload_size is 10 bytes of compact JSON.
                    assert!(v["task"]["payload"].to_string().len() >= 10);
                }
            }
        }
    }

    #[test]
    fn mix_covers_tenants_shapes_users_and_traces() {
        let corpus = Corpus::new(5);
        let mut combos = BTreeSet::new();
        let mut users = BTreeSet::new();
        let mut traced = 0;
        for n in 0..300 {
            let v = parse(&corpus.body(n));
            combos.insert((v["tenant_id"].to_string(), format!("{:?}", Shape::of(n))));
            if let Some(u) = v["constraints"]["user_id"].as_str() {
                users.insert((v["tenant_id"].to_string(), u.to_owned()));
            }
            if let Some(t) = v["trace_id"].as_str() {
                traced += 1;
                assert_eq!(t.len(), 32);
                assert!(t
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            }
        }
        assert_eq!(combos.len(), 3 * 4, "every tenant sees every shape");
        // A bounded user pool: sticky users repeat.
        assert_eq!(users.len(), 3 * 5);
        assert_eq!(traced, 60);
    }

    #[test]
    fn sequence_is_deterministic_and_ids_unique() {
        let a = Corpus::new(100);
        let b = Corpus::new(100);
        let mut seen = BTreeSet::new();
        for _ in 0..50 {
            let body = a.next_body();
            assert_eq!(body, b.next_body());
            assert!(seen.insert(body));
        }
    }
}
