//! The running service: start-up and its task set ([`start`]), the decide path
//! ([`decide`]: bounded queue, arrival stamps, drain), feedback, the control subjects (micro
//! service discovery and backpressure status), the dead-letter stream, backpressure intake
//! counts and the periodic supervisor.

pub mod backpressure;
pub mod canary;
pub mod control;
pub mod decide;
pub mod dlq;
pub mod feedback;
pub mod micro;
pub mod startup;
pub mod supervisor;

pub use startup::{check, start, ConfigError, RunningRouter};
