//! Valid requests that must get a decision or one of the other error codes (unknown
//! tenant or policy, past deadline).

use rand::Rng;
use serde_json::json;

use super::expect::{Echo, Expect, CORRELATION};
use super::generator::Generator;

impl Generator {
    /// Well-formed requests that must get the other codes, or a decision.
    pub fn right_codes(&mut self, rounds: usize) {
        for i in 0..rounds {
            let tenant = format!("tenant-{}", self.rng.random_range(0..1_000_000));
            let (id, body) = self.simple(&tenant);
            self.push(
                "unknown tenant or policy",
                body.to_string(),
                Expect::code("policy_not_found", Echo::Id(id)),
            );
            let (id, mut body) = self.simple("acme");
            body["policy_id"] = json!(format!("nope-{i}"));
            self.push(
                "unknown tenant or policy",
                body.to_string(),
                Expect::code("policy_not_found", Echo::Id(id)),
            );
            let (id, mut body) = self.simple("acme");
            body["constraints"] = json!({"deadline": self.rng.random_range(0..1_000_000_000u64)});
            self.push(
                "past deadline",
                body.to_string(),
                Expect::code("deadline_exceeded", Echo::Id(id)),
            );
            let bad_tenants = ["acme!", "ac me", "acm\u{e9}", "", "a/b"];
            let (id, mut body) = self.simple("acme");
            body["tenant_id"] = json!(bad_tenants[i % bad_tenants.len()]);
            self.push(
                "malformed identifiers",
                body.to_string(),
                Expect::invalid(CORRELATION, Some("tenant_id"), Echo::Id(id)),
            );
            let (_, mut body) = self.simple("acme");
            body["request_id"] = json!(if i % 2 == 0 {
                String::new()
            } else {
                "r".repeat(257)
            });
            self.push(
                "malformed identifiers",
                body.to_string(),
                Expect::invalid(CORRELATION, Some("request_id"), Echo::Null),
            );
            let (id, mut body) = self.simple("default_tenant");
            body["trace_id"] = json!("550e8400-e29b-41d4-a716-446655440000");
            self.push("valid", body.to_string(), Expect::decision(Echo::Id(id)));
        }
    }
}
