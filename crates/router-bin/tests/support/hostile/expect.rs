//! What the reply to one hostile body must say ([`Expect`]): a decision or an error code,
//! the intake code and field when they are checked, and the request id echoed.

use serde_json::Value;

/// The intake error codes the categories expect.
pub const SCHEMA: &str = "SCHEMA_VALIDATION_FAILED";
pub const VERSION: &str = "VERSION_UNSUPPORTED";
pub const CORRELATION: &str = "CORRELATION_FIELDS_INVALID";

/// What `context.request_id` of the reply must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Echo {
    /// `null`: the id could not be read.
    Null,
    /// This id.
    Id(String),
}

/// What the reply to one body must say.
#[derive(Debug, Clone)]
pub struct Expect {
    /// `ok: true` (a decision) instead of an error.
    ok: bool,
    /// `error.code`.
    code: &'static str,
    /// `error.intake_error_code`, when checked.
    intake: Option<&'static str>,
    /// `error.details.field`, when checked.
    field: Option<String>,
    /// `context.request_id`.
    echo: Echo,
}

impl Expect {
    pub fn decision(echo: Echo) -> Self {
        Expect {
            ok: true,
            code: "",
            intake: None,
            field: None,
            echo,
        }
    }

    pub fn code(code: &'static str, echo: Echo) -> Self {
        Expect {
            ok: false,
            code,
            intake: None,
            field: None,
            echo,
        }
    }

    /// `invalid_request` with this intake code (and field, when given).
    pub fn invalid(intake: &'static str, field: Option<&str>, echo: Echo) -> Self {
        Expect {
            ok: false,
            code: "invalid_request",
            intake: Some(intake),
            field: field.map(str::to_owned),
            echo,
        }
    }

    /// The first difference between this expectation and `reply`, if any.
    pub fn check(&self, reply: &Value) -> Option<String> {
        let Some(ok) = reply["ok"].as_bool() else {
            return Some("no boolean ok".into());
        };
        if !reply["context"].is_object() {
            return Some("no context object".into());
        }
        if self.ok {
            if !ok || !reply["decision"]["provider_id"].is_string() {
                return Some("expected a decision".into());
            }
        } else {
            if ok {
                return Some(format!("expected {}, got a decision", self.code));
            }
            if reply["error"]["code"] != self.code {
                return Some(format!("expected code {}", self.code));
            }
            if let Some(intake) = self.intake {
                if reply["error"]["intake_error_code"] != intake {
                    return Some(format!("expected intake_error_code {intake}"));
                }
            }
            if let Some(field) = &self.field {
                if reply["error"]["details"]["field"] != field.as_str() {
                    return Some(format!("expected details.field {field}"));
                }
            }
        }
        let echoed = &reply["context"]["request_id"];
        match &self.echo {
            Echo::Null if echoed.is_null() => None,
            Echo::Id(id) if echoed == id.as_str() => None,
            other => Some(format!("expected context.request_id {other:?}")),
        }
    }
}
