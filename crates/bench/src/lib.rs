//! `router-bench`: load for the Beamline Router over real NATS request-reply.
//!
//! The binary is a thin shell around [`run::run`]; the modules are public so that the
//! figures (percentiles, outcome classification, candidate JSON) are unit-tested.

#![forbid(unsafe_code)]

pub mod cli;
pub mod connect;
pub mod corpus;
pub mod environment;
pub mod figures;
pub mod gate;
pub mod load;
pub mod nats_args;
pub mod outcome;
pub mod process;
pub mod progress;
pub mod prometheus;
pub mod report;
pub mod router_metrics;
pub mod run;
pub mod scenario;
pub mod second_shape;
pub mod stats;
pub mod timing;
