//! Parsing, normalising and validating one policy document into a [`Policy`].

use serde_json::{Map, Value};

use crate::condition::Condition;
use crate::ids;

use super::duration::parse_ttl;
use super::error::PolicyError;
use super::model::{BreakerConfig, FallbackRule, LegacyFallback, Policy, Provider, StickyConfig};
use super::quota;
use super::routing;

/// Default sticky TTL when a policy enables sticky sessions without one.
const DEFAULT_STICKY_TTL_SECONDS: u64 = 600;
/// Longest sticky TTL.
const MAX_STICKY_TTL_SECONDS: u64 = 86_400;
/// Most retries a fallback rule may ask for.
const MAX_RETRY: u64 = 10;

impl Policy {
    /// Parses and validates a policy document for (tenant, policy).
    pub fn from_json(text: &str, tenant_id: &str, policy_id: &str) -> Result<Policy, PolicyError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| PolicyError::new("(document)", format!("not valid JSON: {err}")))?;
        Policy::from_value(&value, tenant_id, policy_id)
    }

    /// Validates an already parsed policy document.
    pub fn from_value(
        value: &Value,
        tenant_id: &str,
        policy_id: &str,
    ) -> Result<Policy, PolicyError> {
        let Value::Object(doc) = value else {
            return Err(PolicyError::new("(document)", "must be a JSON object"));
        };
        let version = match doc.get("version") {
            None => "1.0".to_owned(),
            Some(Value::String(v)) => v.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(PolicyError::new("version", "must be a string")),
        };
        let providers = providers(doc)?;
        let mut fallbacks = Vec::new();
        if let Some(rules) = doc.get("fallbacks") {
            let Value::Array(rules) = rules else {
                return Err(PolicyError::new("fallbacks", "must be a list"));
            };
            for (i, rule) in rules.iter().enumerate() {
                fallbacks.push(fallback_rule(rule, &format!("fallbacks[{i}]"))?);
            }
        }
        let legacy_fallback = legacy_fallback(doc.get("fallback"))?;
        let sticky = sticky(doc.get("sticky"))?;
        let circuit_breaker = circuit_breaker(doc.get("circuit_breaker"))?;
        let strategy = routing::strategy(doc)?;
        let adaptive = routing::adaptive(doc)?;
        let default_retry_after_ms = routing::default_retry_after_ms(doc)?;
        let metadata = match doc.get("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(PolicyError::new("metadata", "must be an object")),
        };
        let quota = quota::quota_section(doc)?;
        let budgeted = quota.is_some_and(|q| {
            q.tenant.budget_day_micros.is_some() || q.tenant.budget_month_micros.is_some()
        });
        if budgeted && !providers.iter().any(|p| p.limits.price.is_some()) {
            return Err(PolicyError::new(
                "quota.budget",
                "needs a price on at least one provider (providers[].price) to count spend",
            ));
        }
        let mut policy = Policy {
            tenant_id: tenant_id.to_owned(),
            policy_id: policy_id.to_owned(),
            version,
            providers,
            fallbacks,
            legacy_fallback,
            sticky,
            circuit_breaker,
            strategy,
            adaptive,
            default_retry_after_ms,
            metadata,
            quota,
            static_plans: Vec::new(),
        };
        policy.static_plans = policy.make_static_plans();
        Ok(policy)
    }
}

