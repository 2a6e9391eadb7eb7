//! Bodies at and past the size limits: nesting 100,000 deep, strings of about 1 MiB on both
//! sides of the body limit, and huge arrays.

use serde_json::json;

use super::expect::{Echo, Expect, CORRELATION, SCHEMA, VERSION};
use super::generator::{replace_value, set_path, Generator, DEEP, HUGE, MAX_BODY};

impl Generator {
    /// Nesting [`DEEP`] levels deep, at the top and in every object field.
    /// Nesting 100,000 deep at the top level, in task.payload, message.payload,
    /// constraints, metadata, in string fields and in an ignored field.
    pub fn deep_nesting(&mut self) {
        let arrays = format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP));
        let objects = format!("{}1{}", "{\"a\":".repeat(DEEP), "}".repeat(DEEP));
        let unclosed = "[".repeat(DEEP);
        for deep in [&arrays, &objects] {
            let top_expect = if deep.starts_with('[') {
                // Not an object.
                Expect::invalid(SCHEMA, None, Echo::Null)
            } else {
                // Valid JSON whose only key is unknown: the request id is missing.
                Expect::invalid(CORRELATION, Some("request_id"), Echo::Null)
            };
            self.push("deep nesting", deep.clone(), top_expect);

            let in_object = format!("{{\"deep\":{deep}}}");
            for (path, field) in [
                ("task.payload", "task.payload"),
                ("constraints", "constraints"),
                ("metadata", "metadata"),
            ] {
                let (id, mut body) = self.simple("acme");
                set_path(&mut body, path, json!("@"));
                let text = body.to_string().replace("\"@\"", &in_object);
                self.push(
                    "deep nesting",
                    text,
                    Expect::invalid(SCHEMA, Some(field), Echo::Id(id)),
                );
            }
            let (id, mut body) = self.message();
            body["message"]["payload"] = json!("@");
            let text = body.to_string().replace("\"@\"", &in_object);
            self.push(
                "deep nesting",
                text,
                Expect::invalid(SCHEMA, Some("message.payload"), Echo::Id(id)),
            );
            // As the value of string fields.
            let (id, body) = self.full();
            self.push(
                "deep nesting",
                replace_value(&body, "tenant_id", deep),
                Expect::invalid(SCHEMA, Some("tenant_id"), Echo::Id(id)),
            );
            let (id, body) = self.full();
            self.push(
                "deep nesting",
                replace_value(&body, "version", deep),
                Expect::invalid(VERSION, Some("version"), Echo::Id(id)),
            );
            // In a field the router ignores (CONTRACT §2: unknown fields are ignored).
            let (id, mut body) = self.simple("acme");
            body["unknown"] = json!("@");
            let text = body.to_string().replace("\"@\"", deep);
            self.push("deep nesting", text, Expect::decision(Echo::Id(id)));
        }
        self.push(
            "deep nesting",
            unclosed.clone(),
            Expect::invalid(SCHEMA, None, Echo::Null),
        );
        let (_, mut body) = self.simple("acme");
        body["task"]["payload"] = json!("@");
        let text = body
            .to_string()
            .replace("\"@\"", &format!("{{\"d\":{unclosed}"));
        self.push(
            "deep nesting",
            text,
            Expect::invalid(SCHEMA, None, Echo::Null),
        );
    }

    /// Strings of about 1 MiB, just under and just over the body limit.
    /// Strings of about 1 MiB: over the limit (rejected before parsing) and just under it.
    pub fn big_strings(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let big = "x".repeat(MAX_BODY);
            for path in ["request_id", "task.payload.prompt", "unknown", "tenant_id"] {
                let (_, mut body) = self.simple("acme");
                set_path(&mut body, path, json!(big));
                self.push(
                    "1 MiB strings",
                    body.to_string(),
                    Expect::invalid(SCHEMA, None, Echo::Null),
                );
            }
            // Just under the limit: judged by the field rules.
            let under = "y".repeat(MAX_BODY - 1024);
            let (_, mut body) = self.simple("acme");
            body["request_id"] = json!(under);
            self.push(
                "1 MiB strings",
                body.to_string(),
                Expect::invalid(CORRELATION, Some("request_id"), Echo::Null),
            );
            let (id, mut body) = self.simple("acme");
            body["tenant_id"] = json!(under);
            self.push(
                "1 MiB strings",
                body.to_string(),
                Expect::invalid(CORRELATION, Some("tenant_id"), Echo::Id(id)),
            );
            let (id, mut body) = self.simple("acme");
            body["task"]["payload"]["prompt"] = json!(under);
            self.push(
                "1 MiB strings",
                body.to_string(),
                Expect::decision(Echo::Id(id)),
            );
            // Escapes: 1/6 of the bytes once decoded, but the limit is on the bytes sent.
            let (_, mut body) = self.simple("acme");
            body["task"]["payload"]["prompt"] = json!("@");
            let escaped = "\\u00e9".repeat(MAX_BODY / 6 + 1);
            let text = body.to_string().replace("@", &escaped);
            self.push(
                "1 MiB strings",
                text,
                Expect::invalid(SCHEMA, None, Echo::Null),
            );
        }
        // Exactly at the limit: accepted; one byte more: rejected.
        for extra in [0usize, 1] {
            let (id, mut body) = self.simple("acme");
            body["task"]["payload"]["prompt"] = json!("");
            let base_len = body.to_string().len();
            body["task"]["payload"]["prompt"] = json!("z".repeat(MAX_BODY - base_len + extra));
            let text = body.to_string();
            assert_eq!(text.len(), MAX_BODY + extra);
            let expect = if extra == 0 {
                Expect::decision(Echo::Id(id))
            } else {
                Expect::invalid(SCHEMA, None, Echo::Null)
            };
            self.push("1 MiB strings", text, expect);
        }
    }

    /// Arrays of [`HUGE`] elements in the fields.
    /// Arrays of 200,000 elements where arrays are wrong and where any JSON is fine.
    pub fn huge_arrays(&mut self, rounds: usize) {
        for round in 0..rounds {
            let element = ["0", "null", "\"s\"", "[]", "{}"][round % 5];
            let huge = format!("[{}]", vec![element; HUGE].join(","));
            self.push(
                "huge arrays",
                huge.clone(),
                Expect::invalid(SCHEMA, None, Echo::Null),
            );
            for field in ["request_id", "tenant_id"] {
                let (id, body) = self.full();
                let echo = if field == "request_id" {
                    Echo::Null
                } else {
                    Echo::Id(id)
                };
                self.push(
                    "huge arrays",
                    replace_value(&body, field, &huge),
                    Expect::invalid(SCHEMA, Some(field), echo),
                );
            }
            let (id, body) = self.full();
            self.push(
                "huge arrays",
                replace_value(&body, "task", &huge),
                Expect::invalid(SCHEMA, Some("task"), Echo::Id(id)),
            );
            for path in ["task.payload.items", "constraints.items", "metadata.items"] {
                let (id, mut body) = self.simple("acme");
                set_path(&mut body, path, json!("@"));
                let text = body.to_string().replace("\"@\"", &huge);
                self.push("huge arrays", text, Expect::decision(Echo::Id(id)));
            }
        }
    }
}
