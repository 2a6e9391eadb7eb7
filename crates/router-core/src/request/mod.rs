//! DecideRequest decoding and validation (CONTRACT §2).
//!
//! [`decode`] takes the raw message body and its `version` header and returns either a
//! validated [`DecideRequest`] or a [`RejectedRequest`] ready to become an error reply. The
//! body's top level and its `task` / `message` object are split into raw members by one scan
//! (`scan`), which leaves anything but plain JSON to serde_json. It never panics and never
//! recurses without bound: the scan follows at most 100 levels, serde_json caps nesting at
//! 128 levels in the fields it parses and skips ignored fields without recursion; inline
//! payloads, kept as raw text, are checked by a flat scan against [`MAX_PAYLOAD_DEPTH`].

mod context;
mod correlation;
mod decode;
mod model;
mod payload;
mod peek;
mod scan;
mod wire;

pub use context::RoutingContext;
pub use decode::decode;
pub use model::{
    Correlation, DecideRequest, IntakeLimits, Payload, RejectedRequest, MAX_ID_BYTES,
    MAX_PAYLOAD_DEPTH, MAX_TENANT_BYTES, SUPPORTED_VERSION,
};
pub use peek::{peek_ids, PeekedIds};
