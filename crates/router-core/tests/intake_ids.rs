//! CONTRACT §2 rules for the version and the identifiers (`request_id`, `tenant_id`,
//! `trace_id`, `run_id` / `flow_id` / `step_id`, `idempotency_key`) and their §3 intake
//! error codes, one table row per rule (see `common/intake_table.rs`).

mod common;

use common::intake_table::*;
use common::*;
use serde_json::{json, Value};

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
