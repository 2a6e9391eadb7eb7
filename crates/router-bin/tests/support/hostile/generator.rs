//! [`Generator`]: builds the hostile bodies from one seed, each with the reply it must get;
//! the categories add their bodies in the files beside this one. [`hostile_cases`] is the
//! whole set, shuffled.

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};

use super::expect::Expect;

/// The seed of every generated body.
pub const SEED: u64 = 0x5EED_B0D1_E5AA_0001;
/// The router's body limit (CONTRACT §2).
pub const MAX_BODY: usize = 1024 * 1024;
/// Nesting depth of the deep bodies.
pub const DEEP: usize = 100_000;
/// Elements of the huge arrays.
pub const HUGE: usize = 200_000;

/// One generated body.
pub struct Case {
    pub category: &'static str,
    pub body: Bytes,
    pub expect: Expect,
}

/// Builds the bodies.
pub struct Generator {
    pub rng: SmallRng,
    pub next_id: u64,
    pub cases: Vec<Case>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: SmallRng::seed_from_u64(seed),
            next_id: 0,
            cases: Vec::new(),
        }
    }

    pub fn id(&mut self) -> String {
        self.next_id += 1;
        format!("h-{}", self.next_id)
    }

    pub fn push(&mut self, category: &'static str, body: impl Into<Vec<u8>>, expect: Expect) {
        self.cases.push(Case {
            category,
            body: Bytes::from(body.into()),
            expect,
        });
    }

    /// A request with every optional field set, valid for tenant `acme`.
    pub fn full(&mut self) -> (String, Value) {
        let id = self.id();
        let body = json!({
            "version": "1",
            "request_id": id,
            "tenant_id": "acme",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "task": {"type": "text.generate", "payload": {"prompt": "hello world"}},
            "policy_id": "default",
            "constraints": {"region": "eu"},
            "metadata": {"source": "hostile"},
            "run_id": "0b7c6f7e-5d0a-4c1e-9f3b-2a1d4e5f6a7b",
            "flow_id": "8a2d4c6e-1b3f-4a5c-8d7e-9f0a1b2c3d4e",
            "step_id": "01HZY3M7K9Q2W4E6R8T0Y2V4X6",
            "idempotency_key": format!("key-{id}"),
        });
        (id, body)
    }

    /// The gateway shape: `message` instead of `task`, the id in `message.message_id`.
    pub fn message(&mut self) -> (String, Value) {
        let id = self.id();
        let body = json!({
            "version": "1",
            "tenant_id": "acme",
            "message": {"message_type": "chat", "payload": {"prompt": "hello world"}, "message_id": id},
        });
        (id, body)
    }

    /// A minimal valid request.
    pub fn simple(&mut self, tenant: &str) -> (String, Value) {
        let id = self.id();
        let body = json!({
            "request_id": id,
            "tenant_id": tenant,
            "task": {"type": "text.generate", "payload": {"prompt": "hello world"}},
        });
        (id, body)
    }
}

/// Every generated body, shuffled (same seed, same order every run).
pub fn hostile_cases() -> Vec<Case> {
    let mut generator = Generator::new(SEED);
    generator.random_bytes(4_000);
    generator.invalid_utf8(1_500);
    generator.truncated(2_000);
    generator.wrong_types();
    generator.numbers(90);
    generator.duplicate_keys(150);
    generator.nul_bytes(500);
    generator.deep_nesting();
    generator.big_strings(4);
    generator.huge_arrays(5);
    generator.right_codes(200);
    let mut cases = generator.cases;
    cases.shuffle(&mut SmallRng::seed_from_u64(SEED ^ 2));
    cases
}

/// `body` as text with the value of top-level `field` replaced by raw JSON text `raw`.
pub fn replace_value(body: &Value, field: &str, raw: &str) -> String {
    let mut body = body.clone();
    body[field] = json!("\u{1}placeholder\u{1}");
    body.to_string()
        .replacen("\"\\u0001placeholder\\u0001\"", raw, 1)
}

/// Sets a dot-separated path, creating objects on the way.
pub fn set_path(body: &mut Value, path: &str, value: Value) {
    let mut node = body;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        if segments.peek().is_none() {
            node[segment] = value;
            return;
        }
        if !node[segment].is_object() {
            node[segment] = json!({});
        }
        node = &mut node[segment];
    }
}
