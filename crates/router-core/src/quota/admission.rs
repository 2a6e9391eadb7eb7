//! [`Ask`]: what one decision asks of the meters. Providers over their `rpm`/`tpm` are left
//! out of the decision; the chosen provider and the tenant are then taken from together, or
//! not at all.

use std::cell::RefCell;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{ErrorCode, IntakeErrorCode, Rejection};
use crate::policy::{Policy, Price, Provider, TenantQuota};
use crate::request::RoutingContext;

use smallvec::SmallVec;

use super::book::{Estimate, QuotaBook, TakenMeters};
use super::key::{Kind, Scope};
use super::meter::{Meter, Verdict};

/// Most tokens a request may name as its estimate.
const MAX_ESTIMATED_TOKENS: u64 = 100_000_000;

/// The tokens a request is admitted on: context `estimated_tokens`, else
/// `constraints.max_tokens`, else the policy's `quota.estimated_tokens`.
pub fn estimated_tokens(context: &RoutingContext<'_>, policy: &Policy) -> Result<u64, Rejection> {
    for key in ["estimated_tokens", "max_tokens"] {
        match context.get(key) {
            None | Some(Value::Null) => continue,
            Some(value) => match value.as_u64() {
                Some(n) if n <= MAX_ESTIMATED_TOKENS => return Ok(n),
                _ => {
                    return Err(Rejection::intake(
                        IntakeErrorCode::SchemaValidationFailed,
                        key,
                        format!("{key} must be an integer from 0 to {MAX_ESTIMATED_TOKENS}"),
                    ))
                }
            },
        }
    }
    Ok(policy.estimated_tokens())
}

/// `retry_after_ms` of a refusal while a lease is on its way (at most): a moment, not the
/// window's end.
const PENDING_RETRY_MS: u64 = 1_000;

/// A provider's meters with the amount a decision takes from each.
type ProviderMeters = Arc<[(Arc<Meter>, u64)]>;

/// Meters with the amount a decision takes from each, inline for the usual few (a tenant has
/// at most four; with a provider's two, six).
type MeterAmounts = SmallVec<[(Arc<Meter>, u64); 6]>;

/// A meter that refused, and how.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The meter.
    pub meter: Arc<Meter>,
    /// `Pending` (no lease yet) or `Exhausted`.
    pub verdict: Verdict,
}

impl Refusal {
    /// The `quota_exceeded` rejection a tenant's refusal answers with.
    pub fn rejection(&self, now_ms: u64) -> Rejection {
        let key = self.meter.key();
        let kind = key.kind;
        let figure = |n: u64| -> Value {
            if kind.is_spend() {
                Value::from(n as f64 / 1_000_000.0)
            } else {
                Value::from(n)
            }
        };
        let (message, reason) = match self.verdict {
            Verdict::Pending => (
                format!(
                    "tenant {} is waiting for its share of the {} limit from the fleet; retry shortly",
                    key.scope.tenant_id(),
                    kind.as_str()
                ),
                "lease_unavailable",
            ),
            _ => (
                format!(
                    "tenant {} is over its {} limit for this {}",
                    key.scope.tenant_id(),
                    kind.as_str(),
                    kind.window().as_str()
                ),
                "limit_reached",
            ),
        };
        let retry_after_ms = match self.verdict {
            Verdict::Exhausted { retry_after_ms } => retry_after_ms,
            _ => self.meter.retry_after_ms(now_ms).min(PENDING_RETRY_MS),
        };
        Rejection::new(ErrorCode::QuotaExceeded, message)
            .with_detail("scope", key.scope.as_str())
            .with_detail("tenant_id", key.scope.tenant_id())
            .with_detail("limit", kind.as_str())
            .with_detail("window", kind.window().as_str())
            .with_detail("limit_value", figure(self.meter.limit()))
            .with_detail("used", figure(self.meter.fleet_used()))
            .with_detail("retry_after_ms", retry_after_ms)
            .with_detail("reason", reason)
    }
}

/// What one decision asks of the meters.
pub struct Ask<'a> {
    book: &'a QuotaBook,
    policy: &'a Policy,
    tenant_id: &'a str,
    tenant: Option<TenantQuota>,
    tokens: u64,
    now_ms: u64,
    /// A `Pending` meter may be waited for (the service waits off the worker and asks
    /// again with this false: then `Pending` counts as out).
    may_wait: bool,
    /// Providers a take refused after they were found eligible.
    refused: Vec<String>,
    /// Each provider's meters (by its place in the policy), looked up once per decision.
    providers: RefCell<Vec<Option<ProviderMeters>>>,
}

impl<'a> Ask<'a> {
    /// The ask of a request for `tokens` under `policy`.
    pub fn new(
        book: &'a QuotaBook,
        policy: &'a Policy,
        tenant_id: &'a str,
        tenant: Option<TenantQuota>,
        tokens: u64,
        now_ms: u64,
        may_wait: bool,
    ) -> Self {
        Ask {
            book,
            policy,
            tenant_id,
            tenant,
            tokens,
            now_ms,
            may_wait,
            refused: Vec::new(),
            providers: RefCell::new(Vec::new()),
        }
    }

