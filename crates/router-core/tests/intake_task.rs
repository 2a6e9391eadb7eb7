//! CONTRACT §2 rules for the task (`task`, or the gateway's `message`), the policy id and
//! the routing context (`constraints`, `metadata`), one table row per rule (see
//! `common/intake_table.rs`).

mod common;

use common::intake_table::*;
use common::*;
use serde_json::{json, Value};

#[test]
fn task_rules() {
    let b = base;
    let payload = |value: Value| set(base(), "task.payload", value);
    run(vec![
        row("task missing", del(b(), "task"), invalid(SCHEMA, "task")),
        row(
            "task null",
            set(b(), "task", json!(null)),
            invalid(SCHEMA, "task"),
        ),
        row(
            "task string",
            set(b(), "task", json!("chat")),
            invalid(SCHEMA, "task"),
        ),
        row(
            "task list",
            set(b(), "task", json!([{"type": "chat"}])),
            invalid(SCHEMA, "task"),
        ),
        row(
            "task number",
            set(b(), "task", json!(1)),
            invalid(SCHEMA, "task"),
        ),
        row(
            "task.type missing",
            del(b(), "task.type"),
            invalid(CORRELATION, "task.type"),
        ),
        row(
            "task.type null",
            set(b(), "task.type", json!(null)),
            invalid(CORRELATION, "task.type"),
        ),
        row(
            "task.type empty",
            set(b(), "task.type", json!("")),
            invalid(CORRELATION, "task.type"),
        ),
        row(
            "task.type number",
            set(b(), "task.type", json!(7)),
            invalid(SCHEMA, "task.type"),
        ),
        row(
            "payload and payload_ref both",
            set(b(), "task.payload_ref", json!("s3://bucket/key")),
            invalid(SCHEMA, "task.payload"),
        ),
        row(
            "payload and payload_ref neither",
            del(b(), "task.payload"),
            invalid(SCHEMA, "task.payload"),
        ),
        row(
            "payload null, no payload_ref",
            payload(json!(null)),
            invalid(SCHEMA, "task.payload"),
        ),
        row(
            "payload null with payload_ref",
            set(
                payload(json!(null)),
                "task.payload_ref",
                json!("s3://bucket/key"),
            ),
            ok(),
        ),
        row(
            "payload_ref alone",
            set(
                del(b(), "task.payload"),
                "task.payload_ref",
                json!("s3://bucket/key"),
            ),
            ok(),
        ),
        row(
            "payload_ref empty",
            set(del(b(), "task.payload"), "task.payload_ref", json!("")),
            invalid(SCHEMA, "task.payload_ref"),
        ),
        row(
            "payload_ref number",
            set(del(b(), "task.payload"), "task.payload_ref", json!(5)),
            invalid(SCHEMA, "task.payload_ref"),
        ),
        row(
            "payload_ref object",
            set(
                del(b(), "task.payload"),
                "task.payload_ref",
                json!({"url": "s3://b/k"}),
            ),
            invalid(SCHEMA, "task.payload_ref"),
        ),
        row(
            "payload {} (2 bytes)",
            payload(json!({})),
            invalid(TOO_SMALL, "task.payload"),
        ),
        row(
            "payload 7 bytes",
            payload(json!({"a": 1})),
            invalid(TOO_SMALL, "task.payload"),
        ),
        row(
            "payload 9 bytes",
            payload(json!({"a": "b"})),
            invalid(TOO_SMALL, "task.payload"),
        ),
        row(
            "payload exactly 10 bytes",
            payload(json!({"a": "bc"})),
            ok(),
        ),
        raw(
            "payload 9 compact bytes padded with white space",
            r#"{"request_id":"r-1","tenant_id":"acme","task":{"type":"chat","payload":{ "a" :  "b"  }}}"#,
            invalid(TOO_SMALL, "task.payload"),
        ),
        raw(
            "payload: white space inside strings counts",
            r#"{"request_id":"r-1","tenant_id":"acme","task":{"type":"chat","payload":{"a":"  b "}}}"#,
            ok(),
        ),
        row(
            "payload string",
            payload(json!("a long enough payload")),
            invalid(SCHEMA, "task.payload"),
        ),
        row(
            "payload list",
            payload(json!([1, 2, 3, 4, 5, 6, 7, 8, 9])),
            invalid(SCHEMA, "task.payload"),
        ),
        row(
            "payload number",
            payload(json!(12_345_678_901_u64)),
            invalid(SCHEMA, "task.payload"),
        ),
        row(
            "payload bool",
            payload(json!(true)),
            invalid(SCHEMA, "task.payload"),
        ),
        row(
            "unknown task fields are ignored",
            set(b(), "task.priority", json!({"x": [1, 2]})),
            ok(),
        ),
        raw(
            "duplicate key inside task",
            r#"{"request_id":"r-1","tenant_id":"acme","task":{"type":"chat","type":"x","payload":{"prompt":"hello"}}}"#,
            invalid(SCHEMA, "task"),
        ),
    ]);
}

