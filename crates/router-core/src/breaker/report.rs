//! What a caller reports about a provider call: its [`CallOutcome`], and the [`Report`] that
//! also says when the decision behind the call was issued.

use serde::{Deserialize, Serialize};

/// What a caller reports about a provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The call worked.
    Success,
    /// The provider failed.
    Failure,
    /// The call timed out.
    Timeout,
    /// The provider refused for rate limiting (counts as a failure).
    RateLimited,
}

impl CallOutcome {
    pub(super) fn is_failure(self) -> bool {
        !matches!(self, CallOutcome::Success)
    }
}

/// What a report says about the call it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// The outcome.
    pub outcome: CallOutcome,
    /// When the decision that sent the call was issued, when the report names it.
    pub decided_at_ms: Option<u64>,
}
