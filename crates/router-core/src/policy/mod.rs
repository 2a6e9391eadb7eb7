//! Routing policies: the DSL (CONTRACT §4.2) and the store that holds them (§4.1).

mod dsl;
mod duration;
mod error;
mod model;
mod quota;
mod routing;
mod store;

pub use error::PolicyError;
pub use model::{BreakerConfig, FallbackRule, LegacyFallback, Policy, Provider, StickyConfig};
pub use quota::{Price, ProviderLimits, QuotaSection, TenantQuota, DEFAULT_ESTIMATED_TOKENS};
pub use routing::{AdaptiveConfig, LatencyMetric, Strategy, DEFAULT_RETRY_AFTER_MS};
pub use store::{LoadReport, PolicyFileError, PolicySet, PolicyStore, StoreError};