/// The gateway's `message` shape, accepted instead of `task`.
#[test]
fn message_rules() {
    let gateway = || {
        del(
            set(
                base(),
                "message",
                json!({"message_id": "m-7", "message_type": "chat", "payload": {"prompt": "hello"}}),
            ),
            "task",
        )
    };
    let anonymous = || del(gateway(), "request_id");
    run(vec![
        row("message instead of task", gateway(), ok()),
        row("message_id becomes request_id", anonymous(), ok_id("m-7")),
        row(
            "request_id wins over message_id",
            set(gateway(), "message.message_id", json!("m-8")),
            ok(),
        ),
        row(
            "message without message_id",
            del(gateway(), "message.message_id"),
            ok(),
        ),
        row(
            "message_id empty",
            set(anonymous(), "message.message_id", json!("")),
            invalid_anon(CORRELATION, Some("message.message_id")),
        ),
        row(
            "message_id too long",
            set(anonymous(), "message.message_id", json!("m".repeat(257))),
            invalid_anon(CORRELATION, Some("message.message_id")),
        ),
        row(
            "message_id number",
            set(anonymous(), "message.message_id", json!(7)),
            invalid_anon(SCHEMA, Some("message.message_id")),
        ),
        row(
            "neither request_id nor message_id",
            del(anonymous(), "message.message_id"),
            invalid_anon(CORRELATION, Some("request_id")),
        ),
        row(
            "message string",
            set(gateway(), "message", json!("hello")),
            invalid(SCHEMA, "message"),
        ),
        row(
            "message list",
            set(gateway(), "message", json!([])),
            invalid(SCHEMA, "message"),
        ),
        row(
            "message string, no request_id",
            set(anonymous(), "message", json!("hello")),
            invalid_anon(SCHEMA, Some("message")),
        ),
        row(
            "message_type missing",
            del(gateway(), "message.message_type"),
            invalid(CORRELATION, "message.message_type"),
        ),
        row(
            "message_type empty",
            set(gateway(), "message.message_type", json!("")),
            invalid(CORRELATION, "message.message_type"),
        ),
        row(
            "message_type number",
            set(gateway(), "message.message_type", json!(3)),
            invalid(SCHEMA, "message.message_type"),
        ),
        row(
            "message payload too small",
            set(gateway(), "message.payload", json!({"a": 1})),
            invalid(TOO_SMALL, "message.payload"),
        ),
        row(
            "message payload not an object",
            set(gateway(), "message.payload", json!("hello world")),
            invalid(SCHEMA, "message.payload"),
        ),
        row(
            "message payload missing",
            del(gateway(), "message.payload"),
            invalid(SCHEMA, "message.payload"),
        ),
        row(
            "message payload and payload_ref",
            set(gateway(), "message.payload_ref", json!("s3://b/k")),
            invalid(SCHEMA, "message.payload"),
        ),
        row(
            "message payload_ref",
            set(
                del(gateway(), "message.payload"),
                "message.payload_ref",
                json!("s3://b/k"),
            ),
            ok(),
        ),
        row(
            "task and message both",
            set(gateway(), "task", base()["task"].clone()),
            invalid(SCHEMA, "task"),
        ),
        row(
            "unknown message fields are ignored",
            set(gateway(), "message.headers", json!({"x": 1})),
            ok(),
        ),
    ]);
}

