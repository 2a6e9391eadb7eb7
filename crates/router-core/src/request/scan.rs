//! One pass over a JSON object's members, each value kept as its raw text: the fast way in
//! for the request's top level and its `task` / `message` object.
//!
//! The scanner vouches only for the plain subset of JSON that callers send: it gives up
//! (`None`) on anything else — an escape in a key, a member named twice, nesting deeper than
//! [`MAX_SCAN_DEPTH`], a `\u` escape of a UTF-16 surrogate, a number with an exponent or
//! longer than [`MAX_PLAIN_NUMBER`] (which may lie beyond what `serde_json` accepts, like
//! `1e400`), and every syntax error — and the caller then parses with `serde_json`, whose
//! answer (and error message) stands. So what it accepts is always JSON that `serde_json`
//! accepts, split into the same members; the property tests of `decode` compare the two
//! ways on generated and broken bodies.

use std::ops::Range;

use smallvec::SmallVec;

use crate::json_bytes::first_special;

/// Deepest nesting the scanner follows before it leaves the body to `serde_json` (whose own
/// limit is 128).
pub(super) const MAX_SCAN_DEPTH: usize = 100;

/// Longest number the scanner vouches for: far inside the range of an `f64`.
const MAX_PLAIN_NUMBER: usize = 24;

/// Calls `member(key, value)` for each member of the object that `text` holds (white space
/// around it allowed), in order, with each value's raw JSON text. `None` when the scanner
/// gives up, or when `member` does.
pub(super) fn object_members<'a>(
    text: &'a str,
    mut member: impl FnMut(&'a str, &'a str) -> Option<()>,
) -> Option<()> {
    let mut unused = Members::new();
    object_members_split(
        text,
        &mut unused,
        |_| false,
        |key, value, _| member(key, value),
    )
}

/// The members of a nested object, each as (key, raw value): found while the object holding
/// it was scanned, so that its reader need not scan it again.
pub(super) type Members<'a> = SmallVec<[(&'a str, &'a str); 8]>;

