//! Readable requests with wrong values: every field with every wrong JSON type, numbers out
//! of range, duplicate keys and NUL bytes.

use rand::Rng;
use serde_json::{json, Value};

use super::expect::{Echo, Expect, CORRELATION, SCHEMA, VERSION};
use super::generator::{replace_value, Generator};

impl Generator {
    /// Every field of the DecideRequest with every JSON type it must not have. `null` counts
    /// as an absent field (what JSON encoders write for a missing optional value), so a null
    /// optional field still gets a decision and a null required one is "missing".
    pub fn wrong_types(&mut self) {
        let bools = [json!(true), json!(false)];
        let numbers = [
            json!(0),
            json!(-1),
            json!(1.5),
            Value::from(u64::MAX),
            json!(-9_007_199_254_740_993_i64),
        ];
        let strings = [json!(""), json!("x"), json!("{}")];
        let arrays = [json!([]), json!([1, "a"]), json!([[[]]])];
        let objects = [json!({}), json!({"a": 1})];
        let not_string: Vec<Value> = bools
            .iter()
            .chain(&numbers)
            .chain(&arrays)
            .chain(&objects)
            .cloned()
            .collect();
        let not_object: Vec<Value> = bools
            .iter()
            .chain(&numbers)
            .chain(&strings)
            .chain(&arrays)
            .cloned()
            .collect();

        // Top-level string fields of the full request: (field, intake code, what a null
        // is: `None` absent and fine, or the (intake code, field) of the error).
        type NullMeans = Option<(&'static str, &'static str)>;
        let string_fields: [(&str, &str, NullMeans); 9] = [
            ("version", VERSION, None),
            ("request_id", SCHEMA, Some((CORRELATION, "request_id"))),
            ("tenant_id", SCHEMA, Some((CORRELATION, "tenant_id"))),
            ("trace_id", SCHEMA, None),
            ("policy_id", SCHEMA, None),
            ("run_id", SCHEMA, Some((CORRELATION, "run_id"))),
            ("flow_id", SCHEMA, Some((CORRELATION, "flow_id"))),
            ("step_id", SCHEMA, Some((CORRELATION, "step_id"))),
            ("idempotency_key", SCHEMA, None),
        ];
        for (field, intake, when_null) in string_fields {
            let mut values = not_string.clone();
            if field == "version" {
                values.extend([json!("2"), json!("1.0"), json!(""), json!(" 1")]);
            }
            for value in values {
                let (id, mut body) = self.full();
                body[field] = value;
                let echo = if field == "request_id" {
                    Echo::Null
                } else {
                    Echo::Id(id)
                };
                self.push(
                    "wrong JSON type",
                    body.to_string(),
                    Expect::invalid(intake, Some(field), echo),
                );
            }
            let (id, mut body) = self.full();
            body[field] = Value::Null;
            let expect = match (field, when_null) {
                ("request_id", Some((intake, field))) => {
                    Expect::invalid(intake, Some(field), Echo::Null)
                }
                (_, Some((intake, field))) => Expect::invalid(intake, Some(field), Echo::Id(id)),
                (_, None) => Expect::decision(Echo::Id(id)),
            };
            self.push("wrong JSON type", body.to_string(), expect);
        }

        // Top-level object fields of the full request.
        for field in ["task", "constraints", "metadata"] {
            for value in &not_object {
                let (id, mut body) = self.full();
                body[field] = value.clone();
                self.push(
                    "wrong JSON type",
                    body.to_string(),
                    Expect::invalid(SCHEMA, Some(field), Echo::Id(id)),
                );
            }
            let (id, mut body) = self.full();
            body[field] = Value::Null;
            let expect = if field == "task" {
                Expect::invalid(SCHEMA, Some("task"), Echo::Id(id))
            } else {
                Expect::decision(Echo::Id(id))
            };
            self.push("wrong JSON type", body.to_string(), expect);
        }

        // Inside task (inline payload), and task.payload_ref in place of the payload.
        for value in not_string.iter().chain([&Value::Null]) {
            let (id, mut body) = self.full();
            body["task"]["type"] = value.clone();
            let expect = if value.is_null() {
                Expect::invalid(CORRELATION, Some("task.type"), Echo::Id(id))
            } else {
                Expect::invalid(SCHEMA, Some("task.type"), Echo::Id(id))
            };
            self.push("wrong JSON type", body.to_string(), expect);

            let (id, mut body) = self.full();
            body["task"] = json!({"type": "text.generate", "payload_ref": value});
            let expect = if value.is_null() {
                Expect::invalid(SCHEMA, Some("task.payload"), Echo::Id(id))
            } else {
                Expect::invalid(SCHEMA, Some("task.payload_ref"), Echo::Id(id))
            };
            self.push("wrong JSON type", body.to_string(), expect);
        }
        for value in not_object.iter().chain([&Value::Null]) {
            let (id, mut body) = self.full();
            body["task"]["payload"] = value.clone();
            self.push(
                "wrong JSON type",
                body.to_string(),
                Expect::invalid(SCHEMA, Some("task.payload"), Echo::Id(id)),
            );
        }

        // The gateway shape: message and its fields.
        for value in not_object.iter().chain([&Value::Null]) {
            let (_, mut body) = self.message();
            body["message"] = value.clone();
            let expect = if value.is_null() {
                Expect::invalid(CORRELATION, Some("request_id"), Echo::Null)
            } else {
                Expect::invalid(SCHEMA, Some("message"), Echo::Null)
            };
            self.push("wrong JSON type", body.to_string(), expect);

            let (id, mut body) = self.message();
            body["message"]["payload"] = value.clone();
            self.push(
                "wrong JSON type",
                body.to_string(),
                Expect::invalid(SCHEMA, Some("message.payload"), Echo::Id(id)),
            );
        }
        for value in not_string.iter().chain([&Value::Null]) {
            let (id, mut body) = self.message();
            body["message"]["message_type"] = value.clone();
            let expect = if value.is_null() {
                Expect::invalid(CORRELATION, Some("message.message_type"), Echo::Id(id))
            } else {
                Expect::invalid(SCHEMA, Some("message.message_type"), Echo::Id(id))
            };
            self.push("wrong JSON type", body.to_string(), expect);

            let (_, mut body) = self.message();
            body["message"]["message_id"] = value.clone();
            let expect = if value.is_null() {
                Expect::invalid(CORRELATION, Some("request_id"), Echo::Null)
            } else {
                Expect::invalid(SCHEMA, Some("message.message_id"), Echo::Null)
            };
            self.push("wrong JSON type", body.to_string(), expect);
        }
    }