fn providers(doc: &Map<String, Value>) -> Result<Vec<Provider>, PolicyError> {
    match (doc.get("providers"), doc.get("weights")) {
        (Some(_), Some(_)) => Err(PolicyError::new(
            "weights",
            "give providers or the legacy weights map, not both",
        )),
        (Some(Value::Array(list)), None) => {
            let mut providers = Vec::with_capacity(list.len());
            for (i, entry) in list.iter().enumerate() {
                let field = format!("providers[{i}]");
                let Value::Object(entry) = entry else {
                    return Err(PolicyError::new(&field, "must be an object"));
                };
                let name = match entry.get("name") {
                    Some(Value::String(name)) => provider_name(name, &format!("{field}.name"))?,
                    _ => {
                        return Err(PolicyError::new(
                            &format!("{field}.name"),
                            "must be a string",
                        ))
                    }
                };
                if providers.iter().any(|p: &Provider| p.name == name) {
                    return Err(PolicyError::new(
                        &format!("{field}.name"),
                        format!("provider {name} is listed twice"),
                    ));
                }
                let weight = match entry.get("weight") {
                    Some(weight) => normalise_weight(weight, &format!("{field}.weight"))?,
                    None => return Err(PolicyError::new(&format!("{field}.weight"), "is missing")),
                };
                providers.push(Provider {
                    name,
                    weight,
                    expected_latency_ms: optional_number(entry, "expected_latency_ms", &field)?,
                    expected_cost: optional_number(entry, "expected_cost", &field)?,
                    priority: priority(entry, &field)?,
                    limits: quota::provider_limits(entry, &field)?,
                });
            }
            Ok(providers)
        }
        (Some(_), None) => Err(PolicyError::new("providers", "must be a list")),
        (None, Some(Value::Object(weights))) => weights
            .iter()
            .map(|(name, weight)| {
                let field = format!("weights.{name}");
                Ok(Provider {
                    name: provider_name(name, &field)?,
                    weight: normalise_weight(weight, &field)?,
                    expected_latency_ms: None,
                    expected_cost: None,
                    priority: 0,
                    limits: Default::default(),
                })
            })
            .collect(),
        (None, Some(_)) => Err(PolicyError::new("weights", "must be an object")),
        (None, None) => Ok(Vec::new()),
    }
}

fn provider_name(name: &str, field: &str) -> Result<String, PolicyError> {
    if ids::is_provider_name(name) {
        Ok(name.to_owned())
    } else {
        Err(PolicyError::new(
            field,
            format!("provider name {name:?} must match [a-z0-9_]+"),
        ))
    }
}

/// Integers are percentages (70 → 0.7); floats are taken as they are.
fn normalise_weight(value: &Value, field: &str) -> Result<f64, PolicyError> {
    let Value::Number(number) = value else {
        return Err(PolicyError::new(field, "must be a number"));
    };
    let weight = if number.is_f64() {
        number.as_f64().unwrap_or(f64::NAN)
    } else {
        number.as_f64().unwrap_or(f64::NAN) / 100.0
    };
    if !weight.is_finite() || weight < 0.0 {
        return Err(PolicyError::new(field, "must be a finite number >= 0"));
    }
    Ok(weight)
}

fn optional_number(
    entry: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<f64>, PolicyError> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            _ => Err(PolicyError::new(
                &format!("{field}.{key}"),
                "must be a number >= 0",
            )),
        },
        Some(_) => Err(PolicyError::new(
            &format!("{field}.{key}"),
            "must be a number",
        )),
    }
}

/// Most tiers a policy may use.
const MAX_PRIORITY: u64 = 100;

fn priority(entry: &Map<String, Value>, field: &str) -> Result<u32, PolicyError> {
    match entry.get("priority") {
        None | Some(Value::Null) => Ok(0),
        Some(value) => match value.as_u64() {
            Some(p) if p <= MAX_PRIORITY => Ok(p as u32),
            _ => Err(PolicyError::new(
                &format!("{field}.priority"),
                format!("must be an integer from 0 to {MAX_PRIORITY} (lower is tried first)"),
            )),
        },
    }
}

fn fallback_rule(rule: &Value, field: &str) -> Result<FallbackRule, PolicyError> {
    let Value::Object(rule) = rule else {
        return Err(PolicyError::new(field, "must be an object"));
    };
    let when = match rule.get("when") {
        None => Condition::default(),
        Some(when) => Condition::compile(when, &format!("{field}.when"))?,
    };
    let retry = match rule.get("retry") {
        None => 0,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(r) if r <= MAX_RETRY => r as u32,
            _ => {
                return Err(PolicyError::new(
                    &format!("{field}.retry"),
                    format!("must be an integer from 0 to {MAX_RETRY}"),
                ))
            }
        },
        Some(_) => {
            return Err(PolicyError::new(
                &format!("{field}.retry"),
                "must be an integer",
            ))
        }
    };
    let to = match rule.get("to") {
        Some(Value::String(to)) => provider_name(to, &format!("{field}.to"))?,
        _ => {
            return Err(PolicyError::new(
                &format!("{field}.to"),
                "must be a provider name",
            ))
        }
    };
    Ok(FallbackRule { when, retry, to })
}

