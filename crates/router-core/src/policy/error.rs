//! [`PolicyError`]: what every step of policy validation returns, naming the field at fault.

/// A policy that failed validation: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    /// The offending field, e.g. `providers[1].weight`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl PolicyError {
    /// An error about `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        PolicyError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}
