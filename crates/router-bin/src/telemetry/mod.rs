//! What the router tells about itself: Prometheus metrics (one registry per router), and
//! the decision records written to JetStream for `router explain` and `router tail`.

pub mod metrics;
pub mod quota;
pub mod records;
