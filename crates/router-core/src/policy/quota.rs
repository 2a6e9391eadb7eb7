//! The quota keys of a policy (docs/ROUTING.md "Quotas"): per provider `rpm`, `tpm`,
//! `max_concurrency` and `price {input_per_mtok, output_per_mtok}`; per tenant the section
//! `quota {rpm, tpm, budget {day, month}, estimated_tokens}`.

use serde_json::{Map, Value};

use super::error::PolicyError;

/// Tokens a request is admitted on when it names no estimate and the policy sets none.
pub const DEFAULT_ESTIMATED_TOKENS: u64 = 1_000;
/// Largest limit accepted (requests or tokens per minute).
const MAX_LIMIT: u64 = 1_000_000_000_000;
/// Largest budget accepted, in the policy's currency.
const MAX_BUDGET: f64 = 1e12;

/// A provider's limits and prices.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProviderLimits {
    /// Requests per UTC minute, fleet-wide.
    pub rpm: Option<u64>,
    /// Tokens (input + output) per UTC minute, fleet-wide.
    pub tpm: Option<u64>,
    /// Calls the provider serves at once: the capacity the adaptive score weighs load by.
    pub max_concurrency: Option<u64>,
    /// What a million tokens cost, when known.
    pub price: Option<Price>,
}

impl ProviderLimits {
    /// True when a decision for this provider is counted (`rpm` or `tpm` set).
    pub fn is_limited(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }
}

/// Prices per million tokens, in the policy's currency.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Price {
    /// Per million input tokens.
    pub input_per_mtok: f64,
    /// Per million output tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// What `input` and `output` tokens cost, in millionths of the currency.
    pub fn micros(&self, input: u64, output: u64) -> u64 {
        // A price per million tokens is a price per token in millionths.
        let cost = input as f64 * self.input_per_mtok + output as f64 * self.output_per_mtok;
        cost.ceil().min(u64::MAX as f64) as u64
    }

    /// The most `tokens` can cost, whichever side they fall on, in millionths.
    pub fn most_micros(&self, tokens: u64) -> u64 {
        let per_token = self.input_per_mtok.max(self.output_per_mtok);
        (tokens as f64 * per_token).ceil().min(u64::MAX as f64) as u64
    }
}

/// A tenant's limits, counted over all its policies.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TenantQuota {
    /// Requests per UTC minute.
    pub rpm: Option<u64>,
    /// Tokens per UTC minute.
    pub tpm: Option<u64>,
    /// Spend per UTC day, in millionths of the currency.
    pub budget_day_micros: Option<u64>,
    /// Spend per UTC calendar month, in millionths of the currency.
    pub budget_month_micros: Option<u64>,
}

impl TenantQuota {
    /// True when any limit is set.
    pub fn is_limited(&self) -> bool {
        self.rpm.is_some()
            || self.tpm.is_some()
            || self.budget_day_micros.is_some()
            || self.budget_month_micros.is_some()
    }

    /// The lower of each limit of `self` and `other`: a tenant whose policies declare
    /// different limits is held to the lowest.
    pub fn tightest(self, other: TenantQuota) -> TenantQuota {
        fn low(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        TenantQuota {
            rpm: low(self.rpm, other.rpm),
            tpm: low(self.tpm, other.tpm),
            budget_day_micros: low(self.budget_day_micros, other.budget_day_micros),
            budget_month_micros: low(self.budget_month_micros, other.budget_month_micros),
        }
    }
}

/// The policy's `quota` section: the tenant's limits and the default estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaSection {
    /// The tenant's limits as this policy declares them.
    pub tenant: TenantQuota,
    /// Tokens a request is admitted on when it gives no `estimated_tokens` / `max_tokens`.
    pub estimated_tokens: u64,
}

impl Default for QuotaSection {
    fn default() -> Self {
        QuotaSection {
            tenant: TenantQuota::default(),
            estimated_tokens: DEFAULT_ESTIMATED_TOKENS,
        }
    }
}

