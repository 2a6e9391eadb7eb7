//! The subjects of the contract under a prefix, and the tenant a scoped subject names.

/// The subjects of CONTRACT §1 under a prefix.
#[derive(Debug, Clone)]
pub struct Subjects {
    /// `<prefix>.v1.decide`
    pub decide: String,
    /// `<prefix>.v1.decide.reply`
    pub decide_reply: String,
    /// `<prefix>.v1.decide.dlq`
    pub dlq: String,
    /// `<prefix>.v1.status.backpressure`
    pub backpressure_status: String,
    /// `<prefix>.v1.feedback`
    pub feedback: String,
    /// `<prefix>.v1.decide.tenant.*`: a tenant's caller decides on its own token.
    pub decide_scoped: String,
    /// `<prefix>.v1.feedback.tenant.*`: a tenant's caller reports on its own token.
    pub feedback_scoped: String,
}

impl Subjects {
    /// Subjects under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Subjects {
            decide: format!("{prefix}.v1.decide"),
            decide_reply: format!("{prefix}.v1.decide.reply"),
            dlq: format!("{prefix}.v1.decide.dlq"),
            backpressure_status: format!("{prefix}.v1.status.backpressure"),
            feedback: format!("{prefix}.v1.feedback"),
            decide_scoped: format!("{prefix}.v1.decide.tenant.*"),
            feedback_scoped: format!("{prefix}.v1.feedback.tenant.*"),
        }
    }

    /// The decide subject of `tenant`'s caller: `<prefix>.v1.decide.tenant.<tenant>`.
    pub fn decide_for(&self, tenant: &str) -> String {
        format!("{}.{tenant}", self.decide_scoped.trim_end_matches(".*"))
    }

    /// The feedback subject of `tenant`'s caller: `<prefix>.v1.feedback.tenant.<tenant>`.
    pub fn feedback_for(&self, tenant: &str) -> String {
        format!("{}.{tenant}", self.feedback_scoped.trim_end_matches(".*"))
    }
}

/// The tenant a message's subject names when it matched `scoped` (a `….tenant.*` subject);
/// `None` for the unscoped subject.
pub fn subject_tenant<'a>(scoped: &str, subject: &'a str) -> Option<&'a str> {
    subject.strip_prefix(scoped.strip_suffix('*')?)
}
