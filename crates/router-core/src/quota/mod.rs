//! Quotas (docs/ROUTING.md "Quotas"): requests, tokens and spend per tenant and per provider,
//! counted per window on atomics, with the allowance either the limit itself (one router) or
//! a lease of the fleet's limit held through the shared store (the service's sync task).
//!
//! - [`window`]: the windows (UTC minute, day, month);
//! - [`key`]: what a meter counts;
//! - [`meter`]: one count, taken on the request path;
//! - [`book`]: this router's meters and the estimates feedback corrects;
//! - [`admission`]: what one decision asks of the meters.

pub mod admission;
pub mod book;
pub(crate) mod counted;
pub mod key;
pub mod meter;
pub mod window;

pub use admission::{estimated_tokens, Ask, Refusal};
pub use book::{Estimate, QuotaBook, TakenMeters, Waker};
pub use key::{Kind, MeterKey, Scope};
pub use meter::{Meter, Verdict};
pub use window::Window;
