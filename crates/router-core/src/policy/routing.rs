//! The routing keys of a policy beyond weights: `strategy`, `adaptive {…}` and
//! `rate_limit {…}` (docs/ROUTING.md).

use serde_json::{Map, Value};

use super::duration::parse_ttl;
use super::error::PolicyError;

/// How a provider is chosen inside the best tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// A draw proportional to the weights (the default).
    #[default]
    Weighted,
    /// Power of two choices over live latency, load and errors ([`AdaptiveConfig`]).
    Adaptive,
    /// A draw by weight × the share of each provider's `rpm`/`tpm` left in the window, so
    /// traffic spreads before a limit trips.
    Headroom,
}

/// Which latency a policy's live state follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatencyMetric {
    /// End to end (`latency_ms` of feedback).
    #[default]
    E2e,
    /// Time to first token (`ttft_ms` of feedback).
    Ttft,
}

/// Settings of the adaptive strategy and of the live state feedback builds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveConfig {
    /// The latency followed.
    pub metric: LatencyMetric,
    /// Time constant of the latency average, in milliseconds.
    pub decay_ms: u64,
    /// Time constant of the error-rate average, in milliseconds.
    pub error_decay_ms: u64,
    /// Scores within this share of the best count as tied (0.2 = 20 %).
    pub latency_buffer: f64,
    /// Share of decisions sent to another healthy provider, so a recovered one is noticed.
    pub explore: f64,
    /// Error-rate average above which a provider is skipped while others are healthy.
    pub degraded_error_rate: f64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            metric: LatencyMetric::E2e,
            decay_ms: 10_000,
            error_decay_ms: 5_000,
            latency_buffer: 0.2,
            explore: 0.05,
            degraded_error_rate: 0.25,
        }
    }
}

/// Default cooldown after a `rate_limited` report without `retry_after_s`.
pub const DEFAULT_RETRY_AFTER_MS: u64 = 30_000;
/// Longest time constant or cooldown a policy may set.
const MAX_SECONDS: u64 = 3_600;

/// `strategy`.
pub(super) fn strategy(doc: &Map<String, Value>) -> Result<Strategy, PolicyError> {
    match doc.get("strategy") {
        None | Some(Value::Null) => Ok(Strategy::Weighted),
        Some(Value::String(s)) if s == "weighted" => Ok(Strategy::Weighted),
        Some(Value::String(s)) if s == "adaptive" => Ok(Strategy::Adaptive),
        Some(Value::String(s)) if s == "headroom" => Ok(Strategy::Headroom),
        Some(_) => Err(PolicyError::new(
            "strategy",
            "must be \"weighted\", \"adaptive\" or \"headroom\"",
        )),
    }
}

/// `adaptive {metric, decay, error_decay, latency_buffer, explore, degraded_error_rate}`.
pub(super) fn adaptive(doc: &Map<String, Value>) -> Result<AdaptiveConfig, PolicyError> {
    let defaults = AdaptiveConfig::default();
    let section = match doc.get("adaptive") {
        None | Some(Value::Null) => return Ok(defaults),
        Some(Value::Object(section)) => section,
        Some(_) => return Err(PolicyError::new("adaptive", "must be an object")),
    };
    let metric = match section.get("metric") {
        None => defaults.metric,
        Some(Value::String(m)) if m == "e2e" => LatencyMetric::E2e,
        Some(Value::String(m)) if m == "ttft" => LatencyMetric::Ttft,
        Some(_) => {
            return Err(PolicyError::new(
                "adaptive.metric",
                "must be \"e2e\" or \"ttft\"",
            ))
        }
    };
    let share = |key: &str, default: f64, upper: f64| -> Result<f64, PolicyError> {
        match section.get(key) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(x) if (0.0..=upper).contains(&x) => Ok(x),
                _ => Err(PolicyError::new(
                    &format!("adaptive.{key}"),
                    format!("must be a number from 0 to {upper}"),
                )),
            },
        }
    };
    let degraded_error_rate = match section.get("degraded_error_rate") {
        None => defaults.degraded_error_rate,
        Some(v) => match v.as_f64() {
            Some(r) if r > 0.0 && r <= 1.0 => r,
            _ => {
                return Err(PolicyError::new(
                    "adaptive.degraded_error_rate",
                    "must be a number in (0, 1]",
                ))
            }
        },
    };
    Ok(AdaptiveConfig {
        metric,
        decay_ms: duration_ms(section, "decay", "adaptive", defaults.decay_ms)?,
        error_decay_ms: duration_ms(section, "error_decay", "adaptive", defaults.error_decay_ms)?,
        latency_buffer: share("latency_buffer", defaults.latency_buffer, 10.0)?,
        explore: share("explore", defaults.explore, 0.5)?,
        degraded_error_rate,
    })
}

