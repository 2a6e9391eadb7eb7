//! nats-harness
