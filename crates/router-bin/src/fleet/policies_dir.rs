//! Policies from the policy directory (`policy_source = "dir"`): loaded at start, reloaded
//! on SIGHUP; a refused file keeps the previous version of that policy.

use std::path::Path;

use anyhow::Context;

use router_core::Router;

use crate::telemetry::metrics::Metrics;

/// Loads the policy directory at start; returns how many files were refused. Fails only when
/// the directory cannot be read at all.
pub fn load(router: &Router, dir: &Path, metrics: &Metrics) -> anyhow::Result<usize> {
    let report = router
        .policies()
        .load_dir(dir)
        .with_context(|| "cannot load policies; check router.policy_dir")?;
    for error in &report.errors {
        let (tenant, policy) = names(&error.path);
        tracing::error!(tenant, policy, file = %error.path.display(), reason = %error.reason, "policy file refused");
    }
    metrics.policies_loaded.set(report.loaded as f64);
    tracing::info!(
        loaded = report.loaded,
        refused = report.errors.len(),
        dir = %dir.display(),
        "policies loaded"
    );
    if report.loaded == 0 {
        tracing::warn!("no policy loaded: every decide request will get policy_not_found");
    }
    Ok(report.errors.len())
}

/// Reloads the policy directory: valid files replace their policy, refused ones keep theirs.
pub fn reload(router: &Router, dir: &Path, metrics: &Metrics) {
    match router.policies().load_dir(dir) {
        Ok(report) => {
            for error in &report.errors {
                let (tenant, policy) = names(&error.path);
                tracing::error!(tenant, policy, file = %error.path.display(), reason = %error.reason, "policy file refused; previous version kept if any");
            }
            metrics.policies_loaded.set(report.loaded as f64);
            if report.errors.is_empty() {
                metrics.reloads_ok.increment(1);
            } else {
                metrics.reloads_failed.increment(1);
            }
            tracing::info!(
                loaded = report.loaded,
                refused = report.errors.len(),
                "policies reloaded"
            );
        }
        Err(err) => {
            metrics.reloads_failed.increment(1);
            tracing::error!(%err, "policy reload failed; previous policies kept");
        }
    }
}

/// The tenant and policy a policy file names: `<dir>/<tenant>/<policy>.json`.
fn names(path: &Path) -> (&str, &str) {
    let policy = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
    let tenant = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|s| s.to_str())
        .unwrap_or("?");
    (tenant, policy)
}