    fn provider_meter(&self, provider: &Provider, kind: Kind) -> Option<(Arc<Meter>, u64)> {
        let (limit, amount) = match kind {
            Kind::Requests => (provider.limits.rpm?, 1),
            Kind::Tokens => (provider.limits.tpm?, self.tokens),
            _ => return None,
        };
        let scope = Some((self.policy.policy_id.as_str(), provider.name.as_str()));
        Some((
            self.book.meter_for(kind, self.tenant_id, scope, limit),
            amount,
        ))
    }

    fn provider_meters(&self, name: &str) -> ProviderMeters {
        let providers = &self.policy.providers;
        let Some(at) = providers.iter().position(|p| p.name == name) else {
            return Arc::from([]);
        };
        let provider = &providers[at];
        let mut cache = self.providers.borrow_mut();
        if cache.len() < providers.len() {
            cache.resize(providers.len(), None);
        }
        if let Some(meters) = &cache[at] {
            return meters.clone();
        }
        let meters: ProviderMeters = if provider.limits.is_limited() {
            [Kind::Requests, Kind::Tokens]
                .into_iter()
                .filter_map(|kind| self.provider_meter(provider, kind))
                .collect()
        } else {
            Arc::from([])
        };
        cache[at] = Some(meters.clone());
        meters
    }

    /// The tenant's meters with their amounts; the budgets (at `price`) only `with_spend`.
    fn tenant_meters(&self, price: Option<Price>, with_spend: bool) -> MeterAmounts {
        let Some(quota) = self.tenant else {
            return MeterAmounts::new();
        };
        let spend = price.map_or(0, |p| p.most_micros(self.tokens));
        [
            (Kind::Requests, quota.rpm, 1),
            (Kind::Tokens, quota.tpm, self.tokens),
            (Kind::SpendDay, quota.budget_day_micros, spend),
            (Kind::SpendMonth, quota.budget_month_micros, spend),
        ]
        .into_iter()
        .filter(|(kind, _, _)| with_spend || !kind.is_spend())
        .filter_map(|(kind, limit, amount)| {
            Some((
                self.book.meter_for(kind, self.tenant_id, None, limit?),
                amount,
            ))
        })
        .collect()
    }

    /// The tenant's first refusing meter of `rpm`/`tpm`, checked before deciding (spend
    /// depends on the provider and is taken after).
    pub fn tenant_refusal(&self) -> Option<Refusal> {
        self.tenant_meters(None, false)
            .into_iter()
            .find_map(|(meter, amount)| match meter.check(amount, self.now_ms) {
                Verdict::Admit => None,
                Verdict::Pending if self.may_wait => None,
                verdict => Some(Refusal { meter, verdict }),
            })
    }

    /// Why `provider` is out, when its limits leave it out: the limit and
    /// `retry_after_ms`.
    pub fn excludes(&self, provider: &str) -> Option<(Kind, u64)> {
        if self.refused.iter().any(|name| name == provider) {
            return Some((Kind::Requests, PENDING_RETRY_MS));
        }
        self.provider_meters(provider)
            .iter()
            .find_map(|(meter, amount)| {
                let (kind, amount) = (meter.key().kind, *amount);
                match meter.check(amount, self.now_ms) {
                    Verdict::Admit => None,
                    Verdict::Pending if self.may_wait => None,
                    Verdict::Pending => Some((
                        kind,
                        meter.retry_after_ms(self.now_ms).min(PENDING_RETRY_MS),
                    )),
                    Verdict::Exhausted { retry_after_ms } => Some((kind, retry_after_ms)),
                }
            })
    }

    /// The share of `provider`'s limits left (1 without limits): the headroom strategy.
    pub fn headroom(&self, provider: &str) -> f64 {
        self.provider_meters(provider)
            .iter()
            .map(|(meter, _)| meter.headroom(self.now_ms))
            .fold(1.0, f64::min)
    }

    /// Leaves `provider` out of the next attempt (a take refused it).
    pub fn refuse(&mut self, provider: &str) {
        self.refused.push(provider.to_owned());
    }

    /// How many providers were refused by a take.
    pub fn refused_count(&self) -> usize {
        self.refused.len()
    }

    /// Takes the tenant's and `provider`'s meters together: all of them, or none.
    pub fn take(&self, provider: &str) -> Result<Estimate, Refusal> {
        let price = self.policy.provider(provider).and_then(|p| p.limits.price);
        let of_provider = self.provider_meters(provider);
        let meters = self
            .tenant_meters(price, true)
            .into_iter()
            .chain(of_provider.iter().cloned());
        let mut taken = TakenMeters::new();
        let mut counted = MeterAmounts::new();
        for (meter, amount) in meters {
            match meter.take(amount, self.now_ms) {
                Verdict::Admit => {
                    if meter.key().kind != Kind::Requests {
                        taken.push(meter.clone());
                    }
                    counted.push((meter, amount));
                }
                verdict => {
                    for (meter, amount) in counted {
                        meter.untake(amount);
                    }
                    if verdict == Verdict::Pending {
                        self.book.wake();
                    }
                    return Err(Refusal { meter, verdict });
                }
            }
        }
        Ok(Estimate {
            price,
            taken_ms: self.now_ms,
            tokens: self.tokens,
            meters: taken,
        })
    }

    /// True when `refusal` is the tenant's (answered `quota_exceeded`), not a provider's.
    pub fn is_tenant(refusal: &Refusal) -> bool {
        matches!(refusal.meter.key().scope, Scope::Tenant { .. })
    }

    /// True when a `Pending` meter may be waited for.
    pub fn may_wait(&self) -> bool {
        self.may_wait
    }
}
