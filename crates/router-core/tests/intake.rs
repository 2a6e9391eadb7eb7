//! CONTRACT §2 field rules and §3 intake error codes, one table row per rule, all through
//! `Router::handle`, checking `error.code`, `error.intake_error_code`, `error.details.field` and
//! `context.request_id` of the reply.

mod common;

use common::*;
use serde_json::{json, Value};

const SCHEMA: &str = "SCHEMA_VALIDATION_FAILED";
const VERSION: &str = "VERSION_UNSUPPORTED";
const CORRELATION: &str = "CORRELATION_FIELDS_INVALID";
const TOO_SMALL: &str = "PAYLOAD_TOO_SMALL";

const UUID_A: &str = "123e4567-e89b-12d3-a456-426614174000";
const UUID_B: &str = "9B2F5C1E-4D3A-4B8C-9E7F-0A1B2C3D4E5F";
const ULID_A: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
const ULID_B: &str = "7zzzzzzzzzzzzzzzzzzzzzzzzz";
const W3C: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[derive(Debug)]
enum Expect {
    /// A decision; `context.request_id` is this.
    Decided(String),
    /// `invalid_request` with this intake code and `details.field` (absent when `None`);
    /// `context.request_id` is the given id or `null`.
    Invalid {
        intake: &'static str,
        field: Option<&'static str>,
        request_id: Option<String>,
    },
    /// Another error code, no intake code.
    Error {
        code: &'static str,
        request_id: Option<String>,
    },
}

fn ok() -> Expect {
    Expect::Decided("r-1".into())
}

fn ok_id(id: impl Into<String>) -> Expect {
    Expect::Decided(id.into())
}

/// Rejected at intake; the request id `r-1` could be read.
fn invalid(intake: &'static str, field: &'static str) -> Expect {
    Expect::Invalid {
        intake,
        field: Some(field),
        request_id: Some("r-1".into()),
    }
}

/// Rejected at intake; no request id could be read.
fn invalid_anon(intake: &'static str, field: Option<&'static str>) -> Expect {
    Expect::Invalid {
        intake,
        field,
        request_id: None,
    }
}

fn error(code: &'static str) -> Expect {
    Expect::Error {
        code,
        request_id: Some("r-1".into()),
    }
}

struct Row {
    name: &'static str,
    body: Vec<u8>,
    header: Option<&'static str>,
    expect: Expect,
}

fn row(name: &'static str, request: Value, expect: Expect) -> Row {
    Row {
        name,
        body: bytes(&request),
        header: None,
        expect,
    }
}

fn raw(name: &'static str, body: impl Into<Vec<u8>>, expect: Expect) -> Row {
    Row {
        name,
        body: body.into(),
        header: None,
        expect,
    }
}

fn with_header(name: &'static str, header: &'static str, request: Value, expect: Expect) -> Row {
    Row {
        name,
        body: bytes(&request),
        header: Some(header),
        expect,
    }
}