fn limit(section: &Map<String, Value>, key: &str, field: &str) -> Result<Option<u64>, PolicyError> {
    match section.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_u64() {
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(Some(n)),
            _ => Err(PolicyError::new(
                &format!("{field}.{key}"),
                format!("must be an integer from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

fn price_figure(section: &Map<String, Value>, key: &str, field: &str) -> Result<f64, PolicyError> {
    match section.get(key) {
        None | Some(Value::Null) => Ok(0.0),
        Some(value) => match value.as_f64() {
            Some(x) if x.is_finite() && (0.0..=MAX_BUDGET).contains(&x) => Ok(x),
            _ => Err(PolicyError::new(
                &format!("{field}.{key}"),
                "must be a number >= 0 (currency per million tokens)",
            )),
        },
    }
}

/// A provider entry's `rpm`, `tpm`, `max_concurrency` and `price`.
pub(super) fn provider_limits(
    entry: &Map<String, Value>,
    field: &str,
) -> Result<ProviderLimits, PolicyError> {
    let price = match entry.get("price") {
        None | Some(Value::Null) => None,
        Some(Value::Object(section)) => {
            let field = format!("{field}.price");
            if let Some(unknown) = section
                .keys()
                .find(|k| *k != "input_per_mtok" && *k != "output_per_mtok")
            {
                return Err(PolicyError::new(
                    &format!("{field}.{unknown}"),
                    "is not a price key (input_per_mtok, output_per_mtok)",
                ));
            }
            Some(Price {
                input_per_mtok: price_figure(section, "input_per_mtok", &field)?,
                output_per_mtok: price_figure(section, "output_per_mtok", &field)?,
            })
        }
        Some(_) => {
            return Err(PolicyError::new(
                &format!("{field}.price"),
                "must be an object {input_per_mtok, output_per_mtok}",
            ))
        }
    };
    Ok(ProviderLimits {
        rpm: limit(entry, "rpm", field)?,
        tpm: limit(entry, "tpm", field)?,
        max_concurrency: limit(entry, "max_concurrency", field)?,
        price,
    })
}

fn budget(section: &Map<String, Value>, key: &str) -> Result<Option<u64>, PolicyError> {
    match section.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 && x <= MAX_BUDGET => {
                Ok(Some((x * 1_000_000.0).round() as u64))
            }
            _ => Err(PolicyError::new(
                &format!("quota.budget.{key}"),
                "must be a number above 0 (the policy's currency)",
            )),
        },
    }
}

/// The policy's `quota` section, when it has one.
pub(super) fn quota_section(doc: &Map<String, Value>) -> Result<Option<QuotaSection>, PolicyError> {
    let section = match doc.get("quota") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(section)) => section,
        Some(_) => return Err(PolicyError::new("quota", "must be an object")),
    };
    if let Some(unknown) = section
        .keys()
        .find(|k| !matches!(k.as_str(), "rpm" | "tpm" | "budget" | "estimated_tokens"))
    {
        return Err(PolicyError::new(
            &format!("quota.{unknown}"),
            "is not a quota key (rpm, tpm, budget, estimated_tokens)",
        ));
    }
    let (day, month) = match section.get("budget") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(budget_section)) => {
            if let Some(unknown) = budget_section.keys().find(|k| *k != "day" && *k != "month") {
                return Err(PolicyError::new(
                    &format!("quota.budget.{unknown}"),
                    "is not a budget window (day, month)",
                ));
            }
            (
                budget(budget_section, "day")?,
                budget(budget_section, "month")?,
            )
        }
        Some(_) => {
            return Err(PolicyError::new(
                "quota.budget",
                "must be an object {day, month}",
            ))
        }
    };
    Ok(Some(QuotaSection {
        tenant: TenantQuota {
            rpm: limit(section, "rpm", "quota")?,
            tpm: limit(section, "tpm", "quota")?,
            budget_day_micros: day,
            budget_month_micros: month,
        },
        estimated_tokens: limit(section, "estimated_tokens", "quota")?
            .unwrap_or(DEFAULT_ESTIMATED_TOKENS),
    }))
}
