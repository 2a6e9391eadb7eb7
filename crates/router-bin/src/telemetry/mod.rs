//! What the router tells about itself: Prometheus metrics (one registry per router).

pub mod metrics;
pub mod quota;
