//! What became of one request: a success or one kind of error.
//!
//! Every request the bench sends ends in exactly one [`Outcome`]. Only a reply whose JSON
//! body says `"ok": true` is a success; everything else is an error of a named kind and is
//! counted in `errors_total` / `errors_by_kind`.

use async_nats::{RequestError, RequestErrorKind};
use serde::Deserialize;

/// The result of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reply with `"ok": true`.
    Ok,
    /// A reply with `"ok": false`; holds `error.code` (`"missing"` when absent).
    ErrorReply(String),
    /// No reply within the request timeout.
    Timeout,
    /// The server said nobody is subscribed to the subject.
    NoResponders,
    /// A reply that is not JSON or has no boolean `ok`.
    MalformedReply,
    /// A client or connection failure (disconnect, closed channel, oversize payload...).
    Transport,
}

impl Outcome {
    /// True for a successful request.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// The key under which an error is counted in `errors_by_kind` (`None` for success).
    ///
    /// Transport kinds are plain words; error replies are `reply.<error.code>`, so a router
    /// error code can never be confused with a transport failure.
    pub fn error_kind(&self) -> Option<String> {
        match self {
            Outcome::Ok => None,
            Outcome::ErrorReply(code) => Some(format!("reply.{code}")),
            Outcome::Timeout => Some("timeout".to_owned()),
            Outcome::NoResponders => Some("no_responders".to_owned()),
            Outcome::MalformedReply => Some("malformed_reply".to_owned()),
            Outcome::Transport => Some("transport".to_owned()),
        }
    }

    /// Classifies a reply body.
    pub fn from_reply(body: &[u8]) -> Outcome {
        #[derive(Deserialize)]
        struct Reply {
            ok: Option<bool>,
            error: Option<ErrorPart>,
        }
        #[derive(Deserialize)]
        struct ErrorPart {
            code: Option<String>,
        }
        match serde_json::from_slice::<Reply>(body) {
            Ok(Reply { ok: Some(true), .. }) => Outcome::Ok,
            Ok(Reply {
                ok: Some(false),
                error,
            }) => {
                let code = error
                    .and_then(|e| e.code)
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| "missing".to_owned());
                Outcome::ErrorReply(sanitize_code(&code))
            }
            _ => Outcome::MalformedReply,
        }
    }

    /// Classifies a failed request.
    pub fn from_request_error(err: &RequestError) -> Outcome {
        match err.kind() {
            RequestErrorKind::TimedOut => Outcome::Timeout,
            RequestErrorKind::NoResponders => Outcome::NoResponders,
            RequestErrorKind::InvalidSubject
            | RequestErrorKind::MaxPayloadExceeded
            | RequestErrorKind::Other => Outcome::Transport,
        }
    }
}

/// Keeps error codes usable as JSON/Markdown keys: at most 64 characters of `[A-Za-z0-9._-]`.
fn sanitize_code(code: &str) -> String {
    code.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_reply() {
        let body = br#"{"ok":true,"decision":{"provider_id":"openai"},"context":{}}"#;
        assert_eq!(Outcome::from_reply(body), Outcome::Ok);
        assert_eq!(Outcome::from_reply(br#"{"ok":true}"#).error_kind(), None);
    }

    #[test]
    fn error_reply_is_counted_by_code() {
        let body = br#"{"ok":false,"error":{"code":"overloaded","details":{}}}"#;
        let outcome = Outcome::from_reply(body);
        assert_eq!(outcome, Outcome::ErrorReply("overloaded".into()));
        assert_eq!(outcome.error_kind().as_deref(), Some("reply.overloaded"));
    }

    #[test]
    fn error_reply_without_code() {
        assert_eq!(
            Outcome::from_reply(br#"{"ok":false}"#)
                .error_kind()
                .as_deref(),
            Some("reply.missing")
        );
        assert_eq!(
            Outcome::from_reply(br#"{"ok":false,"error":{"code":"bad code\n"}}"#),
            Outcome::ErrorReply("bad_code_".into())
        );
    }

    #[test]
    fn malformed_replies() {
        for body in [&b"not json"[..], b"{}", br#"{"ok":"yes"}"#, b"", b"[1]"] {
            assert_eq!(Outcome::from_reply(body), Outcome::MalformedReply);
        }
    }

    #[test]
    fn transport_errors() {
        let timeout = RequestError::new(RequestErrorKind::TimedOut);
        assert_eq!(Outcome::from_request_error(&timeout), Outcome::Timeout);
        let none = RequestError::new(RequestErrorKind::NoResponders);
        assert_eq!(
            Outcome::from_request_error(&none).error_kind().as_deref(),
            Some("no_responders")
        );
        let other = RequestError::new(RequestErrorKind::Other);
        assert_eq!(Outcome::from_request_error(&other), Outcome::Transport);
    }
}