fn legacy_fallback(value: Option<&Value>) -> Result<Option<LegacyFallback>, PolicyError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(fallback)) => {
            const FIELD: &str = "fallback.conditions";
            let when = match fallback.get("conditions") {
                None | Some(Value::Null) => Condition::default(),
                Some(Value::Array(statuses)) if statuses.is_empty() => Condition::default(),
                Some(Value::Array(statuses)) => {
                    if let Some(bad) = statuses.iter().find(|s| !s.is_string()) {
                        return Err(PolicyError::new(
                            FIELD,
                            format!("must list statuses as strings, not {bad}"),
                        ));
                    }
                    let mut when = Map::new();
                    when.insert("status".to_owned(), Value::Array(statuses.clone()));
                    Condition::compile(&Value::Object(when), FIELD)?
                }
                Some(object @ Value::Object(_)) => Condition::compile(object, FIELD)?,
                Some(_) => return Err(PolicyError::new(FIELD, "must be a list or an object")),
            };
            match fallback.get("provider") {
                Some(Value::String(name)) => Ok(Some(LegacyFallback {
                    to: provider_name(name, "fallback.provider")?,
                    when,
                })),
                _ => Err(PolicyError::new(
                    "fallback.provider",
                    "must be a provider name",
                )),
            }
        }
        Some(_) => Err(PolicyError::new("fallback", "must be an object")),
    }
}

fn enabled(section: &Map<String, Value>, field: &str) -> Result<bool, PolicyError> {
    match section.get("enabled") {
        None => Ok(true),
        Some(Value::Bool(on)) => Ok(*on),
        Some(_) => Err(PolicyError::new(
            &format!("{field}.enabled"),
            "must be true or false",
        )),
    }
}

fn sticky(value: Option<&Value>) -> Result<Option<StickyConfig>, PolicyError> {
    let section = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(section)) => section,
        Some(_) => return Err(PolicyError::new("sticky", "must be an object")),
    };
    if !enabled(section, "sticky")? {
        return Ok(None);
    }
    let session_key = match section.get("session_key") {
        None => "user_id".to_owned(),
        Some(Value::String(key)) if !key.is_empty() => key.clone(),
        Some(_) => {
            return Err(PolicyError::new(
                "sticky.session_key",
                "must be a non-empty string",
            ))
        }
    };
    let ttl_seconds = match (section.get("ttl"), section.get("ttl_seconds")) {
        (Some(_), Some(_)) => {
            return Err(PolicyError::new(
                "sticky.ttl",
                "give ttl or ttl_seconds, not both",
            ))
        }
        (Some(Value::String(ttl)), None) => parse_ttl(ttl).ok_or_else(|| {
            PolicyError::new("sticky.ttl", "must match ^\\d+[smh]$, e.g. \"10m\"")
        })?,
        (Some(_), None) => {
            return Err(PolicyError::new(
                "sticky.ttl",
                "must be a string like \"10m\"",
            ))
        }
        (None, Some(seconds)) => seconds
            .as_u64()
            .ok_or_else(|| PolicyError::new("sticky.ttl_seconds", "must be an integer"))?,
        (None, None) => DEFAULT_STICKY_TTL_SECONDS,
    };
    if !(1..=MAX_STICKY_TTL_SECONDS).contains(&ttl_seconds) {
        let field = if section.contains_key("ttl") {
            "sticky.ttl"
        } else {
            "sticky.ttl_seconds"
        };
        return Err(PolicyError::new(
            field,
            format!("must be from 1 to {MAX_STICKY_TTL_SECONDS} seconds"),
        ));
    }
    Ok(Some(StickyConfig {
        session_key,
        ttl_ms: ttl_seconds * 1000,
    }))
}