    /// Numbers out of range where numbers are read.
    /// Numbers no f64 or integer type holds, in every kind of place.
    pub fn numbers(&mut self, rounds: usize) {
        const OUT_OF_RANGE: [&str; 4] = ["1e400", "-1e400", "1E+309", "-1.7976931348623157e309"];
        const IN_RANGE: [&str; 5] = [
            "123456789012345678901234567890",
            "-123456789012345678901234567890",
            "18446744073709551616",
            "1e-400",
            "-0",
        ];
        for round in 0..rounds {
            let all: Vec<&str> = OUT_OF_RANGE.iter().chain(&IN_RANGE).copied().collect();
            let number = all[round % all.len()];
            let huge = OUT_OF_RANGE.contains(&number);

            // The whole body.
            self.push("numbers", number, Expect::invalid(SCHEMA, None, Echo::Null));
            // In string fields.
            let (id, body) = self.full();
            let text = replace_value(&body, "tenant_id", number);
            self.push(
                "numbers",
                text,
                Expect::invalid(SCHEMA, Some("tenant_id"), Echo::Id(id)),
            );
            let (_, body) = self.full();
            let text = replace_value(&body, "request_id", number);
            self.push(
                "numbers",
                text,
                Expect::invalid(SCHEMA, Some("request_id"), Echo::Null),
            );
            let (id, body) = self.full();
            let text = replace_value(&body, "version", number);
            self.push(
                "numbers",
                text,
                Expect::invalid(VERSION, Some("version"), Echo::Id(id)),
            );
            // As the deadline: out of range cannot be read (invalid), in range is a time.
            let (id, mut body) = self.simple("acme");
            body["constraints"] = json!({"deadline": "@"});
            let text = body.to_string().replace("\"@\"", number);
            let expect = if huge {
                Expect::invalid(SCHEMA, Some("constraints"), Echo::Id(id))
            } else if number.starts_with('-') || number == "1e-400" {
                Expect::code("deadline_exceeded", Echo::Id(id))
            } else {
                Expect::decision(Echo::Id(id))
            };
            self.push("numbers", text, expect);
            // In metadata (parsed) and in the payload (opaque JSON, kept as text).
            let (id, mut body) = self.simple("acme");
            body["metadata"] = json!({"n": "@"});
            let text = body.to_string().replace("\"@\"", number);
            let expect = if huge {
                Expect::invalid(SCHEMA, Some("metadata"), Echo::Id(id))
            } else {
                Expect::decision(Echo::Id(id))
            };
            self.push("numbers", text, expect);
            let (id, mut body) = self.simple("acme");
            body["task"]["payload"] = json!({"n": "@", "prompt": "hello"});
            let text = body.to_string().replace("\"@\"", number);
            self.push("numbers", text, Expect::decision(Echo::Id(id)));
        }
    }