/// Runs every row; reports all mismatches at once.
fn run(rows: Vec<Row>) {
    let router = router();
    let mut failures = Vec::new();
    for row in &rows {
        let reply = send_raw(&router, &row.body, row.header, NOW);
        if let Err(why) = check(&reply, &row.expect) {
            failures.push(format!(
                "{}: {why}\n    reply: {reply}\n    expected: {:?}",
                row.name, row.expect
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

fn check(reply: &Value, expect: &Expect) -> Result<(), String> {
    let eq = |what: &str, got: &Value, want: &Value| {
        if got == want {
            Ok(())
        } else {
            Err(format!("{what} is {got}, expected {want}"))
        }
    };
    match expect {
        Expect::Decided(request_id) => {
            eq("ok", &reply["ok"], &json!(true))?;
            eq(
                "context.request_id",
                &reply["context"]["request_id"],
                &json!(request_id),
            )?;
            if !reply["decision"]["provider_id"].is_string() {
                return Err("no decision.provider_id".into());
            }
        }
        Expect::Invalid {
            intake,
            field,
            request_id,
        } => {
            eq("ok", &reply["ok"], &json!(false))?;
            eq(
                "error.code",
                &reply["error"]["code"],
                &json!("invalid_request"),
            )?;
            eq(
                "error.intake_error_code",
                &reply["error"]["intake_error_code"],
                &json!(intake),
            )?;
            eq(
                "error.details.field",
                &reply["error"]["details"]["field"],
                &json!(field),
            )?;
            // `null` in the reply, not a missing key.
            match reply["context"].get("request_id") {
                Some(id) => eq("context.request_id", id, &json!(request_id))?,
                None => return Err("context.request_id is missing".into()),
            }
            if reply["error"]["message"].as_str().is_none_or(str::is_empty) {
                return Err("error.message is empty".into());
            }
        }
        Expect::Error { code, request_id } => {
            eq("ok", &reply["ok"], &json!(false))?;
            eq("error.code", &reply["error"]["code"], &json!(code))?;
            eq(
                "error.intake_error_code",
                &reply["error"]["intake_error_code"],
                &Value::Null,
            )?;
            eq(
                "context.request_id",
                &reply["context"]["request_id"],
                &json!(request_id),
            )?;
        }
    }
    Ok(())
}

#[test]
fn version_rules() {
    let b = base;
    run(vec![
        row("version \"1\"", b(), ok()),
        row("version missing", del(b(), "version"), ok()),
        row(
            "version null is missing",
            set(b(), "version", json!(null)),
            ok(),
        ),
        row(
            "version \"2\"",
            set(b(), "version", json!("2")),
            invalid(VERSION, "version"),
        ),
        row(
            "version number 1",
            set(b(), "version", json!(1)),
            invalid(VERSION, "version"),
        ),
        row(
            "version \"1.0\"",
            set(b(), "version", json!("1.0")),
            invalid(VERSION, "version"),
        ),
        row(
            "version \"v1\"",
            set(b(), "version", json!("v1")),
            invalid(VERSION, "version"),
        ),
        row(
            "version true",
            set(b(), "version", json!(true)),
            invalid(VERSION, "version"),
        ),
        row(
            "version object",
            set(b(), "version", json!({})),
            invalid(VERSION, "version"),
        ),
        row(
            "version list",
            set(b(), "version", json!(["1"])),
            invalid(VERSION, "version"),
        ),
        with_header(
            "header 1 wins over body \"2\"",
            "1",
            set(b(), "version", json!("2")),
            ok(),
        ),
        with_header(
            "header 1 wins over body number",
            "1",
            set(b(), "version", json!(1)),
            ok(),
        ),
        with_header(
            "header 2 wins over body \"1\"",
            "2",
            b(),
            invalid(VERSION, "version"),
        ),
        with_header(
            "header 2, no body version",
            "2",
            del(b(), "version"),
            invalid(VERSION, "version"),
        ),
        with_header("header empty", "", b(), invalid(VERSION, "version")),
        with_header("header padded", " 1 ", b(), ok()),
    ]);
}

#[test]
fn request_id_rules() {
    let b = base;
    let at_limit = "x".repeat(256);
    let accented_at_limit = "é".repeat(128); // 256 bytes
    run(vec![
        row(
            "request_id missing",
            del(b(), "request_id"),
            invalid_anon(CORRELATION, Some("request_id")),
        ),
        row(
            "request_id null",
            set(b(), "request_id", json!(null)),
            invalid_anon(CORRELATION, Some("request_id")),
        ),
        row(
            "request_id empty",
            set(b(), "request_id", json!("")),
            invalid_anon(CORRELATION, Some("request_id")),
        ),
        row(
            "request_id 256 bytes",
            set(b(), "request_id", json!(at_limit)),
            ok_id(at_limit.clone()),
        ),
        row(
            "request_id 257 bytes",
            set(b(), "request_id", json!("x".repeat(257))),
            invalid_anon(CORRELATION, Some("request_id")),
        ),
        row(
            "request_id 128 two-byte chars",
            set(b(), "request_id", json!(accented_at_limit)),
            ok_id(accented_at_limit.clone()),
        ),
        row(
            "request_id 129 two-byte chars (258 bytes)",
            set(b(), "request_id", json!("é".repeat(129))),
            invalid_anon(CORRELATION, Some("request_id")),
        ),
        row(
            "request_id number",
            set(b(), "request_id", json!(5)),
            invalid_anon(SCHEMA, Some("request_id")),
        ),
        row(
            "request_id list",
            set(b(), "request_id", json!(["r-1"])),
            invalid_anon(SCHEMA, Some("request_id")),
        ),
        row(
            "request_id object",
            set(b(), "request_id", json!({"id": "r-1"})),
            invalid_anon(SCHEMA, Some("request_id")),
        ),
        raw(
            "request_id with escapes is decoded",
            r#"{"request_id":"r\u002d1","tenant_id":"acme","task":{"type":"chat","payload":{"prompt":"hello"}}}"#,
            ok(),
        ),
        raw(
            "request_id with a lone surrogate",
            r#"{"request_id":"r\ud800","tenant_id":"acme","task":{"type":"chat","payload":{"prompt":"hello"}}}"#,
            invalid_anon(SCHEMA, Some("request_id")),
        ),
    ]);
}

#[test]
fn tenant_id_rules() {
    let b = base;
    run(vec![
        row(
            "tenant_id missing",
            del(b(), "tenant_id"),
            invalid(CORRELATION, "tenant_id"),
        ),
        row(
            "tenant_id null",
            set(b(), "tenant_id", json!(null)),
            invalid(CORRELATION, "tenant_id"),
        ),
        row(
            "tenant_id empty",
            set(b(), "tenant_id", json!("")),
            invalid(CORRELATION, "tenant_id"),
        ),
        row(
            "tenant_id with /",
            set(b(), "tenant_id", json!("acme/eu")),
            invalid(CORRELATION, "tenant_id"),
        ),
        row(
            "tenant_id with space",
            set(b(), "tenant_id", json!("acme eu")),
            invalid(CORRELATION, "tenant_id"),
        ),
        row(
            "tenant_id with newline",
            set(b(), "tenant_id", json!("acme\n")),
            invalid(CORRELATION, "tenant_id"),
        ),
        row(
            "tenant_id non-ASCII",
            set(b(), "tenant_id", json!("acmé")),
            invalid(CORRELATION, "tenant_id"),
        ),
        row(
            "tenant_id ..",
            set(b(), "tenant_id", json!("..")),
            error("policy_not_found"),
        ),
        row(
            "tenant_id full alphabet",
            set(b(), "tenant_id", json!("Az09._-")),
            error("policy_not_found"),
        ),
        row(
            "tenant_id 128 bytes",
            set(b(), "tenant_id", json!("t".repeat(128))),
            error("policy_not_found"),
        ),
        row(
            "tenant_id 129 bytes",
            set(b(), "tenant_id", json!("t".repeat(129))),
            invalid(CORRELATION, "tenant_id"),
        ),
        row(
            "tenant_id number",
            set(b(), "tenant_id", json!(42)),
            invalid(SCHEMA, "tenant_id"),
        ),
        row(
            "tenant_id bool",
            set(b(), "tenant_id", json!(true)),
            invalid(SCHEMA, "tenant_id"),
        ),
    ]);
}

#[test]
fn trace_id_rules() {
    let b = base;
    run(vec![
        row("trace_id W3C", set(b(), "trace_id", json!(W3C)), ok()),
        row(
            "trace_id UUID lowercase",
            set(b(), "trace_id", json!(UUID_A)),
            ok(),
        ),
        row(
            "trace_id UUID uppercase",
            set(b(), "trace_id", json!(UUID_B)),
            ok(),
        ),
        row(
            "trace_id null is missing",
            set(b(), "trace_id", json!(null)),
            ok(),
        ),
        row(
            "trace_id W3C uppercase",
            set(b(), "trace_id", json!(W3C.to_uppercase())),
            invalid(CORRELATION, "trace_id"),
        ),
        row(
            "trace_id 31 hex",
            set(b(), "trace_id", json!(&W3C[..31])),
            invalid(CORRELATION, "trace_id"),
        ),
        row(
            "trace_id 33 hex",
            set(b(), "trace_id", json!(format!("{W3C}0"))),
            invalid(CORRELATION, "trace_id"),
        ),
        row(
            "trace_id UUID with braces",
            set(b(), "trace_id", json!(format!("{{{UUID_A}}}"))),
            invalid(CORRELATION, "trace_id"),
        ),
        row(
            "trace_id UUID misplaced dash",
            set(
                b(),
                "trace_id",
                json!("123e4567e-89b-12d3-a456-426614174000"),
            ),
            invalid(CORRELATION, "trace_id"),
        ),
        row(
            "trace_id W3C traceparent",
            set(
                b(),
                "trace_id",
                json!(format!("00-{W3C}-00f067aa0ba902b7-01")),
            ),
            invalid(CORRELATION, "trace_id"),
        ),
        row(
            "trace_id empty",
            set(b(), "trace_id", json!("")),
            invalid(CORRELATION, "trace_id"),
        ),
        row(
            "trace_id number",
            set(b(), "trace_id", json!(123)),
            invalid(SCHEMA, "trace_id"),
        ),
    ]);
}

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

#[test]
fn correlation_rules() {
    let b = base;
    let all = |run: Value, flow: Value, step: Value| {
        set(
            set(set(base(), "run_id", run), "flow_id", flow),
            "step_id",
            step,
        )
    };
    run(vec![
        row(
            "run/flow/step UUIDs",
            all(json!(UUID_A), json!(UUID_B), json!(UUID_A)),
            ok(),
        ),
        row(
            "run/flow/step ULIDs",
            all(json!(ULID_A), json!(ULID_B), json!(ULID_A)),
            ok(),
        ),
        row(
            "run/flow/step mixed",
            all(json!(ULID_A), json!(UUID_A), json!(ULID_B)),
            ok(),
        ),
        row(
            "run_id only",
            set(b(), "run_id", json!(UUID_A)),
            invalid(CORRELATION, "flow_id"),
        ),
        row(
            "flow_id only",
            set(b(), "flow_id", json!(UUID_A)),
            invalid(CORRELATION, "run_id"),
        ),
        row(
            "step_id only",
            set(b(), "step_id", json!(UUID_A)),
            invalid(CORRELATION, "run_id"),
        ),
        row(
            "run and flow, no step",
            del(all(json!(UUID_A), json!(UUID_A), json!(UUID_A)), "step_id"),
            invalid(CORRELATION, "step_id"),
        ),
        row(
            "flow and step, no run",
            del(all(json!(UUID_A), json!(UUID_A), json!(UUID_A)), "run_id"),
            invalid(CORRELATION, "run_id"),
        ),
        row(
            "run null counts as missing",
            all(json!(null), json!(UUID_A), json!(UUID_A)),
            invalid(CORRELATION, "run_id"),
        ),
        row(
            "run_id not an id",
            all(json!("run-1"), json!(UUID_A), json!(UUID_A)),
            invalid(CORRELATION, "run_id"),
        ),
        row(
            "flow_id ULID over 128 bits",
            all(
                json!(UUID_A),
                json!("81ARZ3NDEKTSV4RRFFQ69G5FAV"),
                json!(UUID_A),
            ),
            invalid(CORRELATION, "flow_id"),
        ),
        row(
            "step_id ULID with U",
            all(
                json!(UUID_A),
                json!(UUID_A),
                json!("01ARZ3NDEKTSV4RRFFQ69G5FAU"),
            ),
            invalid(CORRELATION, "step_id"),
        ),
        row(
            "step_id UUID without dashes",
            all(json!(UUID_A), json!(UUID_A), json!(UUID_A.replace('-', ""))),
            invalid(CORRELATION, "step_id"),
        ),
        row(
            "run_id number",
            all(json!(1), json!(UUID_A), json!(UUID_A)),
            invalid(SCHEMA, "run_id"),
        ),
    ]);
}

#[test]
fn idempotency_key_rules() {
    let b = base;
    run(vec![
        row(
            "idempotency_key",
            set(b(), "idempotency_key", json!("k-1")),
            ok(),
        ),
        row(
            "idempotency_key 256 bytes",
            set(b(), "idempotency_key", json!("k".repeat(256))),
            ok(),
        ),
        row(
            "idempotency_key 257 bytes",
            set(b(), "idempotency_key", json!("k".repeat(257))),
            invalid(SCHEMA, "idempotency_key"),
        ),
        row(
            "idempotency_key empty",
            set(b(), "idempotency_key", json!("")),
            invalid(SCHEMA, "idempotency_key"),
        ),
        row(
            "idempotency_key number",
            set(b(), "idempotency_key", json!(1)),
            invalid(SCHEMA, "idempotency_key"),
        ),
        row(
            "idempotency_key null is missing",
            set(b(), "idempotency_key", json!(null)),
            ok(),
        ),
    ]);
}

/// Bodies that are not a readable request object.
#[test]
fn body_rules() {
    const MIB: usize = 1024 * 1024;
    let valid = bytes(&base());
    let padded = |size: usize| {
        let mut body = valid.clone();
        body.resize(size, b' ');
        body
    };
    let valid_str = String::from_utf8(valid.clone()).expect("UTF-8");
    let spliced = |insert: &[u8]| {
        // {"x": <insert>, ...the valid request...}
        let mut body = br#"{"x":""#.to_vec();
        body.extend_from_slice(insert);
        body.extend_from_slice(b"\",");
        body.extend_from_slice(&valid[1..]);
        body
    };
    let bad = |field: Option<&'static str>| invalid_anon(SCHEMA, field);
    run(vec![
        raw("exactly 1 MiB", padded(MIB), ok()),
        raw("1 MiB + 1 byte", padded(MIB + 1), bad(None)),
        raw("10 MiB of zeros", vec![0u8; 10 * MIB], bad(None)),
        raw("empty body", "", bad(None)),
        raw("white space only", " \n\t ", bad(None)),
        raw("truncated object", &valid[..valid.len() - 1], bad(None)),
        raw("not JSON at all", "hello", bad(None)),
        raw("missing value", r#"{"request_id":}"#, bad(None)),
        raw(
            "trailing comma",
            format!("{},}}", &valid_str[..valid_str.len() - 1]),
            bad(None),
        ),
        raw("trailing garbage", format!("{valid_str} x"), bad(None)),
        raw("two objects", format!("{valid_str}{valid_str}"), bad(None)),
        raw("JSON list", "[]", bad(None)),
        raw(
            "JSON list of a request",
            format!("[{valid_str}]"),
            bad(None),
        ),
        raw("JSON string", r#""request""#, bad(None)),
        raw("JSON number", "42", bad(None)),
        raw("JSON null", "null", bad(None)),
        raw("JSON true", "true", bad(None)),
        raw(
            "leading and trailing white space",
            format!("\n  {valid_str}\n  "),
            ok(),
        ),
        raw(
            "UTF-8 byte order mark",
            [b"\xEF\xBB\xBF".as_slice(), &valid].concat(),
            bad(None),
        ),
        raw(
            "invalid UTF-8 in request_id",
            [
                br#"{"request_id":"r-"#.as_slice(),
                b"\xff\xfe",
                &valid_str.as_bytes()[16..],
            ]
            .concat(),
            bad(None),
        ),
        raw(
            "invalid UTF-8 in an unknown field",
            spliced(b"\xc3\x28"),
            bad(None),
        ),
        raw(
            "UTF-16 surrogate encoded as UTF-8",
            spliced(b"\xed\xa0\x80"),
            bad(None),
        ),
        raw("overlong UTF-8", spliced(b"\xc0\xaf"), bad(None)),
        raw(
            "invalid UTF-8 in a key",
            [br#"{"\xff":1,"#.as_slice(), &valid[1..]].concat(),
            bad(None),
        ),
        raw(
            "NUL byte outside strings",
            [b"\0".as_slice(), &valid].concat(),
            bad(None),
        ),
        raw(
            "control character inside a string",
            spliced(b"\x01"),
            bad(None),
        ),
        row(
            "unknown fields are ignored",
            set(
                set(base(), "extra", json!({"a": [1, {"b": null}]})),
                "x_y",
                json!(1e300),
            ),
            ok(),
        ),
        raw(
            "duplicate request_id",
            r#"{"request_id":"r-1","request_id":"r-2","tenant_id":"acme","task":{"type":"chat","payload":{"prompt":"hello"}}}"#,
            bad(None),
        ),
        raw(
            "duplicate tenant_id",
            r#"{"request_id":"r-1","tenant_id":"acme","tenant_id":"globex","task":{"type":"chat","payload":{"prompt":"hello"}}}"#,
            bad(None),
        ),
        raw(
            "duplicate unknown field is ignored",
            r#"{"request_id":"r-1","x":1,"x":2,"tenant_id":"acme","task":{"type":"chat","payload":{"prompt":"hello"}}}"#,
            ok(),
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

/// An intake error reply has exactly the §3 shape.
#[test]
fn error_reply_shape() {
    let router = router();
    let reply = send(
        &router,
        &set(del(base(), "task.type"), "trace_id", json!(W3C)),
    );
    assert_eq!(
        reply,
        json!({"ok": false,
               "error": {"code": "invalid_request", "message": "task.type is missing",
                         "intake_error_code": "CORRELATION_FIELDS_INVALID",
                         "details": {"field": "task.type"}},
               "context": {"request_id": "r-1", "trace_id": W3C}})
    );
}

/// A rejected trace id is not echoed; the request id still is.
#[test]
fn an_invalid_trace_id_is_not_echoed() {
    let router = router();
    let reply = send(&router, &set(base(), "trace_id", json!("not-a-trace")));
    assert_eq!(reply["context"], json!({"request_id": "r-1"}));
}

/// An over-size body is refused before parsing and says what the limit is.
#[test]
fn oversize_body_names_the_limit() {
    let router = router();
    let mut body = bytes(&base());
    body.resize(1024 * 1024 + 1, b' ');
    let reply = send_raw(&router, &body, None, NOW);
    assert_eq!(reply["error"]["details"], json!({"max_payload": 1_048_576}));
    assert_eq!(reply["context"], json!({"request_id": null}));
}

/// Error messages quote bad input only in part: a reply must stay small whatever the request
/// (a NATS reply over the server's max_payload would never be delivered).
#[test]
fn error_replies_do_not_echo_large_input() {
    let router = router();
    let big = "v".repeat(900 * 1024);
    let retry = set(
        set(base(), "constraints.current_provider", json!(big)),
        "constraints.status",
        json!("5xx"),
    );
    let handled = router.handle(&bytes(&retry), None, NOW, &mut rng(1));
    assert!(
        handled.reply.len() < 1024,
        "retry reply is {} bytes",
        handled.reply.len()
    );
    for (request, header) in [
        (set(base(), "version", json!(big)), None),
        (set(base(), "version", json!([big])), None),
        (base(), Some(big.as_str())),
    ] {
        let handled = router.handle(&bytes(&request), header, NOW, &mut rng(1));
        let reply = parse(&handled);
        assert_eq!(reply["error"]["intake_error_code"], VERSION);
        assert!(
            handled.reply.len() < 1024,
            "reply is {} bytes",
            handled.reply.len()
        );
    }
}
