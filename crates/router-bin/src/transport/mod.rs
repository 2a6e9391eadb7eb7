//! The bus: NATS connections and their TLS options, certificate checks, why a connection
//! fails (in words), a subject read together with its tenant-scoped twin, and readiness
//! (connected, subscribed, with policies).

pub mod connect_diagnosis;
pub mod nats;
pub mod options;
pub mod readiness;
pub mod scoped;
pub mod tls;