    /// Duplicate keys, at the top level and inside objects.
    /// The same key twice: at the top level (every field) and inside task / message.
    pub fn duplicate_keys(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let (_, body) = self.full();
            let Value::Object(map) = &body else {
                unreachable!("the full request is an object")
            };
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = &keys[self.rng.random_range(0..keys.len())];
            // `{"key": <same value>, ...rest}`: the key appears twice.
            let text = body.to_string();
            let duplicate = format!("{{\"{key}\":{},{}", map[key], &text[1..]);
            self.push(
                "duplicate keys",
                duplicate,
                Expect::invalid(SCHEMA, None, Echo::Null),
            );

            let (id, body) = self.full();
            let text = body
                .to_string()
                .replacen("\"task\":{", "\"task\":{\"type\":\"other\",", 1);
            self.push(
                "duplicate keys",
                text,
                Expect::invalid(SCHEMA, Some("task"), Echo::Id(id)),
            );

            let (_, body) = self.message();
            let text = body.to_string().replacen(
                "\"message\":{",
                "\"message\":{\"message_type\":\"other\",",
                1,
            );
            self.push(
                "duplicate keys",
                text,
                Expect::invalid(SCHEMA, Some("message"), Echo::Null),
            );
        }
    }

    /// NUL bytes in strings and keys.
    /// Raw NUL bytes (never valid JSON) and escaped ones (valid JSON, judged by the rules).
    pub fn nul_bytes(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let (_, body) = self.full();
            let mut text = body.to_string().into_bytes();
            let at = self.rng.random_range(0..=text.len());
            let run = self.rng.random_range(1..4);
            text.splice(at..at, std::iter::repeat_n(0u8, run));
            self.push("NUL bytes", text, Expect::invalid(SCHEMA, None, Echo::Null));
        }
        let n = rounds / 8 + 1;
        for _ in 0..n {
            self.push(
                "NUL bytes",
                vec![0u8; 64],
                Expect::invalid(SCHEMA, None, Echo::Null),
            );

            // Escaped NUL: a legal request id (echoed back exactly), task type, key...
            let (id, mut body) = self.simple("acme");
            let with_nul = format!("{id}\u{0}x");
            body["request_id"] = json!(with_nul);
            self.push(
                "NUL bytes",
                body.to_string(),
                Expect::decision(Echo::Id(with_nul)),
            );
            let (id, mut body) = self.simple("acme");
            body["task"]["type"] = json!("text\u{0}generate");
            body["idempotency_key"] = json!(format!("k\u{0}{id}"));
            self.push(
                "NUL bytes",
                body.to_string(),
                Expect::decision(Echo::Id(id)),
            );
            // ... but not a tenant id, trace id or run id, and no policy has that name.
            let (id, mut body) = self.full();
            body["tenant_id"] = json!("ac\u{0}me");
            self.push(
                "NUL bytes",
                body.to_string(),
                Expect::invalid(CORRELATION, Some("tenant_id"), Echo::Id(id)),
            );
            let (id, mut body) = self.full();
            body["trace_id"] = json!("4bf92f3577b34da6a3ce929d0e0e473\u{0}");
            self.push(
                "NUL bytes",
                body.to_string(),
                Expect::invalid(CORRELATION, Some("trace_id"), Echo::Id(id)),
            );
            let (id, mut body) = self.full();
            body["run_id"] = json!("0b7c6f7e-5d0a-4c1e-9f3b-2a1d4e5f6a7\u{0}");
            self.push(
                "NUL bytes",
                body.to_string(),
                Expect::invalid(CORRELATION, Some("run_id"), Echo::Id(id)),
            );
            let (id, mut body) = self.full();
            body["policy_id"] = json!("default\u{0}");
            self.push(
                "NUL bytes",
                body.to_string(),
                Expect::code("policy_not_found", Echo::Id(id)),
            );
        }
    }
}
