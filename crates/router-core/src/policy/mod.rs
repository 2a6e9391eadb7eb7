//! Routing policies: the DSL (CONTRACT §4.2) and the store that holds them (§4.1).

mod dsl;
mod store;

pub use dsl::{
    BreakerConfig, FallbackRule, LegacyFallback, Policy, PolicyError, Provider, StickyConfig,
};
pub use store::{LoadReport, PolicyFileError, PolicySet, PolicyStore, StoreError};
