//! The JetStream key-value buckets a router fleet shares: `router_policies` (the policy
//! source that replaces the directory) and `router_sticky` (sticky sessions).
//!
//! `cargo xtask policy` and the cluster tests use this module too: one definition of the
//! bucket settings, the key formats and the validation that keeps an invalid policy out of
//! the bucket.

use std::time::Duration;

use anyhow::{bail, Context};
use async_nats::jetstream::{self, kv, stream::StorageType};

/// Bucket of policies: key `<tenant>.<policy>`, value the policy JSON (CONTRACT §4.2).
pub const POLICY_BUCKET: &str = "router_policies";
/// Bucket of sticky sessions: key `<hex tenant>.<hex policy>.<hex session key>.<hex value>`,
/// value a [`router_core::decision::StickyMapping`] as JSON.
pub const STICKY_BUCKET: &str = "router_sticky";
/// Largest policy accepted, in bytes (as for a policy file).
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;
/// Revisions kept per policy key (`policy get --revision` can read back earlier ones).
pub const POLICY_HISTORY: i64 = 5;
/// Age after which the server drops a sticky entry: the longest sticky TTL the policy DSL
/// allows (24 h). Each entry also carries its own expiry, which readers honour exactly, so
/// this bound only keeps the bucket from growing without end and never needs updating when
/// policies change.
pub const STICKY_MAX_AGE: Duration = Duration::from_secs(86_400);
/// Longest session value shared through the bucket, in bytes; longer ones stay local.
pub const MAX_STICKY_SESSION_BYTES: usize = 256;

/// The `router_policies` bucket: file storage, a short history, `replicas` copies.
pub fn policy_bucket(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: POLICY_BUCKET.to_owned(),
        description: "Beamline Router policies: <tenant>.<policy> -> policy JSON".to_owned(),
        history: POLICY_HISTORY,
        max_value_size: MAX_POLICY_BYTES as i32,
        storage: StorageType::File,
        num_replicas: replicas.max(1),
        ..kv::Config::default()
    }
}

/// The `router_sticky` bucket: memory storage (sessions are soft state; `replicas` copies
/// survive the loss of a node), one revision per key, entries dropped after 24 h.
pub fn sticky_bucket(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: STICKY_BUCKET.to_owned(),
        description: "Beamline Router sticky sessions".to_owned(),
        history: 1,
        max_age: STICKY_MAX_AGE,
        max_value_size: 4096,
        storage: StorageType::Memory,
        num_replicas: replicas.max(1),
        ..kv::Config::default()
    }
}

/// Opens the bucket `config` names, creating it with `config` when it does not exist yet.
pub async fn open(js: &jetstream::Context, config: kv::Config) -> anyhow::Result<kv::Store> {
    let name = config.bucket.clone();
    if let Ok(store) = js.get_key_value(&name).await {
        return Ok(store);
    }
    // Creating a stream that already exists with the same settings succeeds, so routers
    // starting together do not race each other into an error.
    js.create_key_value(config)
        .await
        .with_context(|| format!("cannot open or create the key-value bucket {name}"))
}

/// Bucket of first decisions by idempotency key: key `<hex tenant>.<hex key>`, value the
/// decision (JSON).
pub const IDEMPOTENCY_BUCKET: &str = "router_idempotency";

/// The `router_idempotency` bucket: memory storage, one revision per key, entries dropped
/// after `ttl` (the routers' `idempotency_ttl_seconds`).
pub fn idempotency_bucket(replicas: usize, ttl: Duration) -> kv::Config {
    kv::Config {
        bucket: IDEMPOTENCY_BUCKET.to_owned(),
        description: "Beamline Router first decisions by idempotency key".to_owned(),
        history: 1,
        max_age: ttl,
        max_value_size: 64 * 1024,
        storage: StorageType::Memory,
        num_replicas: replicas.max(1),
        ..kv::Config::default()
    }
}

/// The key of a first decision: tenant and idempotency key, hex-encoded.
pub fn idempotency_key(tenant_id: &str, key: &str) -> String {
    let mut out = String::with_capacity(2 * (tenant_id.len() + key.len()) + 1);
    hex_into(&mut out, tenant_id.as_bytes());
    out.push('.');
    hex_into(&mut out, key.as_bytes());
    out
}

/// The key of (tenant, policy). Tenant ids follow the contract (`[A-Za-z0-9._-]`); a policy
/// id in the bucket is `[A-Za-z0-9_-]+` (no dot: the last dot of a key separates the two).
pub fn policy_key(tenant_id: &str, policy_id: &str) -> anyhow::Result<String> {
    if !router_core::ids::is_tenant_id(tenant_id)
        || tenant_id.starts_with('.')
        || tenant_id.ends_with('.')
        || tenant_id.contains("..")
    {
        bail!("tenant id {tenant_id:?} cannot be a bucket key: use [A-Za-z0-9._-], no leading, trailing or double dot");
    }
    if !is_bucket_policy_id(policy_id) {
        bail!("policy id {policy_id:?} cannot be a bucket key: use [A-Za-z0-9_-]+");
    }
    Ok(format!("{tenant_id}.{policy_id}"))
}