/// [`object_members`], which also splits the object value of each member that `split` names
/// into that object's own members, pushed onto `nested`. `member` gets the range of `nested`
/// that holds them; `None` when the value is not an object or one of its keys has an escape
/// (its reader scans it again then).
pub(super) fn object_members_split<'a>(
    text: &'a str,
    nested: &mut Members<'a>,
    split: impl Fn(&str) -> bool,
    mut member: impl FnMut(&'a str, &'a str, Option<Range<usize>>) -> Option<()>,
) -> Option<()> {
    let mut scan = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    scan.white_space();
    scan.expect(b'{')?;
    scan.white_space();
    if scan.peek() == Some(b'}') {
        scan.at += 1;
    } else {
        loop {
            let key = scan.plain_key()?;
            scan.white_space();
            scan.expect(b':')?;
            scan.white_space();
            let start = scan.at;
            let members = if scan.peek() == Some(b'{') && split(key) {
                scan.split_object(nested)?
            } else {
                scan.value(1)?;
                None
            };
            member(key, text.get(start..scan.at)?, members)?;
            scan.white_space();
            match scan.next()? {
                b',' => scan.white_space(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    scan.white_space();
    (scan.at == scan.bytes.len()).then_some(())
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    fn white_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// A key without escapes, as the text between its quotes.
    fn plain_key(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        self.at += first_special(self.bytes.get(self.at..)?)?;
        // The first quote, backslash or control character: only a quote ends a plain key.
        if self.next()? != b'"' {
            return None;
        }
        // Quotes are ASCII, so both ends are character boundaries.
        self.text.get(start..self.at - 1)
    }

    /// Any JSON value at `depth` (the object holding it is at `depth - 1`).
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.string_rest()
            }
            b'{' => self.object(depth, |_, _| {}),
            b'[' => self.array(depth),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// The rest of a string after its opening quote, escapes included.
    fn string_rest(&mut self) -> Option<()> {
        loop {
            self.at += first_special(self.bytes.get(self.at..)?)?;
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => self.plain_unicode_escape()?,
                    _ => return None,
                },
                byte if byte < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// The four hex digits of a `\u` escape, unless they name a UTF-16 surrogate (a pair,
    /// or a lone one that `serde_json` refuses, is left to it).
    fn plain_unicode_escape(&mut self) -> Option<()> {
        let hex = self.text.get(self.at..self.at + 4)?;
        let code = u16::from_str_radix(hex, 16).ok()?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || (0xD800..=0xDFFF).contains(&code) {
            return None;
        }
        self.at += 4;
        Some(())
    }

    /// The object at `depth`, each of its members given to `member` as (where the raw text of
    /// its key lies between the quotes, where its raw value lies) in `text`.
    fn object(
        &mut self,
        depth: usize,
        mut member: impl FnMut(Range<usize>, Range<usize>),
    ) -> Option<()> {
        if depth > MAX_SCAN_DEPTH {
            return None;
        }
        self.at += 1;
        self.white_space();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.expect(b'"')?;
            let key_start = self.at;
            self.string_rest()?;
            let key_end = self.at - 1;
            self.white_space();
            self.expect(b':')?;
            self.white_space();
            let value_start = self.at;
            self.value(depth + 1)?;
            member(key_start..key_end, value_start..self.at);
            self.white_space();
            match self.next()? {
                b',' => self.white_space(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A member's object value (at depth 1), its members pushed onto `nested`: their range,
    /// or `None` when a key has an escape (then nothing is pushed).
    fn split_object(&mut self, nested: &mut Members<'a>) -> Option<Option<Range<usize>>> {
        let first = nested.len();
        let mut plain = true;
        let text = self.text;
        self.object(1, |key, value| match (text.get(key), text.get(value)) {
            (Some(key), Some(value)) if plain && !key.contains('\\') => {
                nested.push((key, value));
            }
            _ => plain = false,
        })?;
        if !plain {
            nested.truncate(first);
        }
        Some(plain.then(|| first..nested.len()))
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_SCAN_DEPTH {
            return None;
        }
        self.at += 1;
        self.white_space();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.value(depth + 1)?;
            self.white_space();
            match self.next()? {
                b',' => self.white_space(),
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, at most [`MAX_PLAIN_NUMBER`] long: an exponent or a
    /// longer number is left to `serde_json`, which refuses those out of range.
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        let plain = !matches!(self.peek(), Some(b'e' | b'E'));
        (plain && self.at - start <= MAX_PLAIN_NUMBER).then_some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Option<Vec<(&str, &str)>> {
        let mut found = Vec::new();
        object_members(text, |key, value| {
            found.push((key, value));
            Some(())
        })?;
        Some(found)
    }

    #[test]
    fn splits_an_object_into_raw_members() {
        let text =
            r#" { "a" : 1 , "b":[true, {"c": "d\"\u00e9"}], "e": -0.5, "f": null, "g": {} } "#;
        assert_eq!(
            members(text),
            Some(vec![
                ("a", "1"),
                ("b", r#"[true, {"c": "d\"\u00e9"}]"#),
                ("e", "-0.5"),
                ("f", "null"),
                ("g", "{}"),
            ])
        );
        assert_eq!(members("{}"), Some(vec![]));
    }

    #[test]
    fn gives_up_on_what_it_does_not_vouch_for() {
        for text in [
            "",
            "[]",
            "{",
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e400}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\uD83D\uDE00"}"#,
            r#"{"a":"\u+123"}"#,
            r#"{"a":-0.5e+3}"#,
            r#"{"a":[1E2]}"#,
            r#"{"a":1000000000000000000000000000000}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a\u0062":1}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{}"#,
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":'x'}"#,
        ] {
            assert_eq!(members(text), None, "{text}");
        }
    }

    #[test]
    fn nesting_is_followed_to_its_limit_and_no_further() {
        let nested =
            |depth: usize| format!("{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
        assert!(members(&nested(MAX_SCAN_DEPTH)).is_some());
        assert!(members(&nested(MAX_SCAN_DEPTH + 1)).is_none());
    }
}
