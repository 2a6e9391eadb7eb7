//! Policy reload (CONTRACT §4.1) with injected time: a bad file keeps the policy served
//! before it, and sticky sessions outlive a reload.

mod common;

use std::path::Path;

use common::*;
use router_core::{Reason, Router, RouterSettings};
use serde_json::json;

fn write(dir: &Path, tenant: &str, policy: &str, body: &str) {
    let tenant_dir = dir.join(tenant);
    std::fs::create_dir_all(&tenant_dir).expect("create tenant dir");
    std::fs::write(tenant_dir.join(format!("{policy}.json")), body).expect("write policy");
}

const ONE: &str = r#"{"providers": [{"name": "one", "weight": 100}]}"#;
const TWO: &str = r#"{"providers": [{"name": "two", "weight": 100}]}"#;

/// A reload keeps the served policy when its new file is invalid, names the file and the
/// reason, and still loads everything else.
#[test]
fn reload_keeps_the_old_policy_on_a_bad_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "acme", "default", ONE);
    let router = Router::new(RouterSettings::default());
    let report = router.policies().load_dir(dir.path()).expect("load");
    assert_eq!((report.loaded, report.errors.len()), (1, 0));
    assert_eq!(provider(&send(&router, &base())), "one");

    for (bad, reason_part) in [
        (
            r#"{"providers": [{"name": "two", "weight": -1}]}"#,
            "providers[0].weight",
        ),
        (
            r#"{"providers": [{"name": "Two", "weight": 1}]}"#,
            "providers[0].name",
        ),
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        (
            r#"{"providers": [], "sticky": {"ttl": "10d"}}"#,
            "sticky.ttl",
        ),
        (
            r#"{"fallbacks": [{"to": "x", "retry": 11}]}"#,
            "fallbacks[0].retry",
        ),
    ] {
        write(dir.path(), "acme", "default", bad);
        write(dir.path(), "globex", "default", TWO);
        let report = router.policies().load_dir(dir.path()).expect("reload");
        assert_eq!(report.errors.len(), 1, "{bad}");
        let error = &report.errors[0];
        assert!(error.path.ends_with("acme/default.json"), "{error}");
        assert!(error.reason.contains(reason_part), "{bad}: {error}");
        assert_eq!(
            report.kept_previous,
            vec![("acme".to_owned(), "default".to_owned())]
        );
        assert_eq!(report.loaded, 2);
        assert_eq!(provider(&send(&router, &base())), "one", "old policy kept");
        assert_eq!(provider(&send(&router, &base_for("globex"))), "two");
    }

    write(dir.path(), "acme", "default", TWO);
    let report = router.policies().load_dir(dir.path()).expect("reload");
    assert!(report.errors.is_empty() && report.kept_previous.is_empty());
    assert_eq!(
        provider(&send(&router, &base())),
        "two",
        "new policy served"
    );

    // A bad file with no previous version is reported and not served.
    write(dir.path(), "acme", "extra", "{}}");
    let report = router.policies().load_dir(dir.path()).expect("reload");
    assert_eq!(report.errors.len(), 1);
    assert!(report.kept_previous.is_empty());
    assert_eq!(
        code(&send(&router, &set(base(), "policy_id", json!("extra")))),
        "policy_not_found"
    );

    // A removed file is dropped; a missing directory changes nothing.
    std::fs::remove_file(dir.path().join("globex/default.json")).expect("remove");
    router.policies().load_dir(dir.path()).expect("reload");
    assert_eq!(
        code(&send(&router, &base_for("globex"))),
        "policy_not_found"
    );
    assert!(router
        .policies()
        .load_dir(&dir.path().join("missing"))
        .is_err());
    assert_eq!(provider(&send(&router, &base())), "two");
}

/// Reloading the same policies keeps sticky sessions (they live in the engine, not the
/// policy).
#[test]
fn reload_keeps_sticky_sessions() {
    let router = router();
    let first = send(&router, &user(dt(), "u-1"));
    router.policies().load_dir(&policy_dir()).expect("reload");
    let again = send(&router, &user(dt(), "u-1"));
    assert_eq!(reason(&again), "sticky");
    assert_eq!(provider(&again), provider(&first));
    assert_eq!(Reason::Sticky.as_str(), reason(&again));
}
