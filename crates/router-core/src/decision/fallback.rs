//! The fallback rules (CONTRACT §4.3 step 4): the first rule whose `when` matches retries the
//! current provider while its budget lasts, then sends the call to the rule's `to`.

use super::choice::Choice;
use super::model::{Decision, Reason};

impl Choice<'_, '_> {
    /// The decision of the first matching rule, `None` when no rule applies (or every
    /// provider a rule names is blocked by its breaker).
    pub(super) fn fallback_rules(
        &mut self,
        current: Option<&str>,
        retry_attempt: u64,
        blocked_by_breakers: bool,
    ) -> Option<Decision> {
        for rule in &self.policy.fallbacks {
            if !rule.when.matches(self.context) {
                continue;
            }
            let mut breaker_blocked_retry = false;
            if let Some(current) = current {
                if retry_attempt < u64::from(rule.retry) {
                    if self.eligible(current) {
                        return Some(self.make(
                            current,
                            Reason::Retry,
                            None,
                            Some((retry_attempt + 1, rule.retry)),
                        ));
                    }
                    breaker_blocked_retry = true;
                }
            }
            if self.eligible(&rule.to) {
                let reason = if blocked_by_breakers || breaker_blocked_retry {
                    Reason::CircuitBreakerFallback
                } else {
                    Reason::Fallback
                };
                return Some(self.make(&rule.to, reason, None, None));
            }
        }
        None
    }
}
