//! `when` conditions of fallback rules (CONTRACT §4.3), compiled once at policy load.
//!
//! `{}` always matches. Otherwise every key must match: a list is "one of", a scalar is
//! equality, and the operator forms `{"==": [a, b]}` (`!=`, `>`, `<`, `>=`, `<=`, `in`) take
//! literals or `{"var": "a.b"}` paths into the routing context. A missing key never matches.

use std::cmp::Ordering;

use serde_json::Value;

use crate::policy::PolicyError;
use crate::request::RoutingContext;

/// A compiled `when` object: all clauses must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Condition {
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    OneOf {
        path: Path,
        values: Vec<Value>,
    },
    Equals {
        path: Path,
        value: Value,
    },
    Compare {
        op: Op,
        left: Operand,
        right: Operand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    In,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Var(Path),
    Literal(Value),
}

/// A context key, or a dotted path into nested objects.
#[derive(Debug, Clone, PartialEq)]
struct Path {
    full: String,
    segments: Vec<String>,
}

impl Path {
    fn new(full: &str) -> Self {
        Path {
            full: full.to_owned(),
            segments: full.split('.').map(str::to_owned).collect(),
        }
    }

    /// The exact key first (the context is flat), then the dotted path.
    fn lookup<'a>(&self, context: &'a RoutingContext<'_>) -> Option<&'a Value> {
        if let Some(value) = context.get(&self.full) {
            return Some(value);
        }
        let (first, rest) = self.segments.split_first()?;
        let mut value = context.get(first)?;
        for segment in rest {
            value = match value {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

impl Condition {
    /// Compiles a `when` value; `field` names it in errors (e.g. `fallbacks[0].when`).
    pub fn compile(when: &Value, field: &str) -> Result<Condition, PolicyError> {
        let Value::Object(map) = when else {
            return Err(PolicyError::new(field, "must be an object"));
        };
        let mut clauses = Vec::with_capacity(map.len());
        for (key, value) in map {
            let clause =
                match Op::parse(key) {
                    Some(op) => compile_operator(op, value, &format!("{field}.{key}"))?,
                    None => match value {
                        Value::Array(values) => Clause::OneOf {
                            path: Path::new(key),
                            values: values.clone(),
                        },
                        Value::Object(_) => return Err(PolicyError::new(
                            &format!("{field}.{key}"),
                            "must be a scalar or a list of scalars (operators go at the top level)",
                        )),
                        scalar => Clause::Equals {
                            path: Path::new(key),
                            value: scalar.clone(),
                        },
                    },
                };
            clauses.push(clause);
        }
        Ok(Condition { clauses })
    }

    /// True when every clause holds in `context`.
    pub fn matches(&self, context: &RoutingContext<'_>) -> bool {
        self.clauses.iter().all(|clause| clause.matches(context))
    }
}

fn compile_operator(op: Op, value: &Value, field: &str) -> Result<Clause, PolicyError> {
    let operands = match value {
        Value::Array(items) if items.len() == 2 => items,
        _ => return Err(PolicyError::new(field, "must be a list of two operands")),
    };
    let operand = |value: &Value| -> Result<Operand, PolicyError> {
        match value {
            Value::Object(map) if map.contains_key("var") => match map.get("var") {
                Some(Value::String(path)) if map.len() == 1 && !path.is_empty() => {
                    Ok(Operand::Var(Path::new(path)))
                }
                _ => Err(PolicyError::new(
                    field,
                    "a {\"var\": ...} operand takes one non-empty string path",
                )),
            },
            literal => Ok(Operand::Literal(literal.clone())),
        }
    };
    Ok(Clause::Compare {
        op,
        left: operand(&operands[0])?,
        right: operand(&operands[1])?,
    })
}

impl Op {
    fn parse(key: &str) -> Option<Op> {
        Some(match key {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "in" => Op::In,
            _ => return None,
        })
    }
}

impl Clause {
    fn matches(&self, context: &RoutingContext<'_>) -> bool {
        match self {
            Clause::OneOf { path, values } => path
                .lookup(context)
                .is_some_and(|found| values.iter().any(|value| same(found, value))),
            Clause::Equals { path, value } => {
                path.lookup(context).is_some_and(|found| same(found, value))
            }
            Clause::Compare { op, left, right } => {
                let (Some(left), Some(right)) = (left.resolve(context), right.resolve(context))
                else {
                    return false;
                };
                match op {
                    Op::Eq => same(left, right),
                    Op::Ne => !same(left, right),
                    Op::In => match right {
                        Value::Array(items) => items.iter().any(|item| same(left, item)),
                        Value::String(haystack) => left
                            .as_str()
                            .is_some_and(|needle| haystack.contains(needle)),
                        _ => false,
                    },
                    Op::Gt => order(left, right) == Some(Ordering::Greater),
                    Op::Lt => order(left, right) == Some(Ordering::Less),
                    Op::Ge => matches!(
                        order(left, right),
                        Some(Ordering::Greater | Ordering::Equal)
                    ),
                    Op::Le => matches!(order(left, right), Some(Ordering::Less | Ordering::Equal)),
                }
            }
        }
    }
}

impl Operand {
    fn resolve<'a>(&'a self, context: &'a RoutingContext<'_>) -> Option<&'a Value> {
        match self {
            Operand::Var(path) => path.lookup(context),
            Operand::Literal(value) => Some(value),
        }
    }
}

/// Equality that treats `5` and `5.0` as the same number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Numbers compare as numbers, strings as strings; anything else does not compare.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context(value: Value) -> RoutingContext<'static> {
        match value {
            Value::Object(map) => map.into(),
            _ => unreachable!("test contexts are objects"),
        }
    }

