//! What every router of a fleet serves from the same source: policies (a directory, or the
//! JetStream bucket `router_policies`), sticky sessions (`router_sticky`) and first
//! decisions by idempotency key (`router_idempotency`), quota windows (`router_quota_minute`,
//! `router_quota_calendar`), with the buckets and their watches.

pub mod bucket_watch;
pub mod buckets;
pub mod idempotency;
pub mod policies_dir;
pub mod policies_kv;
pub mod quota;
pub mod sticky;