/// `rate_limit {default_retry_after}`: the cooldown of a `rate_limited` report that gives no
/// `retry_after_s`, in milliseconds.
pub(super) fn default_retry_after_ms(doc: &Map<String, Value>) -> Result<u64, PolicyError> {
    match doc.get("rate_limit") {
        None | Some(Value::Null) => Ok(DEFAULT_RETRY_AFTER_MS),
        Some(Value::Object(section)) => duration_ms(
            section,
            "default_retry_after",
            "rate_limit",
            DEFAULT_RETRY_AFTER_MS,
        ),
        Some(_) => Err(PolicyError::new("rate_limit", "must be an object")),
    }
}

/// A `^\d+[smh]$` duration from 1 s to an hour, in milliseconds.
fn duration_ms(
    section: &Map<String, Value>,
    key: &str,
    parent: &str,
    default: u64,
) -> Result<u64, PolicyError> {
    let field = format!("{parent}.{key}");
    match section.get(key) {
        None => Ok(default),
        Some(Value::String(text)) => match parse_ttl(text) {
            Some(seconds) if (1..=MAX_SECONDS).contains(&seconds) => Ok(seconds * 1000),
            _ => Err(PolicyError::new(
                &field,
                format!("must be a duration like \"10s\" from 1s to {MAX_SECONDS}s"),
            )),
        },
        Some(_) => Err(PolicyError::new(&field, "must be a string like \"10s\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn defaults_apply_when_absent() {
        let empty = Map::new();
        assert_eq!(strategy(&empty), Ok(Strategy::Weighted));
        assert_eq!(adaptive(&empty), Ok(AdaptiveConfig::default()));
        assert_eq!(default_retry_after_ms(&empty), Ok(DEFAULT_RETRY_AFTER_MS));
    }

    #[test]
    fn every_key_is_read() {
        let d = doc(json!({"strategy": "adaptive",
            "adaptive": {"metric": "ttft", "decay": "20s", "error_decay": "2s",
                         "latency_buffer": 0.1, "explore": 0.0, "degraded_error_rate": 0.5},
            "rate_limit": {"default_retry_after": "1m"}}));
        assert_eq!(strategy(&d), Ok(Strategy::Adaptive));
        assert_eq!(
            adaptive(&d),
            Ok(AdaptiveConfig {
                metric: LatencyMetric::Ttft,
                decay_ms: 20_000,
                error_decay_ms: 2_000,
                latency_buffer: 0.1,
                explore: 0.0,
                degraded_error_rate: 0.5,
            })
        );
        assert_eq!(default_retry_after_ms(&d), Ok(60_000));
    }

    #[test]
    fn bad_values_name_the_field() {
        let field = |value: Value| -> String {
            let d = doc(value);
            let err = strategy(&d)
                .err()
                .or_else(|| adaptive(&d).err())
                .or_else(|| default_retry_after_ms(&d).err());
            err.map(|e| e.field).unwrap_or_default()
        };
        assert_eq!(field(json!({"strategy": "fastest"})), "strategy");
        assert_eq!(
            field(json!({"adaptive": {"metric": "tpot"}})),
            "adaptive.metric"
        );
        assert_eq!(
            field(json!({"adaptive": {"decay": "0s"}})),
            "adaptive.decay"
        );
        assert_eq!(
            field(json!({"adaptive": {"explore": 0.9}})),
            "adaptive.explore"
        );
        assert_eq!(
            field(json!({"adaptive": {"degraded_error_rate": 0}})),
            "adaptive.degraded_error_rate"
        );
        assert_eq!(
            field(json!({"rate_limit": {"default_retry_after": 30}})),
            "rate_limit.default_retry_after"
        );
    }
}