    fn check(when: Value, ctx: Value) -> bool {
        Condition::compile(&when, "when")
            .expect("valid condition")
            .matches(&context(ctx))
    }

    #[test]
    fn table() {
        let rows = [
            (json!({}), json!({}), true),
            (
                json!({"status": ["timeout", "5xx"]}),
                json!({"status": "5xx"}),
                true,
            ),
            (
                json!({"status": ["timeout"]}),
                json!({"status": "5xx"}),
                false,
            ),
            (json!({"status": ["timeout"]}), json!({}), false),
            (json!({"region": "eu"}), json!({"region": "eu"}), true),
            (
                json!({"region": "eu", "tier": 1}),
                json!({"region": "eu", "tier": 1.0}),
                true,
            ),
            (
                json!({"region": "eu", "tier": 1}),
                json!({"region": "eu"}),
                false,
            ),
            (
                json!({"==": [{"var": "a.b"}, 3]}),
                json!({"a": {"b": 3}}),
                true,
            ),
            (json!({"!=": [{"var": "a"}, 3]}), json!({"a": 4}), true),
            (json!({"!=": [{"var": "a"}, 3]}), json!({}), false),
            (json!({">": [{"var": "n"}, 3]}), json!({"n": 4}), true),
            (json!({"<": [{"var": "n"}, 3]}), json!({"n": 4}), false),
            (json!({">=": [{"var": "n"}, 4]}), json!({"n": 4}), true),
            (json!({"<=": [{"var": "n"}, 3.5]}), json!({"n": 4}), false),
            (json!({">": [{"var": "n"}, 3]}), json!({"n": "x"}), false),
            (
                json!({"in": [{"var": "s"}, ["a", "b"]]}),
                json!({"s": "b"}),
                true,
            ),
            (
                json!({"in": [{"var": "s"}, {"var": "list"}]}),
                json!({"s": "c", "list": ["a"]}),
                false,
            ),
            (json!({"a.b": "x"}), json!({"a.b": "x"}), true),
        ];
        for (i, (when, ctx, expected)) in rows.into_iter().enumerate() {
            assert_eq!(
                check(when.clone(), ctx.clone()),
                expected,
                "row {i}: {when} on {ctx}"
            );
        }
    }

    #[test]
    fn bad_forms_name_the_field() {
        for bad in [
            json!([]),
            json!({"==": [1]}),
            json!({"==": [{"var": 3}, 1]}),
            json!({"k": {"x": 1}}),
        ] {
            let err = Condition::compile(&bad, "fallbacks[0].when").unwrap_err();
            assert!(err.field.starts_with("fallbacks[0].when"), "{err}");
        }
    }
}