#[test]
fn policy_id_and_context_rules() {
    let b = base;
    run(vec![
        row(
            "policy_id default",
            set(b(), "policy_id", json!("default")),
            ok(),
        ),
        row(
            "policy_id unknown",
            set(b(), "policy_id", json!("nope")),
            error("policy_not_found"),
        ),
        row(
            "policy_id number",
            set(b(), "policy_id", json!(5)),
            invalid(SCHEMA, "policy_id"),
        ),
        row(
            "policy_id empty",
            set(b(), "policy_id", json!("")),
            invalid(SCHEMA, "policy_id"),
        ),
        row(
            "policy_id 129 bytes",
            set(b(), "policy_id", json!("p".repeat(129))),
            invalid(SCHEMA, "policy_id"),
        ),
        row(
            "policy_id null is missing",
            set(b(), "policy_id", json!(null)),
            ok(),
        ),
        row(
            "constraints.policy_id number",
            set(b(), "constraints.policy_id", json!(5)),
            invalid(SCHEMA, "constraints.policy_id"),
        ),
        row(
            "metadata.policy_id bool",
            set(b(), "metadata.policy_id", json!(false)),
            invalid(SCHEMA, "metadata.policy_id"),
        ),
        row(
            "constraints.policy_id empty",
            set(b(), "constraints.policy_id", json!("")),
            invalid(SCHEMA, "policy_id"),
        ),
        row(
            "constraints.policy_id unknown",
            set(b(), "constraints.policy_id", json!("nope")),
            error("policy_not_found"),
        ),
        row(
            "constraints string",
            set(b(), "constraints", json!("fast")),
            invalid(SCHEMA, "constraints"),
        ),
        row(
            "constraints list",
            set(b(), "constraints", json!([])),
            invalid(SCHEMA, "constraints"),
        ),
        row(
            "constraints null is missing",
            set(b(), "constraints", json!(null)),
            ok(),
        ),
        row(
            "metadata number",
            set(b(), "metadata", json!(5)),
            invalid(SCHEMA, "metadata"),
        ),
        row(
            "metadata object",
            set(b(), "metadata", json!({"user_id": "u-1", "tags": ["a"]})),
            ok(),
        ),
        row(
            "deadline not a number",
            set(b(), "constraints.deadline", json!("soon")),
            invalid(SCHEMA, "deadline"),
        ),
        row(
            "retry_attempt negative",
            set(b(), "constraints.retry_attempt", json!(-1)),
            invalid(SCHEMA, "retry_attempt"),
        ),
        row(
            "retry_attempt fraction",
            set(b(), "constraints.retry_attempt", json!(1.5)),
            invalid(SCHEMA, "retry_attempt"),
        ),
        row(
            "current_provider not a provider name",
            set(b(), "constraints.current_provider", json!("OpenAI")),
            invalid(SCHEMA, "current_provider"),
        ),
        row(
            "current_provider 128 bytes",
            set(b(), "constraints.current_provider", json!("p".repeat(128))),
            ok(),
        ),
        row(
            "current_provider 129 bytes",
            set(b(), "constraints.current_provider", json!("p".repeat(129))),
            invalid(SCHEMA, "current_provider"),
        ),
        row(
            "current_provider not a string",
            set(b(), "metadata.current_provider", json!(1)),
            invalid(SCHEMA, "current_provider"),
        ),
    ]);
}

/// Duplicate keys inside `constraints` / `metadata`: the later one wins, as for any JSON map.
#[test]
fn duplicate_keys_inside_the_context_keep_the_last() {
    let router = router();
    let body = br#"{"request_id":"r-1","tenant_id":"acme","task":{"type":"chat","payload":{"prompt":"hello"}},"constraints":{"policy_id":"nope","policy_id":"default"}}"#;
    let reply = send_raw(&router, body, None, NOW);
    assert_eq!(reply["decision"]["policy_id"], "default", "{reply}");
}
