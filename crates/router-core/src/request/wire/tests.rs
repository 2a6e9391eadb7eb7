//! The scanner's fields against `serde_json`'s, on generated request bodies and on the same
//! bodies broken by one edit: whatever the scanner accepts, `serde_json` accepts with the
//! same fields.

use proptest::prelude::*;

use super::{RequestFields, TaskFields, WireMessage, WireRequest, WireTask};

/// Keys the request, `task` and `message` objects know, and one they do not.
const KEYS: [&str; 12] = [
    "version",
    "request_id",
    "tenant_id",
    "trace_id",
    "task",
    "constraints",
    "type",
    "payload",
    "message_type",
    "message_id",
    "payload_ref",
    "other",
];

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9-]{0,12}", "\\PC{0,8}", "[\\x00-\\x7f]{0,8}"]
        .prop_map(|text| serde_json::to_string(&text).expect("a string encodes"))
}

fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        (-1e6f64..1e6).prop_map(|n| format!("{n:e}")),
        json_string(),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..4).prop_map(
                |members| {
                    let members: Vec<String> = members
                        .iter()
                        .map(|(k, v)| format!("\"{k}\" : {v}"))
                        .collect();
                    format!("{{ {} }}", members.join(" ,\n"))
                }
            ),
        ]
    })
}

/// An object of generated members (a key may repeat), with white space between tokens.
fn body() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(KEYS.to_vec()), json_value()), 0..8).prop_map(
        |members| {
            let members: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\t\"{k}\":{v}"))
                .collect();
            format!(" {{{}}}\n", members.join(","))
        },
    )
}

/// `text` with one byte replaced, inserted or removed at `at` (a char boundary near it).
fn broken(text: &str, at: usize, edit: u8, byte: u8) -> String {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    const INSERTS: &[u8] = b"{}[]\",:\\ 0e-.nt";
    let insert = char::from(INSERTS[usize::from(byte) % INSERTS.len()]);
    let mut out = text.to_owned();
    match edit % 3 {
        0 if at < text.len() => {
            out.remove(at);
        }
        1 if at < text.len() => {
            out.remove(at);
            out.insert(at, insert);
        }
        _ => out.insert(at, insert),
    }
    out
}

fn agrees(text: &str) -> Result<(), TestCaseError> {
    if let Some(fields) = RequestFields::scanned(text) {
        let theirs = serde_json::from_str::<WireRequest>(text);
        prop_assert!(
            theirs.is_ok(),
            "scanned but serde refused: {text} ({theirs:?})",
            theirs = theirs.err()
        );
        prop_assert_eq!(fields, theirs.expect("checked").into());
    }
    for message in [false, true] {
        if let Some(fields) = TaskFields::scanned(text, message) {
            let theirs = if message {
                serde_json::from_str::<WireMessage>(text).map(TaskFields::from)
            } else {
                serde_json::from_str::<WireTask>(text).map(TaskFields::from)
            };
            prop_assert!(theirs.is_ok(), "scanned but serde refused: {text}");
            prop_assert_eq!(fields, theirs.expect("checked"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_scanner_reads_what_serde_reads(text in body()) {
        agrees(&text)?;
    }

    #[test]
    fn a_broken_body_the_scanner_accepts_serde_accepts_alike(
        text in body(),
        at in any::<usize>(),
        edit in any::<u8>(),
        byte in any::<u8>(),
    ) {
        agrees(&broken(&text, at, edit, byte))?;
    }
}

#[test]
fn a_plain_request_is_scanned() {
    let body = r#"{"version":"1","request_id":"r-1","tenant_id":"acme","task":{"type":"text.generate","payload":{"prompt":"hi there"}},"constraints":{"region":"eu"},"x":[1,2.5,null]}"#;
    let fields = RequestFields::scanned(body).expect("scanned");
    assert_eq!(fields.tenant_id, Some("\"acme\""));
    let task = TaskFields::scanned(fields.task.expect("task"), false).expect("task scanned");
    assert_eq!(task.payload, Some(r#"{"prompt":"hi there"}"#));
    // Named twice, or null: left to serde_json.
    assert!(RequestFields::scanned(r#"{"tenant_id":"a","tenant_id":"b"}"#).is_none());
    assert!(RequestFields::scanned(r#"{"trace_id":null}"#).is_none());
}
