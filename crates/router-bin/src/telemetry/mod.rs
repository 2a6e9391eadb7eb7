//! What the router tells about itself: Prometheus metrics (one registry per router), the
//! decision records written to JetStream for `router explain` and `router tail`, and
//! OpenTelemetry spans exported with OTLP.

pub mod metrics;
pub mod quota;
pub mod records;
pub mod traces;
