//! Hostile JSON: nesting 100,000 deep and huge numbers, in every place of a request and in
//! feedback, get the expected reply without a stack overflow. CONTRACT §3: no input may
//! crash, hang or go unanswered.

mod common;

use common::any_reply::check;
use common::*;
use serde_json::json;

const DEEP: usize = 100_000;

fn deep_lists() -> String {
    format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP))
}

fn deep_objects() -> String {
    format!("{}1{}", r#"{"a":"#.repeat(DEEP), "}".repeat(DEEP))
}

/// `base()` with `field` set to the raw JSON text `value`.
fn with_raw(field: &str, value: &str) -> Vec<u8> {
    let mut request = base();
    let marker = "\u{0}MARKER\u{0}";
    request = set(request, field, json!(marker));
    let text = serde_json::to_string(&request).expect("serialisable");
    text.replace(&format!("\"{}\"", "\\u0000MARKER\\u0000"), value)
        .into_bytes()
}

struct Hostile {
    name: String,
    body: Vec<u8>,
    /// `None`: a decision; `Some((intake, field, request_id))`: that `invalid_request`.
    expect: Option<(&'static str, Option<&'static str>, Option<&'static str>)>,
}

fn hostile_rows() -> Vec<Hostile> {
    const SCHEMA: &str = "SCHEMA_VALIDATION_FAILED";
    let mut rows = Vec::new();
    for (shape, deep) in [("lists", deep_lists()), ("objects", deep_objects())] {
        let row = |name: &str, body: Vec<u8>, expect| Hostile {
            name: format!("{name} ({shape} nested {DEEP} deep)"),
            body,
            expect,
        };
        rows.push(row("top level", deep.clone().into_bytes(), {
            if shape == "lists" {
                Some((SCHEMA, None, None))
            } else {
                // {"a": {"a": ...}}: an unknown field; the request has no request_id.
                Some(("CORRELATION_FIELDS_INVALID", Some("request_id"), None))
            }
        }));
        rows.push(row(
            "unclosed at top level",
            deep.as_bytes()[..DEEP * if shape == "lists" { 1 } else { 5 }].to_vec(),
            Some((SCHEMA, None, None)),
        ));
        rows.push(row(
            "constraints",
            with_raw("constraints.x", &deep),
            Some((SCHEMA, Some("constraints"), Some("r-1"))),
        ));
        rows.push(row(
            "metadata",
            with_raw("metadata.x", &deep),
            Some((SCHEMA, Some("metadata"), Some("r-1"))),
        ));
        rows.push(row(
            "task.payload",
            with_raw("task.payload.x", &deep),
            Some((SCHEMA, Some("task.payload"), Some("r-1"))),
        ));
        rows.push(row(
            "request_id",
            with_raw("request_id", &deep),
            Some((SCHEMA, Some("request_id"), None)),
        ));
        rows.push(row(
            "version",
            with_raw("version", &deep),
            Some(("VERSION_UNSUPPORTED", Some("version"), Some("r-1"))),
        ));
        rows.push(row(
            "task",
            with_raw("task", &deep),
            if shape == "lists" {
                Some((SCHEMA, Some("task"), Some("r-1")))
            } else {
                // An object whose only (unknown) field is skipped: task.type is missing.
                Some(("CORRELATION_FIELDS_INVALID", Some("task.type"), Some("r-1")))
            },
        ));
        // Unknown fields are ignored whatever they hold; serde_json skips them without
        // recursion.
        rows.push(row("an unknown field", with_raw("extra", &deep), None));
        rows.push(row(
            "an unknown field of task",
            with_raw("task.extra", &deep),
            None,
        ));
    }
    // 128 levels of payload are fine; 129 are not.
    let nested = |levels: usize| {
        format!(
            r#"{}"prompt":"hello"{}"#,
            r#"{"a":"#.repeat(levels - 1) + "{",
            "}".repeat(levels)
        )
    };
    rows.push(Hostile {
        name: "payload nested 128 deep".into(),
        body: with_raw("task.payload", &nested(128)),
        expect: None,
    });
    rows.push(Hostile {
        name: "payload nested 129 deep".into(),
        body: with_raw("task.payload", &nested(129)),
        expect: Some((SCHEMA, Some("task.payload"), Some("r-1"))),
    });
    // Huge numbers.
    for number in ["1e400", "-1e400", "123456789012345678901234567890e300"] {
        let name = |field: &str| format!("{number} in {field}");
        rows.push(Hostile {
            name: name("constraints.deadline"),
            body: with_raw("constraints.deadline", number),
            expect: Some((SCHEMA, Some("constraints"), Some("r-1"))),
        });
        rows.push(Hostile {
            name: name("metadata.retry_attempt"),
            body: with_raw("metadata.retry_attempt", number),
            expect: Some((SCHEMA, Some("metadata"), Some("r-1"))),
        });
        rows.push(Hostile {
            name: name("version"),
            body: with_raw("version", number),
            expect: Some(("VERSION_UNSUPPORTED", Some("version"), Some("r-1"))),
        });
        rows.push(Hostile {
            name: name("request_id"),
            body: with_raw("request_id", number),
            expect: Some((SCHEMA, Some("request_id"), None)),
        });
        // The payload is passed through as raw text and not interpreted.
        rows.push(Hostile {
            name: name("task.payload"),
            body: with_raw("task.payload.n", number),
            expect: None,
        });
        rows.push(Hostile {
            name: name("an unknown field"),
            body: with_raw("extra", number),
            expect: None,
        });
    }
    // Big integers that serde_json reads as floats.
    rows.push(Hostile {
        name: "a 30-digit deadline is far in the future".into(),
        body: with_raw("constraints.deadline", "123456789012345678901234567890"),
        expect: None,
    });
    rows.push(Hostile {
        name: "a 30-digit retry_attempt is not an integer".into(),
        body: with_raw(
            "constraints.retry_attempt",
            "123456789012345678901234567890",
        ),
        expect: Some((SCHEMA, Some("retry_attempt"), Some("r-1"))),
    });
    rows
}

/// Deep nesting and huge numbers get the expected reply, without a stack overflow (the test
/// runs on a thread with the default 2 MiB test stack).
#[test]
fn hostile_input_gets_invalid_request_without_crashing() {
    let router = router();
    let mut failures = Vec::new();
    for row in hostile_rows() {
        assert!(row.body.len() <= 1024 * 1024, "{}: over 1 MiB", row.name);
        let handled = router.handle(&row.body, None, NOW, &mut rng(1));
        let reply = match check(&handled) {
            Ok(reply) => reply,
            Err(err) => {
                failures.push(format!("{}: {err}", row.name));
                continue;
            }
        };
        let got = if reply["ok"] == true {
            None
        } else {
            Some((
                reply["error"]["intake_error_code"].clone(),
                reply["error"]["details"]["field"].clone(),
                reply["context"]["request_id"].clone(),
            ))
        };
        let want = row
            .expect
            .map(|(intake, field, id)| (json!(intake), json!(field), json!(id)));
        if got != want {
            failures.push(format!("{}: got {got:?}, expected {want:?}", row.name));
        }
        if row.expect.is_some() {
            assert_eq!(reply["error"]["code"], "invalid_request", "{}", row.name);
        }
        // The other entry points survive the same bytes.
        check(&router.overloaded(&row.body, 30)).expect("overloaded reply");
        let _ = router.feedback(&row.body, NOW);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Feedback with hostile numbers and nesting is refused, not applied.
#[test]
fn hostile_feedback_is_refused() {
    let router = router();
    for body in [
        r#"{"tenant_id":"acme","provider_id":"openai","outcome":"failure","latency_ms":1e400}"#
            .to_owned(),
        format!(
            r#"{{"tenant_id":"acme","provider_id":"openai","outcome":{}}}"#,
            deep_lists()
        ),
        deep_objects(),
    ] {
        assert!(router.feedback(body.as_bytes(), NOW).is_err());
    }
    assert_eq!(router.engine().breakers().not_closed(), 0);
}
