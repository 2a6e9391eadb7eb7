//! The fuzz target: one body through `Router::handle` on the shipped policies, with the
//! setup (header, clock, intake limits, seed) a fuzzer's data would give, against an open
//! router and one with a tenant allow-list; every oracle checked on each reply.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use router_core::request::IntakeLimits;
use router_core::{Policy, Router, RouterSettings};

use crate::oracles::{check_against_decode, check_outcome, check_reply};

/// A fixed "now" (epoch ms).
pub const NOW: u64 = 1_764_182_400_000;

/// The shipped policies, parsed once.
fn policies() -> &'static Vec<Policy> {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/policies");
        let router = Router::new(RouterSettings::default());
        let report = router
            .policies()
            .load_dir(&dir)
            .expect("config/policies is readable");
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        router
            .policies()
            .snapshot()
            .keys()
            .iter()
            .map(|(tenant, policy)| {
                Policy::clone(&router.policies().get(tenant, policy).expect("listed"))
            })
            .collect()
    })
}

/// A fresh router with the shipped policies.
fn fresh_router(limits: IntakeLimits, allow_list: bool) -> Router {
    let allowed = allow_list.then(|| {
        ["acme", "default_tenant"]
            .iter()
            .map(|t| (*t).to_owned())
            .collect::<HashSet<_>>()
    });
    let router = Router::new(RouterSettings {
        limits,
        allowed_tenants: allowed,
        ..RouterSettings::default()
    });
    for policy in policies() {
        router.policies().upsert(policy.clone());
    }
    router
}

/// Long-lived routers: sticky, breaker and idempotency state accumulates across cases.
pub fn shared_routers() -> &'static [Arc<Router>; 2] {
    static ROUTERS: OnceLock<[Arc<Router>; 2]> = OnceLock::new();
    ROUTERS.get_or_init(|| {
        [
            Arc::new(fresh_router(IntakeLimits::default(), false)),
            Arc::new(fresh_router(IntakeLimits::default(), true)),
        ]
    })
}

/// Every provider a policy of `tenant` names (weighted, fallback targets, legacy fallback).
fn named_providers(tenant: &str, policy_id: &str) -> Vec<String> {
    policies()
        .iter()
        .filter(|p| p.tenant_id == tenant && p.policy_id == policy_id)
        .flat_map(|p| {
            p.providers
                .iter()
                .map(|x| x.name.clone())
                .chain(p.fallbacks.iter().map(|f| f.to.clone()))
                .chain(p.legacy_fallback.iter().map(|f| f.to.clone()))
        })
        .collect()
}

/// How a target call is set up, derived from the input like a fuzzer's data would be.
#[derive(Debug, Clone)]
pub struct Setup {
    pub header: Option<String>,
    pub now_ms: u64,
    pub limits: IntakeLimits,
    pub seed: u64,
}

/// Setups as a fuzzer's data would give them: mostly the defaults, sometimes odd.
pub fn setup() -> impl Strategy<Value = Setup> {
    let header = prop_oneof![
        6 => Just(None),
        2 => Just(Some("1".to_owned())),
        1 => Just(Some(" 1 ".to_owned())),
        1 => any::<String>().prop_map(Some),
    ];
    let limits = prop_oneof![
        4 => Just(IntakeLimits::default()),
        1 => (0usize..600, 0usize..64).prop_map(|(max_payload, min_payload_size)| IntakeLimits {
            max_payload,
            min_payload_size,
        }),
    ];
    let now = prop_oneof![Just(NOW), Just(0u64), Just(u64::MAX), any::<u64>()];
    (header, now, limits, any::<u64>()).prop_map(|(header, now_ms, limits, seed)| Setup {
        header,
        now_ms,
        limits,
        seed,
    })
}

/// The target: one body through the request path, every oracle checked.
pub fn target_decide(body: &[u8], setup: &Setup) -> Result<(), TestCaseError> {
    let header = setup.header.as_deref();
    let routers: Vec<Arc<Router>> = if setup.limits == IntakeLimits::default() {
        shared_routers().to_vec()
    } else {
        vec![Arc::new(fresh_router(setup.limits, false))]
    };
    for router in &routers {
        let handled = router.handle(
            body,
            header,
            setup.now_ms,
            &mut SmallRng::seed_from_u64(setup.seed),
        );
        let reply = check_reply(&handled.reply)?;
        check_outcome(&handled.outcome, &reply)?;
        check_against_decode(body, header, &setup.limits, &reply)?;
        if reply["ok"] == true {
            let tenant = reply["decision"]["metadata"]["tenant_id"]
                .as_str()
                .unwrap_or("");
            let policy = reply["decision"]["policy_id"].as_str().unwrap_or("");
            let provider = reply["decision"]["provider_id"].as_str().unwrap_or("");
            prop_assert!(
                named_providers(tenant, policy)
                    .iter()
                    .any(|p| p == provider),
                "provider {} is not in policy {}/{}: {}",
                provider,
                tenant,
                policy,
                reply
            );
        }
    }
    // Reproducible: two fresh routers, the same seed, the same bytes.
    let first = fresh_router(setup.limits, false).handle(
        body,
        header,
        setup.now_ms,
        &mut SmallRng::seed_from_u64(setup.seed),
    );
    let second = fresh_router(setup.limits, false).handle(
        body,
        header,
        setup.now_ms,
        &mut SmallRng::seed_from_u64(setup.seed),
    );
    prop_assert_eq!(
        first.reply,
        second.reply,
        "same input, same seed, other reply"
    );
    Ok(())
}
