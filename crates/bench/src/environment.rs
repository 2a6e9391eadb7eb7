//! Where and how a run happened: commit, machine, server, load settings.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The `environment` object of the candidate JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// `git rev-parse HEAD` of the working directory, `None` when git could not tell.
    pub git_commit: Option<String>,
    /// True when tracked files differ from the commit; `None` when git could not tell.
    pub git_dirty: Option<bool>,
    /// Logical CPUs available to the bench.
    pub cpu_count: usize,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: Option<String>,
    /// Version reported by the nats-server INFO, `None` when no connection was made.
    pub nats_server_version: Option<String>,
    /// Whether the connections used TLS.
    pub tls: bool,
    /// True when TLS used a client certificate.
    pub tls_client_cert: bool,
    /// NATS URL dialled.
    pub nats_url: String,
    /// `router`, `echo` or `interleaved`.
    pub mode: String,
    /// `closed` or `open`.
    pub load: String,
    /// Target rate of the open loop (requests per second), `None` for the closed loop.
    pub rate: Option<f64>,
    /// Concurrent requesters (closed loop) or maximum in flight (open loop).
    pub concurrency: usize,
    /// NATS connections the requesters are spread over.
    pub connections: usize,
    /// Measured window of a single-side run, in seconds.
    pub duration_s: f64,
    /// Warm-up of each side, in seconds.
    pub warmup_s: f64,
    /// Measured length of one interleaved round, in seconds.
    pub round_s: Option<f64>,
    /// Settling time at the start of each round, in seconds.
    pub round_warmup_s: Option<f64>,
    /// Blocks of interleaved rounds (four each, six with the raw echo).
    pub blocks: Option<usize>,
    /// Request timeout in seconds.
    pub request_timeout_s: f64,
    /// Subject the router's requests went to.
    pub router_subject: String,
    /// Subject the echo responder's requests went to.
    pub echo_subject: Option<String>,
    /// Subject the raw echo's requests went to, when it was measured.
    #[serde(default)]
    pub raw_echo_subject: Option<String>,
    /// `release` or `debug`: a debug bench is far slower and should not set a baseline.
    pub bench_build: String,
    /// Version of the bench itself.
    pub bench_version: String,
    /// Start of the run, RFC 3339 UTC.
    pub timestamp: String,
    /// Start of the run, Unix milliseconds.
    pub timestamp_unix_ms: u128,
}

/// Facts about the machine and the checkout that the run does not choose.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    /// See [`Environment::git_commit`].
    pub git_commit: Option<String>,
    /// See [`Environment::git_dirty`].
    pub git_dirty: Option<bool>,
    /// See [`Environment::cpu_count`].
    pub cpu_count: usize,
    /// See [`Environment::kernel`].
    pub kernel: Option<String>,
}

impl HostFacts {
    /// Gathers the facts; anything that cannot be read stays `None` (never invented).
    pub fn gather(workdir: &Path) -> Self {
        Self {
            git_commit: git(workdir, &["rev-parse", "HEAD"]).filter(|s| !s.is_empty()),
            git_dirty: git(workdir, &["status", "--porcelain", "--untracked-files=no"])
                .map(|s| !s.is_empty()),
            cpu_count: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        }
    }
}

/// Runs git in `workdir` and returns its trimmed stdout (possibly empty); `None` on failure.
fn git(workdir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(workdir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_owned())
}

/// Current time as (RFC 3339 UTC, Unix milliseconds).
pub fn now_timestamp() -> (String, u128) {
    let now = time::OffsetDateTime::now_utc();
    let text = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    let millis = u128::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    (text, millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_this_checkout() {
        let facts = HostFacts::gather(Path::new(env!("CARGO_MANIFEST_DIR")));
        assert!(facts.cpu_count >= 1);
        if let Some(commit) = &facts.git_commit {
            assert_eq!(commit.len(), 40, "a full sha: {commit}");
            assert!(facts.git_dirty.is_some());
        }
        if Path::new("/proc/sys/kernel/osrelease").exists() {
            assert!(facts.kernel.is_some());
        }
    }

    #[test]
    fn outside_a_repository_nothing_is_invented() {
        let facts = HostFacts::gather(Path::new("/"));
        if facts.git_commit.is_none() {
            assert_eq!(facts.git_dirty, None);
        }
    }

    #[test]
    fn timestamp_is_rfc3339() {
        let (text, millis) = now_timestamp();
        assert!(text.ends_with('Z'), "{text}");
        assert!(text.contains('T'));
        assert!(millis > 1_600_000_000_000);
    }
}
