//! What a meter counts: a [`Kind`] of usage for a [`Scope`] (a tenant, or a provider of a
//! tenant's policy).

use super::window::Window;

/// The usage a meter counts, and its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Requests per minute (`rpm`).
    Requests,
    /// Tokens per minute (`tpm`).
    Tokens,
    /// Spend per UTC day (`budget.day`), in millionths of the currency.
    SpendDay,
    /// Spend per UTC month (`budget.month`), in millionths of the currency.
    SpendMonth,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [
        Kind::Requests,
        Kind::Tokens,
        Kind::SpendDay,
        Kind::SpendMonth,
    ];

    /// The name errors and metrics give: `rpm`, `tpm`, `budget_day`, `budget_month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Requests => "rpm",
            Kind::Tokens => "tpm",
            Kind::SpendDay => "budget_day",
            Kind::SpendMonth => "budget_month",
        }
    }

    /// The kind named `name` ([`Kind::as_str`]).
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The window it is counted over.
    pub fn window(self) -> Window {
        match self {
            Kind::Requests | Kind::Tokens => Window::Minute,
            Kind::SpendDay => Window::Day,
            Kind::SpendMonth => Window::Month,
        }
    }

    /// True for spend, counted in millionths of the currency.
    pub fn is_spend(self) -> bool {
        matches!(self, Kind::SpendDay | Kind::SpendMonth)
    }
}

/// Whose usage a meter counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// A tenant, over all its policies.
    Tenant {
        /// The tenant.
        tenant_id: String,
    },
    /// A provider of one policy of a tenant.
    Provider {
        /// The tenant.
        tenant_id: String,
        /// The policy.
        policy_id: String,
        /// The provider.
        provider_id: String,
    },
}

impl Scope {
    /// `tenant` or `provider`: the `scope` of a refusal.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Tenant { .. } => "tenant",
            Scope::Provider { .. } => "provider",
        }
    }

    /// The tenant.
    pub fn tenant_id(&self) -> &str {
        match self {
            Scope::Tenant { tenant_id } | Scope::Provider { tenant_id, .. } => tenant_id,
        }
    }
}

/// One meter's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterKey {
    /// Whose usage.
    pub scope: Scope,
    /// Which usage.
    pub kind: Kind,
}

impl MeterKey {
    /// A tenant's meter.
    pub fn tenant(tenant_id: &str, kind: Kind) -> MeterKey {
        MeterKey {
            scope: Scope::Tenant {
                tenant_id: tenant_id.to_owned(),
            },
            kind,
        }
    }

    /// A provider's meter in one policy.
    pub fn provider(tenant_id: &str, policy_id: &str, provider_id: &str, kind: Kind) -> MeterKey {
        MeterKey {
            scope: Scope::Provider {
                tenant_id: tenant_id.to_owned(),
                policy_id: policy_id.to_owned(),
                provider_id: provider_id.to_owned(),
            },
            kind,
        }
    }
}
