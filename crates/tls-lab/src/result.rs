//! What a case must show, what it showed, and the judged row of the table.

use serde_json::Value;

/// What a case must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The connection is made and a decide request is answered `ok: true`.
    Decision,
    /// The TLS handshake completes (control case on a server without a router).
    Handshake,
    /// The connection fails, or no request passes, and the error names one of these reasons.
    Refused(&'static [&'static str]),
    /// The router still answers `/readyz` with 200.
    Ready,
}

impl Expect {
    fn describe(self) -> String {
        match self {
            Expect::Decision => "accepted, decide ok:true".to_owned(),
            Expect::Handshake => "accepted (handshake)".to_owned(),
            Expect::Refused(reasons) => format!("refused ({})", reasons[0]),
            Expect::Ready => "/readyz 200".to_owned(),
        }
    }
}

/// What an attempt showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Connected, and the decide request got this reply.
    Answered(Value),
    /// The handshake completed (control case).
    HandshakeOk,
    /// Connected, but no request passed (why).
    NoReply(String),
    /// The connection or handshake failed (the error, with its causes).
    Refused(String),
    /// The server answered a plaintext CONNECT/PING with PONG (it should have hung up).
    PlaintextAccepted(String),
    /// The router's readiness.
    Ready(bool),
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// The expectation, in words.
    pub expected: String,
    /// What happened, in words.
    pub observed: String,
    pass: bool,
}

impl CaseResult {
    /// Judges what an attempt showed against what the case expects.
    pub fn judge(name: &str, expect: Expect, observed: &Observed) -> Self {
        let pass = match (expect, observed) {
            (Expect::Decision, Observed::Answered(reply)) => reply["ok"] == true,
            (Expect::Handshake, Observed::HandshakeOk) => true,
            (Expect::Refused(reasons), Observed::Refused(error)) => {
                reasons.iter().any(|r| error.contains(r))
            }
            // Connected but nothing passed still counts as refused, whatever the reason.
            (Expect::Refused(_), Observed::NoReply(_)) => true,
            (Expect::Ready, Observed::Ready(ready)) => *ready,
            _ => false,
        };
        CaseResult {
            name: name.to_owned(),
            expected: expect.describe(),
            observed: describe(observed),
            pass,
        }
    }

    /// A row judged elsewhere (the authorization cases).
    pub fn new(name: &str, expected: &str, observed: &str, pass: bool) -> Self {
        CaseResult {
            name: name.to_owned(),
            expected: expected.to_owned(),
            observed: observed.to_owned(),
            pass,
        }
    }

    /// The row for the router's readiness after every case.
    pub fn router_still_ready(ready: bool) -> Self {
        Self::judge(
            "router still ready after the cases",
            Expect::Ready,
            &Observed::Ready(ready),
        )
    }

    /// True when the case behaved as expected.
    pub fn passed(&self) -> bool {
        self.pass
    }

    /// `pass` or `FAIL`.
    pub fn verdict(&self) -> &'static str {
        if self.pass {
            "pass"
        } else {
            "FAIL"
        }
    }
}

fn describe(observed: &Observed) -> String {
    match observed {
        Observed::Answered(reply) if reply["ok"] == true => format!(
            "connected; decide ok:true ({} via {})",
            reply["decision"]["provider_id"].as_str().unwrap_or("?"),
            reply["decision"]["reason"].as_str().unwrap_or("?")
        ),
        Observed::Answered(reply) => format!(
            "connected; request ANSWERED ok:{} {}",
            reply["ok"],
            reply["error"]["code"].as_str().unwrap_or("")
        ),
        Observed::HandshakeOk => "handshake ok (PONG)".to_owned(),
        Observed::NoReply(why) => format!("connected, no request passed: {why}"),
        Observed::Refused(error) => format!("refused: {error}"),
        Observed::PlaintextAccepted(said) => format!("plaintext ACCEPTED: {said}"),
        Observed::Ready(true) => "/readyz 200".to_owned(),
        Observed::Ready(false) => "/readyz NOT 200".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REASONS: &[&str] = &["UnknownCA"];

    #[test]
    fn a_refusal_passes_only_for_the_expected_reason() {
        let right = Observed::Refused("IO error: received fatal alert: UnknownCA".into());
        assert!(CaseResult::judge("c", Expect::Refused(REASONS), &right).passed());
        let wrong = Observed::Refused("IO error: connection refused".into());
        assert!(!CaseResult::judge("c", Expect::Refused(REASONS), &wrong).passed());
        let no_reply = Observed::NoReply("no reply within 3 s".into());
        assert!(CaseResult::judge("c", Expect::Refused(REASONS), &no_reply).passed());
    }

    #[test]
    fn an_answer_or_a_plaintext_pong_is_never_a_refusal() {
        let answered =
            Observed::Answered(json!({"ok": false, "error": {"code": "invalid_request"}}));
        assert!(!CaseResult::judge("c", Expect::Refused(REASONS), &answered).passed());
        let pong = Observed::PlaintextAccepted("PONG; server closed the connection".into());
        let reasons: &[&str] = &["server closed the connection"];
        assert!(!CaseResult::judge("c", Expect::Refused(reasons), &pong).passed());
    }

    #[test]
    fn acceptance_needs_ok_true() {
        let ok = Observed::Answered(json!({"ok": true, "decision": {"provider_id": "openai"}}));
        assert!(CaseResult::judge("c", Expect::Decision, &ok).passed());
        let error = Observed::Answered(json!({"ok": false}));
        assert!(!CaseResult::judge("c", Expect::Decision, &error).passed());
        let refused = Observed::Refused("UnknownIssuer".into());
        assert!(!CaseResult::judge("c", Expect::Decision, &refused).passed());
        assert!(!CaseResult::judge("c", Expect::Handshake, &refused).passed());
        assert!(!CaseResult::router_still_ready(false).passed());
    }
}
