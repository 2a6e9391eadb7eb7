//! The table behind the intake suites (`intake_ids`, `intake_task`, `intake_body`): one row
//! per rule, a body and the reply it must get, checked through `Router::handle` on
//! `error.code`, `error.intake_error_code`, `error.details.field` and `context.request_id`.

use serde_json::{json, Value};

use super::{bytes, router, send_raw, NOW};

/// The §3 intake error codes the rows expect.
pub const SCHEMA: &str = "SCHEMA_VALIDATION_FAILED";
pub const VERSION: &str = "VERSION_UNSUPPORTED";
pub const CORRELATION: &str = "CORRELATION_FIELDS_INVALID";
pub const TOO_SMALL: &str = "PAYLOAD_TOO_SMALL";

/// Identifiers of each accepted shape (UUID any case, ULID, W3C trace id).
pub const UUID_A: &str = "123e4567-e89b-12d3-a456-426614174000";
pub const UUID_B: &str = "9B2F5C1E-4D3A-4B8C-9E7F-0A1B2C3D4E5F";
pub const ULID_A: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
pub const ULID_B: &str = "7zzzzzzzzzzzzzzzzzzzzzzzzz";
pub const W3C: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The reply a row must get.
#[derive(Debug)]
pub enum Expect {
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

/// A decision for request `r-1`.
pub fn ok() -> Expect {
    Expect::Decided("r-1".into())
}

/// A decision for request `id`.
pub fn ok_id(id: impl Into<String>) -> Expect {
    Expect::Decided(id.into())
}

/// Rejected at intake; the request id `r-1` could be read.
pub fn invalid(intake: &'static str, field: &'static str) -> Expect {
    Expect::Invalid {
        intake,
        field: Some(field),
        request_id: Some("r-1".into()),
    }
}

/// Rejected at intake; no request id could be read.
pub fn invalid_anon(intake: &'static str, field: Option<&'static str>) -> Expect {
    Expect::Invalid {
        intake,
        field,
        request_id: None,
    }
}

/// Another error code (no intake code) for request `r-1`.
pub fn error(code: &'static str) -> Expect {
    Expect::Error {
        code,
        request_id: Some("r-1".into()),
    }
}

/// One rule: a body (with the `version` header, if any) and the reply it must get.
pub struct Row {
    name: &'static str,
    body: Vec<u8>,
    header: Option<&'static str>,
    expect: Expect,
}

/// A row whose body is this JSON request.
pub fn row(name: &'static str, request: Value, expect: Expect) -> Row {
    Row {
        name,
        body: bytes(&request),
        header: None,
        expect,
    }
}

/// A row whose body is these bytes as they are.
pub fn raw(name: &'static str, body: impl Into<Vec<u8>>, expect: Expect) -> Row {
    Row {
        name,
        body: body.into(),
        header: None,
        expect,
    }
}

/// A row with a `version` header.
pub fn with_header(
    name: &'static str,
    header: &'static str,
    request: Value,
    expect: Expect,
) -> Row {
    Row {
        name,
        body: bytes(&request),
        header: Some(header),
        expect,
    }
}

/// Runs every row; reports all mismatches at once.
pub fn run(rows: Vec<Row>) {
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

/// Why `reply` is not what `expect` says, if it is not.
pub fn check(reply: &Value, expect: &Expect) -> Result<(), String> {
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
