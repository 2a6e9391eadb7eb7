//! The routing context a decision reads: `constraints` merged with `metadata` (metadata
//! wins), plus `tenant_id` (CONTRACT §2). Each member is kept as the raw JSON text of the
//! request body and parsed the first time the decision looks it up, so a context the policy
//! never reads costs neither a parse nor an allocation.

use std::borrow::Cow;
use std::cell::OnceCell;

use serde_json::{Map, Value};
use smallvec::SmallVec;

use super::scan;

/// Members kept inline: callers send a handful (a session key, a deadline, a budget).
const INLINE_MEMBERS: usize = 4;

/// The routing context: a flat JSON object whose values are parsed on first use.
#[derive(Debug, Clone, Default)]
pub struct RoutingContext<'a> {
    members: SmallVec<[Member<'a>; INLINE_MEMBERS]>,
}

#[derive(Debug, Clone)]
struct Member<'a> {
    key: Cow<'a, str>,
    /// The value's raw JSON text, until it is parsed into `value` (`None` once given parsed).
    raw: Option<&'a str>,
    value: OnceCell<Value>,
}

impl Member<'_> {
    fn value(&self) -> &Value {
        self.value.get_or_init(|| match self.raw {
            // The text was read as JSON by the scanner or serde_json before it was kept, so
            // this parse succeeds; `null` would be read as an absent member.
            Some(raw) => serde_json::from_str(raw).unwrap_or(Value::Null),
            None => Value::Null,
        })
    }
}

impl<'a> RoutingContext<'a> {
    /// An empty context.
    pub fn new() -> Self {
        RoutingContext::default()
    }

    /// The members of the JSON object `text`: one scan when it is plain JSON, else
    /// `serde_json` (whose error names what is wrong). A member named twice keeps its last
    /// value, as `serde_json` does.
    pub(super) fn read(text: &'a str) -> Result<Self, serde_json::Error> {
        let mut context = RoutingContext::new();
        let scanned = scan::object_members(text, |key, raw| {
            context.insert_raw(Cow::Borrowed(key), raw);
            Some(())
        });
        match scanned {
            Some(()) => Ok(context),
            None => serde_json::from_str::<Map<String, Value>>(text).map(RoutingContext::from),
        }
    }

    /// The members of an object split from the body by its scan (their keys have no
    /// escapes); a member named twice keeps its last value, as in [`RoutingContext::read`].
    pub(super) fn from_split(members: &[(&'a str, &'a str)]) -> Self {
        let mut context = RoutingContext::new();
        for (key, raw) in members {
            context.insert_raw(Cow::Borrowed(key), raw);
        }
        context
    }

    /// The value of `key`, if the context has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|at| self.members[at].value())
    }

    /// Every member, in the order first given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.members.iter().map(|m| (&*m.key, m.value()))
    }

    /// True when the context has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when the context has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sets `key` to `value`, replacing what it held.
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Value) {
        let member = Member {
            key: key.into(),
            raw: None,
            value: OnceCell::from(value),
        };
        self.put(member);
    }

    /// Sets `key` to the value whose raw JSON text is `raw` (valid JSON, already read).
    pub(super) fn insert_raw(&mut self, key: Cow<'a, str>, raw: &'a str) {
        let member = Member {
            key,
            raw: Some(raw),
            value: OnceCell::new(),
        };
        self.put(member);
    }

    /// Every member of `other`, replacing those of the same key.
    pub fn extend(&mut self, other: RoutingContext<'a>) {
        for member in other.members {
            self.put(member);
        }
    }

    fn put(&mut self, member: Member<'a>) {
        match self.position(&member.key) {
            Some(at) => self.members[at] = member,
            None => self.members.push(member),
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.members.iter().position(|member| member.key == key)
    }
}

impl From<Map<String, Value>> for RoutingContext<'_> {
    fn from(map: Map<String, Value>) -> Self {
        let mut context = RoutingContext::new();
        for (key, value) in map {
            context.insert(key, value);
        }
        context
    }
}

/// Equal when both hold the same keys with equal values, whatever the order.
impl PartialEq for RoutingContext<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .members
                .iter()
                .all(|member| other.get(&member.key) == Some(member.value()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn serde_map(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).expect("a JSON object")
    }

    #[test]
    fn values_are_read_on_first_use_and_last_duplicate_wins() {
        let context =
            RoutingContext::read(r#"{"user_id":"u-1","n":2,"user_id":"u-2"}"#).expect("read");
        assert_eq!(context.len(), 2);
        assert!(context.members.iter().all(|m| m.value.get().is_none()));
        assert_eq!(context.get("user_id"), Some(&json!("u-2")));
        assert_eq!(context.get("n"), Some(&json!(2)));
        assert_eq!(context.get("missing"), None);
    }

    #[test]
    fn escaped_keys_are_read_by_serde_json() {
        let text = r#"{"us\u0065r_id":"u-1"}"#;
        let context = RoutingContext::read(text).expect("read");
        assert_eq!(context, RoutingContext::from(serde_map(text)));
        assert_eq!(context.get("user_id"), Some(&json!("u-1")));
    }

    #[test]
    fn extend_and_insert_replace_members_of_the_same_key() {
        let mut context = RoutingContext::read(r#"{"a":1,"b":2}"#).expect("read");
        context.extend(RoutingContext::read(r#"{"b":3,"c":4}"#).expect("read"));
        context.insert("a", json!("x"));
        let expected = json!({"a": "x", "b": 3, "c": 4});
        let Value::Object(map) = expected else {
            unreachable!("an object")
        };
        assert_eq!(context, RoutingContext::from(map));
    }

    #[test]
    fn broken_objects_are_refused_as_serde_json_refuses_them() {
        for text in [r#"{"a":}"#, r#"{"a":1,}"#, "[1]", r#"{"a":1} x"#] {
            assert!(RoutingContext::read(text).is_err(), "{text}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e6f64..1e6).prop_map(|f| json!(f)),
            "[a-z\"\\\\\u{e9} ]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn reads_what_serde_json_reads(
            members in prop::collection::vec(("[a-z_\u{e9}]{1,4}", json_value()), 0..6),
            pretty in any::<bool>(),
        ) {
            let mut text = String::from("{");
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                if pretty {
                    text.push_str("\n  ");
                }
                text.push_str(&serde_json::to_string(key).expect("a key"));
                text.push(':');
                text.push_str(&serde_json::to_string(value).expect("a value"));
            }
            text.push('}');
            let context = RoutingContext::read(&text).expect("read");
            prop_assert_eq!(context, RoutingContext::from(serde_map(&text)));
        }
    }
}
