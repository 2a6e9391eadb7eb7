//! Test clients of the cluster (the operator's certificate and inbox) and the decide
//! requests they send.

use std::time::Duration;

use anyhow::{bail, Context};
use nats_harness::cluster::NatsCluster;
use router_bin::fleet::buckets;
use router_core::Identity;
use serde_json::{json, Value};

use crate::support::DECIDE;

/// A client of the cluster: of node `node` only, or of any node (it then fails over).
pub async fn connect(
    cluster: &NatsCluster,
    node: Option<usize>,
) -> anyhow::Result<async_nats::Client> {
    let tls = cluster.tls().context("the cluster has TLS")?;
    let urls = match node {
        Some(i) => cluster.client_url(i),
        None => cluster.client_urls(),
    };
    let servers: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(|u| u.parse().context("URL"))
        .collect::<anyhow::Result<_>>()?;
    async_nats::ConnectOptions::new()
        .add_root_certificates(tls.ca_cert.clone())
        .add_client_certificate(tls.operator_cert.clone(), tls.operator_key.clone())
        .custom_inbox_prefix(Identity::operator().inbox_prefix())
        .require_tls(true)
        .max_reconnects(None)
        .connect(servers)
        .await
        .context("test client connects")
}

/// The `router_policies` bucket, opened (or created) through `client`.
pub async fn policy_store(
    client: &async_nats::Client,
) -> anyhow::Result<async_nats::jetstream::kv::Store> {
    let js = async_nats::jetstream::new(client.clone());
    buckets::open(&js, buckets::policy_bucket(3)).await
}

/// Puts a policy into a bucket the cluster has just created. For a moment after the bucket's
/// stream is created, a node may not yet know it and answer "no stream found"; the put is
/// asked again for up to 10 s, any other error fails at once.
pub async fn put_first_policy(
    kv: &async_nats::jetstream::kv::Store,
    tenant_id: &str,
    policy_id: &str,
    text: &str,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match buckets::put_policy(kv, tenant_id, policy_id, text).await {
            Ok(_) => return Ok(()),
            Err(err)
                if format!("{err:#}").contains("no stream found")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

/// A decide request for tenant `acme` under `policy`, with a session when `user` is given.
pub fn request(id: &str, policy: &str, user: Option<&str>) -> Vec<u8> {
    let mut constraints = json!({"policy_id": policy});
    if let Some(user) = user {
        constraints["user_id"] = json!(user);
    }
    json!({
        "version": "1",
        "request_id": id,
        "tenant_id": "acme",
        "task": {"type": "text.generate", "payload": {"prompt": "hello world"}},
        "constraints": constraints,
    })
    .to_string()
    .into_bytes()
}

/// One decide request; the reply's decision, or why there is none.
pub async fn decide(
    client: &async_nats::Client,
    body: Vec<u8>,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let reply = tokio::time::timeout(timeout, client.request(DECIDE, body.into()))
        .await
        .context("timed out")??;
    let reply: Value = serde_json::from_slice(&reply.payload)?;
    if reply["ok"] != json!(true) {
        bail!("error reply: {reply}");
    }
    Ok(reply["decision"].clone())
}
