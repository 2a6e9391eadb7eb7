//! Error codes of the wire contract (CONTRACT §3) and the typed rejection the core returns.

use serde::Serialize;
use serde_json::{Map, Value};

/// `error.code` of an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed JSON, a broken schema or field rule, unsupported version, oversize body (HTTP 400).
    InvalidRequest,
    /// Tenant not on the allow-list (HTTP 401).
    Unauthorized,
    /// No policy for (tenant, policy_id) (HTTP 404).
    PolicyNotFound,
    /// No provider can be chosen (HTTP 500).
    DecisionFailed,
    /// The context `deadline` has already passed (HTTP 504).
    DeadlineExceeded,
    /// Backpressure is active (HTTP 429).
    Overloaded,
    /// The tenant is over a quota or budget (HTTP 429); `details` name the limit, the
    /// usage and `retry_after_ms`.
    QuotaExceeded,
    /// A bug; never used for bad input (HTTP 500).
    Internal,
}

impl ErrorCode {
    /// Every code, for metrics pre-registration and documentation tables.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::PolicyNotFound,
        ErrorCode::DecisionFailed,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Overloaded,
        ErrorCode::QuotaExceeded,
        ErrorCode::Internal,
    ];

    /// The wire name, e.g. `invalid_request`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::PolicyNotFound => "policy_not_found",
            ErrorCode::DecisionFailed => "decision_failed",
            ErrorCode::DeadlineExceeded => "deadline_exceeded",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status a gateway maps this code to.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::PolicyNotFound => 404,
            ErrorCode::DecisionFailed | ErrorCode::Internal => 500,
            ErrorCode::DeadlineExceeded => 504,
            ErrorCode::Overloaded | ErrorCode::QuotaExceeded => 429,
        }
    }
}

/// `error.intake_error_code`: why a request was rejected at intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IntakeErrorCode {
    /// Not JSON, not an object, a field of the wrong type, a missing section, an oversize body.
    SchemaValidationFailed,
    /// `version` (header or body) is not `"1"`.
    VersionUnsupported,
    /// An identifier (request, tenant, trace, run/flow/step, task type) is missing or malformed.
    CorrelationFieldsInvalid,
    /// The tenant is not on the allow-list.
    TenantForbidden,
    /// The inline payload is smaller than `min_payload_size`.
    PayloadTooSmall,
}

impl IntakeErrorCode {
    /// The wire name, e.g. `SCHEMA_VALIDATION_FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            IntakeErrorCode::SchemaValidationFailed => "SCHEMA_VALIDATION_FAILED",
            IntakeErrorCode::VersionUnsupported => "VERSION_UNSUPPORTED",
            IntakeErrorCode::CorrelationFieldsInvalid => "CORRELATION_FIELDS_INVALID",
            IntakeErrorCode::TenantForbidden => "TENANT_FORBIDDEN",
            IntakeErrorCode::PayloadTooSmall => "PAYLOAD_TOO_SMALL",
        }
    }
}

/// A request the router answers with an error reply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Rejection {
    /// The contract error code.
    pub code: ErrorCode,
    /// A sentence for humans that names the field or the reason.
    pub message: String,
    /// Set for intake failures only.
    pub intake: Option<IntakeErrorCode>,
    /// Machine-readable details (`field`, `tenant_id`, `retry_after_seconds`, ...).
    pub details: Map<String, Value>,
}

impl Rejection {
    /// A rejection with no intake code and no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
            intake: None,
            details: Map::new(),
        }
    }

    /// An `invalid_request` intake rejection naming `field` in `details.field`.
    pub fn intake(intake: IntakeErrorCode, field: &str, message: impl Into<String>) -> Self {
        let mut rejection = Rejection::new(ErrorCode::InvalidRequest, message);
        rejection.intake = Some(intake);
        if !field.is_empty() {
            rejection.details.insert("field".into(), Value::from(field));
        }
        rejection
    }

    /// Adds one entry to `details`.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}
