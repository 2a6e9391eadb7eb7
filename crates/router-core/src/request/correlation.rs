//! `run_id`, `flow_id` and `step_id`: all three or none, each a UUID or a ULID.

use crate::error::{IntakeErrorCode, Rejection};
use crate::ids;

use super::model::Correlation;
use super::wire::required_string;

/// The correlation ids: `None` when all three are absent, a rejection when only some are
/// given or one is neither a UUID nor a ULID.
pub(super) fn correlation(
    run_id: Option<&str>,
    flow_id: Option<&str>,
    step_id: Option<&str>,
) -> Result<Option<Correlation>, Rejection> {
    let invalid = |field: &str, message: String| {
        Rejection::intake(IntakeErrorCode::CorrelationFieldsInvalid, field, message)
    };
    let (run_id, flow_id, step_id) = match (run_id, flow_id, step_id) {
        (None, None, None) => return Ok(None),
        (Some(run), Some(flow), Some(step)) => (run, flow, step),
        (run, flow, _) => {
            let missing = if run.is_none() {
                "run_id"
            } else if flow.is_none() {
                "flow_id"
            } else {
                "step_id"
            };
            return Err(invalid(
                missing,
                format!("run_id, flow_id and step_id go together: {missing} is missing"),
            ));
        }
    };
    let check = |raw: &str, field: &str| -> Result<String, Rejection> {
        let value = required_string(raw, field)?;
        if ids::is_uuid(&value) || ids::is_ulid(&value) {
            Ok(value)
        } else {
            Err(invalid(field, format!("{field} must be a UUID or a ULID")))
        }
    };
    Ok(Some(Correlation {
        run_id: check(run_id, "run_id")?,
        flow_id: check(flow_id, "flow_id")?,
        step_id: check(step_id, "step_id")?,
    }))
}