/// (tenant, policy) of a policy key, split at its last dot.
pub fn parse_policy_key(key: &str) -> Option<(&str, &str)> {
    let (tenant, policy) = key.rsplit_once('.')?;
    (router_core::ids::is_tenant_id(tenant) && is_bucket_policy_id(policy))
        .then_some((tenant, policy))
}

fn is_bucket_policy_id(policy_id: &str) -> bool {
    !policy_id.is_empty()
        && policy_id.len() <= 128
        && policy_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Reads a bucket value as a policy: UTF-8, within the size limit, valid under the DSL.
pub fn parse_policy(
    value: &[u8],
    tenant_id: &str,
    policy_id: &str,
) -> Result<router_core::Policy, String> {
    if value.len() > MAX_POLICY_BYTES {
        return Err(format!(
            "{} bytes, over the limit of {MAX_POLICY_BYTES}",
            value.len()
        ));
    }
    let text = std::str::from_utf8(value).map_err(|err| format!("not UTF-8: {err}"))?;
    router_core::Policy::from_json(text, tenant_id, policy_id).map_err(|err| err.to_string())
}

/// Validates `text` as the policy (tenant, policy) and, only when it is valid, puts it into
/// the bucket. Returns the new revision.
pub async fn put_policy(
    store: &kv::Store,
    tenant_id: &str,
    policy_id: &str,
    text: &str,
) -> anyhow::Result<u64> {
    let key = policy_key(tenant_id, policy_id)?;
    if let Err(reason) = parse_policy(text.as_bytes(), tenant_id, policy_id) {
        bail!("policy {key} is invalid, not stored: {reason}");
    }
    store
        .put(&key, text.as_bytes().to_vec().into())
        .await
        .with_context(|| format!("cannot put {key} into {POLICY_BUCKET}"))
}

/// The key of a sticky session: tenant, policy, session key and session value, each
/// hex-encoded so that any byte is allowed; `None` for an empty or over-long session value
/// (such sessions stay local).
pub fn sticky_key(
    tenant_id: &str,
    policy_id: &str,
    session_key: &str,
    session: &str,
) -> Option<String> {
    if session.is_empty() || session.len() > MAX_STICKY_SESSION_BYTES {
        return None;
    }
    let parts = [tenant_id, policy_id, session_key, session];
    let mut key = String::with_capacity(parts.iter().map(|p| 2 * p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push('.');
        }
        hex_into(&mut key, part.as_bytes());
    }
    Some(key)
}

/// Appends `bytes` as lower-case hex.
pub(crate) fn hex_into(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_keys_round_trip_and_refuse_what_cannot_be_a_key() {
        let key = policy_key("acme.eu", "default").expect("valid");
        assert_eq!(key, "acme.eu.default");
        assert_eq!(parse_policy_key(&key), Some(("acme.eu", "default")));
        assert!(policy_key("acme", "v1.2").is_err());
        assert!(policy_key("acme", "").is_err());
        assert!(policy_key("ac me", "default").is_err());
        assert!(policy_key(".acme", "default").is_err());
        assert_eq!(parse_policy_key("nodot"), None);
    }

    #[test]
    fn invalid_policies_are_refused_with_the_field() {
        let err = parse_policy(br#"{"providers": [{"name": "x", "weight": -1}]}"#, "a", "p")
            .expect_err("negative weight");
        assert!(err.contains("providers[0].weight"), "{err}");
        assert!(parse_policy(b"\xff", "a", "p").is_err());
        assert!(parse_policy(br#"{"providers": [{"name": "x", "weight": 1}]}"#, "a", "p").is_ok());
    }

    #[test]
    fn sticky_keys_are_hex_and_bounded() {
        assert_eq!(
            sticky_key("acme", "p", "u", "u-1").as_deref(),
            Some("61636d65.70.75.752d31")
        );
        assert_eq!(sticky_key("acme", "p", "u", ""), None);
        assert_eq!(sticky_key("acme", "p", "u", &"x".repeat(257)), None);
        let record = router_core::decision::StickyMapping {
            tenant_id: "acme".into(),
            policy_id: "p".into(),
            session_key: "u".into(),
            session: "u-1".into(),
            provider_id: "a".into(),
            ttl_ms: 1_000,
            recorded_at_ms: 10_000,
        };
        assert_eq!(record.remaining_ms(10_400), 600);
        assert_eq!(record.remaining_ms(11_000), 0);
    }
}
