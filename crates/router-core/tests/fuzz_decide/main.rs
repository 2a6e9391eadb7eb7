//! Fuzz targets for the request path, driven by proptest (cargo-fuzz needs a nightly
//! toolchain; only stable Rust exists here). Each target is a plain function over bytes, as
//! a libFuzzer target would be, so it can move under `fuzz/` unchanged later.
//!
//! - [`target_decide`]: decode + validate + decide through `Router::handle` on any bytes,
//!   with any `version` header, clock and intake limits, against two routers (open, and
//!   with a tenant allow-list).
//! - Inputs: arbitrary bytes, and near-valid requests: valid ones with fields replaced by
//!   arbitrary JSON, removed, renamed or nested deep, then maybe mutated byte-wise the way a
//!   fuzzer mutates (flip, insert, delete, duplicate, truncate).
//!
//! Oracles, for every input: the reply is JSON with a boolean `ok`; an error carries a code
//! from the contract, never `internal`, and an intake code exactly when the contract says
//! so; the reply stays small whatever the input size; the reply agrees with the `Outcome`
//! the service layer counts and dead-letters; intake rejections are exactly those of
//! `request::decode`, with the same code and field; decisions name a provider of the
//! policy; and the same input on a fresh router with the same seed gives the same bytes.
//!
//! Cases per target: `PROPTEST_CASES` (default 256), e.g.
//! `PROPTEST_CASES=5000 cargo test -p router-core --test fuzz_decide --release`.
//!
//! `target.rs` holds the target and its setup, `oracles.rs` what every reply is held to,
//! `inputs.rs` the near-valid requests and the byte mutations.

mod inputs;
mod oracles;
mod target;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use router_core::request::IntakeLimits;
use serde_json::json;

use inputs::{apply, edit, mutate, mutation, valid_request};
use oracles::check_reply;
use target::{setup, shared_routers, target_decide, Setup, NOW};

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_decide_arbitrary_bytes(body in vec(any::<u8>(), 0..2048), setup in setup()) {
        target_decide(&body, &setup)?;
    }

    #[test]
    fn fuzz_decide_object_shaped_bytes(
        tail in vec(any::<u8>(), 0..512),
        setup in setup(),
    ) {
        let mut body = b"{\"request_id\":".to_vec();
        body.extend(tail);
        target_decide(&body, &setup)?;
    }

    #[test]
    fn fuzz_decide_near_valid_requests(
        request in valid_request(),
        edits in vec(edit(), 0..4),
        mutations in prop_oneof![3 => Just(Vec::new()), 1 => vec(mutation(), 1..3)],
        setup in setup(),
    ) {
        let mut request = request;
        for edit in &edits {
            apply(&mut request, edit);
        }
        let mut body = serde_json::to_vec(&request).expect("serialisable");
        for m in &mutations {
            mutate(&mut body, m);
        }
        target_decide(&body, &setup)?;
    }

    #[test]
    fn fuzz_decide_valid_requests_are_decided(request in valid_request(), seed in any::<u64>()) {
        // The control: without edits, every request gets a decision on the open router.
        let body = serde_json::to_vec(&request).expect("serialisable");
        let setup = Setup { header: None, now_ms: NOW, limits: IntakeLimits::default(), seed };
        target_decide(&body, &setup)?;
        let handled = shared_routers()[0].handle(&body, None, NOW, &mut SmallRng::seed_from_u64(seed));
        let reply = check_reply(&handled.reply)?;
        prop_assert_eq!(&reply["ok"], &json!(true), "{}", reply);
    }
}
