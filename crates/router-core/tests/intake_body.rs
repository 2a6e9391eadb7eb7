//! Bodies that are not a readable request object, and what every intake error reply must
//! look like: the §3 shape, which ids it echoes, the size limit it names, and how little of
//! the input it quotes.

mod common;

use common::intake_table::*;
use common::*;
use serde_json::json;

/// Bodies that are not a readable request object.
#[test]
fn body_rules() {
    const MIB: usize = 1024 * 1024;
    let valid = bytes(&base());
    let padded = |size: usize| {
        let mut body = valid.clone();
        body.resize(size, b' ');
        body
    };
    let valid_str = String::from_utf8(valid.clone()).expect("UTF-8");
    let spliced = |insert: &[u8]| {
        // {"x": <insert>, ...the valid request...}
        let mut body = br#"{"x":""#.to_vec();
        body.extend_from_slice(insert);
        body.extend_from_slice(b"\",");
        body.extend_from_slice(&valid[1..]);
        body
    };
    let bad = |field: Option<&'static str>| invalid_anon(SCHEMA, field);
    run(vec![
        raw("exactly 1 MiB", padded(MIB), ok()),
        raw("1 MiB + 1 byte", padded(MIB + 1), bad(None)),
        raw("10 MiB of zeros", vec![0u8; 10 * MIB], bad(None)),
        raw("empty body", "", bad(None)),
        raw("white space only", " \n\t ", bad(None)),
        raw("truncated object", &valid[..valid.len() - 1], bad(None)),
        raw("not JSON at all", "hello", bad(None)),
        raw("missing value", r#"{"request_id":}"#, bad(None)),
        raw(
            "trailing comma",
            format!("{},}}", &valid_str[..valid_str.len() - 1]),
            bad(None),
        ),
        raw("trailing garbage", format!("{valid_str} x"), bad(None)),
        raw("two objects", format!("{valid_str}{valid_str}"), bad(None)),
        raw("JSON list", "[]", bad(None)),
        raw(
            "JSON list of a request",
            format!("[{valid_str}]"),
            bad(None),
        ),
        raw("JSON string", r#""request""#, bad(None)),
        raw("JSON number", "42", bad(None)),
        raw("JSON null", "null", bad(None)),
        raw("JSON true", "true", bad(None)),
        raw(
            "leading and trailing white space",
            format!("\n  {valid_str}\n  "),
            ok(),
        ),
        raw(
            "UTF-8 byte order mark",
            [b"\xEF\xBB\xBF".as_slice(), &valid].concat(),
            bad(None),
        ),
        raw(
            "invalid UTF-8 in request_id",
            [
                br#"{"request_id":"r-"#.as_slice(),
                b"\xff\xfe",
                &valid_str.as_bytes()[16..],
            ]
            .concat(),
            bad(None),
        ),
        raw(
            "invalid UTF-8 in an unknown field",
            spliced(b"\xc3\x28"),
            bad(None),
        ),
        raw(
            "UTF-16 surrogate encoded as UTF-8",
            spliced(b"\xed\xa0\x80"),
            bad(None),
        ),
        raw("overlong UTF-8", spliced(b"\xc0\xaf"), bad(None)),
        raw(
            "invalid UTF-8 in a key",
            [br#"{"\xff":1,"#.as_slice(), &valid[1..]].concat(),
            bad(None),
        ),
        raw(
            "NUL byte outside strings",
            [b"\0".as_slice(), &valid].concat(),
            bad(None),
        ),
        raw(
            "control character inside a string",
            spliced(b"\x01"),
            bad(None),
        ),
        row(
            "unknown fields are ignored",
            set(
                set(base(), "extra", json!({"a": [1, {"b": null}]})),
                "x_y",
                json!(1e300),
            ),
            ok(),
        ),
        raw(
            "duplicate request_id",
            r#"{"request_id":"r-1","request_id":"r-2","tenant_id":"acme","task":{"type":"chat","payload":{"prompt":"hello"}}}"#,
            bad(None),
        ),
        raw(
            "duplicate tenant_id",
            r#"{"request_id":"r-1","tenant_id":"acme","tenant_id":"globex","task":{"type":"chat","payload":{"prompt":"hello"}}}"#,
            bad(None),
        ),
        raw(
            "duplicate unknown field is ignored",
            r#"{"request_id":"r-1","x":1,"x":2,"tenant_id":"acme","task":{"type":"chat","payload":{"prompt":"hello"}}}"#,
            ok(),
        ),
    ]);
}

/// An intake error reply has exactly the §3 shape.
#[test]
fn error_reply_shape() {
    let router = router();
    let reply = send(
        &router,
        &set(del(base(), "task.type"), "trace_id", json!(W3C)),
    );
    assert_eq!(
        reply,
        json!({"ok": false,
               "error": {"code": "invalid_request", "message": "task.type is missing",
                         "intake_error_code": "CORRELATION_FIELDS_INVALID",
                         "details": {"field": "task.type"}},
               "context": {"request_id": "r-1", "trace_id": W3C}})
    );
}

/// A rejected trace id is not echoed; the request id still is.
#[test]
fn an_invalid_trace_id_is_not_echoed() {
    let router = router();
    let reply = send(&router, &set(base(), "trace_id", json!("not-a-trace")));
    assert_eq!(reply["context"], json!({"request_id": "r-1"}));
}

/// An over-size body is refused before parsing and says what the limit is.
#[test]
fn oversize_body_names_the_limit() {
    let router = router();
    let mut body = bytes(&base());
    body.resize(1024 * 1024 + 1, b' ');
    let reply = send_raw(&router, &body, None, NOW);
    assert_eq!(reply["error"]["details"], json!({"max_payload": 1_048_576}));
    assert_eq!(reply["context"], json!({"request_id": null}));
}

/// Error messages quote bad input only in part: a reply must stay small whatever the request
/// (a NATS reply over the server's max_payload would never be delivered).
#[test]
fn error_replies_do_not_echo_large_input() {
    let router = router();
    let big = "v".repeat(900 * 1024);
    let retry = set(
        set(base(), "constraints.current_provider", json!(big)),
        "constraints.status",
        json!("5xx"),
    );
    let handled = router.handle(&bytes(&retry), None, NOW, &mut rng(1));
    assert!(
        handled.reply.len() < 1024,
        "retry reply is {} bytes",
        handled.reply.len()
    );
    for (request, header) in [
        (set(base(), "version", json!(big)), None),
        (set(base(), "version", json!([big])), None),
        (base(), Some(big.as_str())),
    ] {
        let handled = router.handle(&bytes(&request), header, NOW, &mut rng(1));
        let reply = parse(&handled);
        assert_eq!(reply["error"]["intake_error_code"], VERSION);
        assert!(
            handled.reply.len() < 1024,
            "reply is {} bytes",
            handled.reply.len()
        );
    }
}
