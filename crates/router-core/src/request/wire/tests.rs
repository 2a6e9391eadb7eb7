//! The scanner's fields against `serde_json`'s, on generated request bodies and on the same
//! bodies broken by one edit: whatever the scanner accepts, `serde_json` accepts with the
//! same fields.

use proptest::prelude::*;

use super::{
    parse_context, parse_task, Nested, RequestFields, SplitMembers, TaskFields, WireMessage,
    WireRequest, WireTask,
};

/// Keys the request, `task` and `message` objects know, one written with an escape, and one
/// they do not.
const KEYS: [&str; 15] = [
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
    "message",
    "metadata",
    // "type" with an escape: serde_json reads it as `type`, the scanner leaves it to it.
    r"ty\u0070e",
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
    let mut split = SplitMembers::default();
    if let Some(fields) = RequestFields::scanned(text, &mut split) {
        let theirs = serde_json::from_str::<WireRequest>(text);
        prop_assert!(
            theirs.is_ok(),
            "scanned but serde refused: {text} ({theirs:?})",
            theirs = theirs.err()
        );
        split_agrees(&fields, &split)?;
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

/// The objects read from the members the body's scan split off are what reading their raw
/// text gives (fields, or the same refusal).
fn split_agrees(fields: &RequestFields, split: &SplitMembers) -> Result<(), TestCaseError> {
    let tasks = [
        (fields.task, split.of(Nested::Task), false),
        (fields.message, split.of(Nested::Message), true),
    ];
    for (raw, members, message) in tasks {
        if let Some(raw) = raw {
            let from_split = parse_task(raw, members, "task", message).ok();
            prop_assert_eq!(
                from_split,
                parse_task(raw, None, "task", message).ok(),
                "{}",
                raw
            );
        }
    }
    let contexts = [
        (fields.constraints, split.of(Nested::Constraints)),
        (fields.metadata, split.of(Nested::Metadata)),
    ];
    for (raw, members) in contexts {
        if let Some(raw) = raw {
            let from_split = parse_context(raw, members, "constraints").ok();
            prop_assert_eq!(
                from_split,
                parse_context(raw, None, "constraints").ok(),
                "{}",
                raw
            );
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
    let mut split = SplitMembers::default();
    let fields = RequestFields::scanned(body, &mut split).expect("scanned");
    assert_eq!(fields.tenant_id, Some("\"acme\""));
    let task = TaskFields::scanned(fields.task.expect("task"), false).expect("task scanned");
    assert_eq!(task.payload, Some(r#"{"prompt":"hi there"}"#));
    // The same scan split the task and the constraints into their members.
    let members = [
        ("type", "\"text.generate\""),
        ("payload", r#"{"prompt":"hi there"}"#),
    ];
    assert_eq!(split.of(Nested::Task), Some(&members[..]));
    assert_eq!(
        split.of(Nested::Constraints),
        Some(&[("region", "\"eu\"")][..])
    );
    assert_eq!(split.of(Nested::Message), None);
    // A key with an escape is not split: the task's reader scans it again.
    let escaped = r#"{"task":{"ty\u0070e":"a","payload_ref":"p"}}"#;
    let mut split = SplitMembers::default();
    RequestFields::scanned(escaped, &mut split).expect("scanned");
    assert_eq!(split.of(Nested::Task), None);
    // Named twice, or null: left to serde_json.
    for twice_or_null in [
        r#"{"tenant_id":"a","tenant_id":"b"}"#,
        r#"{"trace_id":null}"#,
    ] {
        assert!(RequestFields::scanned(twice_or_null, &mut split).is_none());
    }
}
