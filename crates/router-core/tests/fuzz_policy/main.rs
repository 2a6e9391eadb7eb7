//! Fuzz targets for the policy DSL, driven by proptest (cargo-fuzz needs a nightly
//! toolchain; only stable Rust exists here). Each target is a plain function, as a
//! libFuzzer target would be.
//!
//! - [`target_parse`]: `Policy::from_json` on any text: never panics; a rejection names a
//!   field; an accepted policy keeps every rule of CONTRACT §4.2 (provider names
//!   `[a-z0-9_]+`, weights finite and >= 0, retry 0–10, sticky TTL 1 s–24 h, breaker
//!   settings in range), and a policy whose input breaks one of those rules is refused.
//! - [`target_decide_with`]: an accepted policy routes: every decision names one of its
//!   providers, and nothing but `decision_failed` / `deadline_exceeded` / the engine's own
//!   field checks comes back for a valid request.
//! - [`target_store`]: `PolicyStore::load_dir` over a directory of fuzzed files: every file
//!   is either loaded or reported, never both, never neither.
//!
//! Cases per target: `PROPTEST_CASES` (default 256).
//!
//! `parse_target.rs` holds the parse target and the rules an accepted policy keeps,
//! `routing_targets.rs` the decide and weighted-draw targets, `store_target.rs` the store
//! target, `inputs.rs` the generated documents, weights, contexts and files.

mod inputs;
mod parse_target;
mod routing_targets;
mod store_target;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;

use inputs::{
    context, near_valid_policy, ordinary_weights, overflowing_weights, policy_file, valid_policy,
};
use parse_target::target_parse;
use routing_targets::{target_decide_with, target_weighted_draw};
use store_target::target_store;

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
    fn fuzz_policy_arbitrary_bytes(bytes in vec(any::<u8>(), 0..1024)) {
        target_parse(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn fuzz_policy_near_valid_documents(text in near_valid_policy(), context in context(), seed in any::<u64>()) {
        if let Some(policy) = target_parse(&text)? {
            target_decide_with(&policy, &context, seed)?;
        }
    }

    #[test]
    fn fuzz_policy_valid_documents_are_accepted(doc in valid_policy()) {
        // The control: the unedited templates parse.
        let policy = target_parse(&doc.to_string())?;
        prop_assert!(policy.is_some(), "{}", doc);
    }

    #[test]
    fn fuzz_policy_store_loads_or_reports_every_file(files in vec(policy_file(), 1..6)) {
        target_store(&files)?;
    }

    #[test]
    fn fuzz_policy_weighted_draw_reaches_every_heavy_provider(weights in ordinary_weights()) {
        target_weighted_draw(&weights)?;
    }

    // Weights whose sum overflows f64 (e.g. [f64::MAX, 1e300]) must keep their proportions
    // (the draw once made the point infinite, so the last provider always won).
    #[test]
    fn fuzz_policy_weighted_draw_survives_weights_summing_past_f64_max(
        weights in overflowing_weights(),
    ) {
        target_weighted_draw(&weights)?;
    }
}