fn circuit_breaker(value: Option<&Value>) -> Result<Option<BreakerConfig>, PolicyError> {
    let section = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(section)) => section,
        Some(_) => return Err(PolicyError::new("circuit_breaker", "must be an object")),
    };
    if !enabled(section, "circuit_breaker")? {
        return Ok(None);
    }
    let defaults = BreakerConfig::default();
    let count = |key: &str, default: u32| -> Result<u32, PolicyError> {
        match section.get(key) {
            None => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=1_000_000).contains(&n) => Ok(n as u32),
                _ => Err(PolicyError::new(
                    &format!("circuit_breaker.{key}"),
                    "must be an integer from 1 to 1000000",
                )),
            },
        }
    };
    let millis = |key: &str, default: u64, scale: u64| -> Result<u64, PolicyError> {
        match section.get(key) {
            None => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 && n <= u64::MAX / scale => Ok(n * scale),
                _ => Err(PolicyError::new(
                    &format!("circuit_breaker.{key}"),
                    "must be a positive integer",
                )),
            },
        }
    };
    let error_rate_threshold = match section.get("error_rate_threshold") {
        None => defaults.error_rate_threshold,
        Some(v) => match v.as_f64() {
            Some(r) if r > 0.0 && r <= 1.0 => r,
            _ => {
                return Err(PolicyError::new(
                    "circuit_breaker.error_rate_threshold",
                    "must be a number in (0, 1]",
                ))
            }
        },
    };
    Ok(Some(BreakerConfig {
        failure_threshold: count("failure_threshold", defaults.failure_threshold)?,
        success_threshold: count("success_threshold", defaults.success_threshold)?,
        timeout_ms: millis("timeout_ms", defaults.timeout_ms, 1)?,
        half_open_max_calls: count("half_open_max_calls", defaults.half_open_max_calls)?,
        error_rate_threshold,
        error_rate_window_ms: millis(
            "error_rate_window_seconds",
            defaults.error_rate_window_ms,
            1000,
        )?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Policy, PolicyError> {
        Policy::from_value(&value, "acme", "default")
    }

    #[test]
    fn contract_example_parses_and_normalises() {
        let policy = parse(json!({"version": "1.0",
            "providers": [{"name": "openai", "weight": 70, "expected_latency_ms": 850, "expected_cost": 0.012},
                          {"name": "anthropic", "weight": 30}],
            "fallbacks": [{"when": {"status": ["timeout", "5xx"]}, "retry": 2, "to": "anthropic"},
                          {"when": {"status": ["rate_limited"]}, "retry": 0, "to": "local_llm"}],
            "sticky": {"enabled": true, "session_key": "user_id", "ttl": "10m"},
            "circuit_breaker": {"enabled": true, "failure_threshold": 5, "success_threshold": 2,
                                "timeout_ms": 60000, "half_open_max_calls": 3,
                                "error_rate_threshold": 0.5, "error_rate_window_seconds": 60},
            "metadata": {"strategy": "cp1"}}))
        .expect("contract example is valid");
        assert_eq!(policy.providers[0].weight, 0.7);
        assert_eq!(policy.providers[1].weight, 0.3);
        assert_eq!(policy.providers[0].expected_latency_ms, Some(850.0));
        assert_eq!(policy.fallbacks.len(), 2);
        assert_eq!(policy.fallbacks[0].retry, 2);
        assert_eq!(policy.sticky.as_ref().map(|s| s.ttl_ms), Some(600_000));
        assert_eq!(policy.circuit_breaker, Some(BreakerConfig::default()));
    }

    #[test]
    fn float_weights_are_taken_as_they_are() {
        let policy = parse(
            json!({"providers": [{"name": "a", "weight": 0.25}, {"name": "b", "weight": 1.0}]}),
        )
        .expect("valid");
        assert_eq!(policy.providers[0].weight, 0.25);
        assert_eq!(policy.providers[1].weight, 1.0);
    }

    #[test]
    fn legacy_forms_are_normalised() {
        let policy = parse(json!({"weights": {"openai": 60, "anthropic": 40},
                                  "fallback": {"provider": "local_llm", "conditions": ["timeout"]}}))
        .expect("valid legacy policy");
        assert_eq!(policy.provider("openai").map(|p| p.weight), Some(0.6));
        assert_eq!(policy.provider("anthropic").map(|p| p.weight), Some(0.4));
        assert_eq!(
            policy.legacy_fallback.as_ref().map(|f| f.to.as_str()),
            Some("local_llm")
        );
    }

    #[test]
    fn ttl_forms() {
        assert_eq!(parse_ttl("30s"), Some(30));
        assert_eq!(parse_ttl("2h"), Some(7200));
        assert_eq!(parse_ttl("10"), None);
        assert_eq!(parse_ttl("m"), None);
        assert_eq!(parse_ttl("-1m"), None);
        let policy = parse(json!({"sticky": {"ttl_seconds": 5}})).expect("valid");
        assert_eq!(policy.sticky.map(|s| s.ttl_ms), Some(5000));
        let off = parse(json!({"sticky": {"enabled": false, "ttl": "bogus"}}))
            .expect("disabled sticky is not read");
        assert_eq!(off.sticky, None);
    }

    #[test]
    fn validation_errors_name_the_field() {
        let rows = [
            (json!([]), "(document)"),
            (json!({"providers": {}}), "providers"),
            (
                json!({"providers": [{"name": "OpenAI", "weight": 1}]}),
                "providers[0].name",
            ),
            (
                json!({"providers": [{"name": "a", "weight": -1}]}),
                "providers[0].weight",
            ),
            (
                json!({"providers": [{"name": "a", "weight": "1"}]}),
                "providers[0].weight",
            ),
            (json!({"providers": [{"name": "a"}]}), "providers[0].weight"),
            (
                json!({"providers": [{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]}),
                "providers[1].name",
            ),
            (
                json!({"providers": [{"name": "a", "weight": 1, "expected_cost": "x"}]}),
                "providers[0].expected_cost",
            ),
            (json!({"weights": {"a b": 1}}), "weights.a b"),
            (json!({"weights": [], "providers": []}), "weights"),
            (
                json!({"fallbacks": [{"to": "a", "retry": 11}]}),
                "fallbacks[0].retry",
            ),
            (
                json!({"fallbacks": [{"to": "a", "retry": -1}]}),
                "fallbacks[0].retry",
            ),
            (json!({"fallbacks": [{"retry": 1}]}), "fallbacks[0].to"),
            (
                json!({"fallbacks": [{"to": "a", "when": 3}]}),
                "fallbacks[0].when",
            ),
            (json!({"fallback": {"conditions": []}}), "fallback.provider"),
            (json!({"sticky": {"ttl": "10d"}}), "sticky.ttl"),
            (json!({"sticky": {"ttl_seconds": 0}}), "sticky.ttl_seconds"),
            (
                json!({"sticky": {"ttl_seconds": 86401}}),
                "sticky.ttl_seconds",
            ),
            (json!({"sticky": {"session_key": ""}}), "sticky.session_key"),
            (
                json!({"circuit_breaker": {"failure_threshold": 0}}),
                "circuit_breaker.failure_threshold",
            ),
            (
                json!({"circuit_breaker": {"error_rate_threshold": 1.5}}),
                "circuit_breaker.error_rate_threshold",
            ),
            (
                json!({"circuit_breaker": {"enabled": "yes"}}),
                "circuit_breaker.enabled",
            ),
            (json!({"metadata": []}), "metadata"),
        ];
        for (doc, field) in rows {
            let err = parse(doc.clone()).expect_err(&format!("{doc} must be rejected"));
            assert_eq!(err.field, field, "{doc}: {err}");
        }
    }
}
