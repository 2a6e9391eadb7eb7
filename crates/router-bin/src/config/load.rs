//! Reading the configuration file and checking the settings.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context};

use router_core::Thresholds;

use super::{Config, PolicySource};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config/router.toml";

impl Config {
    /// The defaults, connected to `url` (with the CA, client certificate and key when `tls`
    /// is given), serving the policies in `policy_dir`, with HTTP on a free loopback port:
    /// a router to embed or to start in a test.
    pub fn for_nats(url: &str, tls: Option<(&Path, &Path, &Path)>, policy_dir: &Path) -> Config {
        let mut config = Config::default();
        config.nats.url = url.to_owned();
        if let Some((ca, cert, key)) = tls {
            config.nats.ca = Some(ca.to_path_buf());
            config.nats.cert = Some(cert.to_path_buf());
            config.nats.key = Some(key.to_path_buf());
        }
        config.router.policy_dir = policy_dir.to_path_buf();
        config.http.metrics_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    /// Parses a TOML file.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).map_err(|err| {
            anyhow::anyhow!(
                "config file {} is invalid: {}",
                path.display(),
                err.message()
            )
        })
    }

    /// The file named, else `config/router.toml` when it exists, else the defaults.
    pub fn from_file_or_default(path: Option<&Path>) -> anyhow::Result<Config> {
        match path {
            Some(path) => Config::from_file(path),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                Config::from_file(Path::new(DEFAULT_CONFIG_FILE))
            }
            None => Ok(Config::default()),
        }
    }

    /// Checks the settings every use of the configuration needs: the NATS connection, its
    /// TLS files and the subject prefix.
    pub fn validate_connection(&self) -> anyhow::Result<()> {
        if self.nats.url.trim().is_empty() {
            bail!("nats.url is empty; give the NATS URL, e.g. tls://127.0.0.1:4222");
        }
        let tls_files = [&self.nats.ca, &self.nats.cert, &self.nats.key];
        if self.nats.cert.is_some() != self.nats.key.is_some() {
            bail!("nats.cert and nats.key go together; give both or neither");
        }
        for path in tls_files.into_iter().flatten() {
            if !path.is_file() {
                bail!("TLS file {} does not exist", path.display());
            }
        }
        if self.nats.name.trim().is_empty() {
            bail!("nats.name is empty");
        }
        let prefix = &self.router.subject_prefix;
        if prefix.is_empty()
            || prefix.split('.').any(str::is_empty)
            || prefix.contains(|c: char| c.is_whitespace() || c == '*' || c == '>')
        {
            bail!("router.subject_prefix {prefix:?} is not a valid subject prefix");
        }
        Ok(())
    }

    /// Checks the settings only the service needs (policies, workers, queue, tenants,
    /// thresholds).
    pub fn validate_service(&self) -> anyhow::Result<()> {
        if !(1..=5).contains(&self.router.kv_replicas) {
            bail!("router.kv_replicas must be from 1 to 5");
        }
        if self.router.policy_source == PolicySource::Dir && !self.router.policy_dir.is_dir() {
            bail!(
                "policy directory {} does not exist",
                self.router.policy_dir.display()
            );
        }
        if self.router.queue_group.trim().is_empty() {
            bail!("router.queue_group is empty");
        }
        if !(1..=1024).contains(&self.router.concurrency) {
            bail!("router.concurrency must be from 1 to 1024 decide workers");
        }
        if !(1..=1_048_576).contains(&self.router.queue_capacity) {
            bail!("router.queue_capacity must be from 1 to 1048576 requests");
        }
        if let Some(bad) = self
            .router
            .allowed_tenants
            .iter()
            .find(|t| !router_core::ids::is_tenant_id(t))
        {
            bail!("router.allowed_tenants: {bad:?} is not a valid tenant id");
        }
        let latency = self.backpressure.latency_overload_ms;
        if latency.is_nan() || latency < 0.0 {
            bail!("backpressure.latency_overload_ms must be a number >= 0");
        }
        super::observe::check_ratio("tracing.sample_ratio", self.tracing.sample_ratio)?;
        super::observe::check_ratio("records.sample_ratio", self.records.sample_ratio)?;
        let stream = &self.records.stream;
        if stream.is_empty()
            || !stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            bail!("records.stream {stream:?} is not a stream name: use letters, digits, _ and -");
        }
        if self.records.max_age_seconds == 0 || self.records.max_bytes <= 0 {
            bail!("records.max_age_seconds and records.max_bytes must be above 0");
        }
        if !(1..=5).contains(&self.records.replicas) {
            bail!("records.replicas must be from 1 to 5");
        }
        if !(1..=1_048_576).contains(&self.records.queue_capacity) {
            bail!("records.queue_capacity must be from 1 to 1048576 records");
        }
        Ok(())
    }

    /// True when the connection uses TLS (a `tls://` URL or any TLS file).
    pub fn uses_tls(&self) -> bool {
        self.nats.url.contains("tls://") || self.nats.ca.is_some() || self.nats.cert.is_some()
    }

    /// The tenant allow-list, `None` when every tenant is served.
    pub fn allowed_tenants(&self) -> Option<HashSet<String>> {
        (!self.router.allowed_tenants.is_empty())
            .then(|| self.router.allowed_tenants.iter().cloned().collect())
    }

    /// Backpressure thresholds.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            queue_overload: self.backpressure.queue_overload,
            inflight_overload: self.backpressure.inflight_overload,
            latency_overload_ms: self.backpressure.latency_overload_ms,
        }
    }
}
