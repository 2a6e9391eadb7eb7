//! The routing-context values the algorithm reads before deciding: `deadline`,
//! `retry_attempt`, `current_provider` ([`Inputs`]) and the `only` / `ignore` filters.

use serde_json::Value;

use crate::request::RoutingContext;

use crate::error::{ErrorCode, IntakeErrorCode, Rejection};
use crate::ids;

use super::model::Exclusion;

/// Longest `current_provider` accepted from the routing context, in bytes.
pub const MAX_PROVIDER_NAME_BYTES: usize = 128;

/// Longest `only` / `ignore` list accepted.
pub const MAX_FILTER_IDS: usize = 64;

/// Context values the algorithm reads.
pub(super) struct Inputs<'a> {
    pub(super) current_provider: Option<&'a str>,
    pub(super) retry_attempt: u64,
    pub(super) filters: Filters<'a>,
}

impl<'a> Inputs<'a> {
    pub(super) fn read(context: &'a RoutingContext<'_>, now_ms: u64) -> Result<Self, Rejection> {
        let invalid = |field: &str, message: &str| {
            Rejection::intake(IntakeErrorCode::SchemaValidationFailed, field, message)
        };
        match context.get("deadline") {
            None | Some(Value::Null) => {}
            Some(Value::Number(deadline)) => {
                if deadline.as_f64().is_some_and(|d| d < now_ms as f64) {
                    return Err(Rejection::new(
                        ErrorCode::DeadlineExceeded,
                        "the request deadline has already passed",
                    )
                    .with_detail("deadline", deadline.clone())
                    .with_detail("now", now_ms));
                }
            }
            Some(_) => return Err(invalid("deadline", "deadline must be a number (epoch ms)")),
        }
        let retry_attempt = match context.get("retry_attempt") {
            None | Some(Value::Null) => 0,
            Some(value) => value
                .as_u64()
                .ok_or_else(|| invalid("retry_attempt", "retry_attempt must be an integer >= 0"))?,
        };
        // It may become the decision's provider_id (retry): only a provider name, so that
        // the reply never echoes arbitrary, unbounded input.
        let current_provider = match context.get("current_provider") {
            None | Some(Value::Null) => None,
            Some(Value::String(name))
                if name.len() <= MAX_PROVIDER_NAME_BYTES && ids::is_provider_name(name) =>
            {
                Some(name.as_str())
            }
            Some(_) => {
                return Err(invalid(
                    "current_provider",
                    "current_provider must be a provider name ([a-z0-9_]+, at most 128 bytes)",
                ))
            }
        };
        Ok(Inputs {
            current_provider,
            retry_attempt,
            filters: Filters::read(context)?,
        })
    }
}

/// The request's provider filters (context `only` and `ignore`; unknown ids are ignored).
#[derive(Debug, Default)]
pub(super) struct Filters<'a> {
    only: Option<Vec<&'a str>>,
    ignore: Vec<&'a str>,
}

impl<'a> Filters<'a> {
    /// Reads `only` and `ignore` from the routing context.
    pub(super) fn read(context: &'a RoutingContext<'_>) -> Result<Self, Rejection> {
        Ok(Filters {
            only: ids(context, "only")?,
            ignore: ids(context, "ignore")?.unwrap_or_default(),
        })
    }

    /// True when the request names no filter.
    pub(super) fn is_empty(&self) -> bool {
        self.only.is_none() && self.ignore.is_empty()
    }

    /// Why the filters remove `provider`, if they do.
    pub(super) fn removes(&self, provider: &str) -> Option<Exclusion> {
        if self.ignore.contains(&provider) {
            return Some(Exclusion::Ignore);
        }
        match &self.only {
            Some(only) if !only.contains(&provider) => Some(Exclusion::Only),
            _ => None,
        }
    }
}

fn ids<'a>(context: &'a RoutingContext<'_>, key: &str) -> Result<Option<Vec<&'a str>>, Rejection> {
    let invalid = || {
        Rejection::intake(
            IntakeErrorCode::SchemaValidationFailed,
            key,
            format!("{key} must be a list of at most {MAX_FILTER_IDS} provider ids"),
        )
    };
    match context.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) if list.len() <= MAX_FILTER_IDS => list
            .iter()
            .map(|id| id.as_str().ok_or_else(invalid))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid()),
    }
}
