//! The policy store: (tenant, policy) → policy, swapped atomically on reload.
//!
//! Readers take a snapshot with one atomic load; a reload builds a whole new set and swaps it
//! in, so no reader ever sees half a reload. A file that fails validation keeps the policy it
//! would have replaced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Tenants and policies by name, hashed with a fast seeded hash: every decision looks up
/// its tenant and policy here.
type NameMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

use arc_swap::ArcSwap;

use super::model::Policy;
use super::quota::TenantQuota;
use crate::ids;

/// Largest policy file read, in bytes.
const MAX_POLICY_FILE_BYTES: u64 = 1024 * 1024;

/// All policies, by tenant then policy id.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    by_tenant: NameMap<NameMap<Arc<Policy>>>,
    /// Each tenant's limits: the tightest its policies declare.
    tenant_quotas: NameMap<TenantQuota>,
}

impl PolicySet {
    /// The policy for (tenant, policy_id).
    pub fn get(&self, tenant_id: &str, policy_id: &str) -> Option<&Arc<Policy>> {
        self.by_tenant.get(tenant_id)?.get(policy_id)
    }

    /// The tenant's limits over all its policies (the lowest each declares), if any.
    pub fn tenant_quota(&self, tenant_id: &str) -> Option<TenantQuota> {
        self.tenant_quotas.get(tenant_id).copied()
    }

    fn recount_quota(&mut self, tenant_id: &str) {
        let tightest = self.by_tenant.get(tenant_id).and_then(|policies| {
            policies
                .values()
                .filter_map(|p| p.quota.map(|q| q.tenant))
                .filter(TenantQuota::is_limited)
                .reduce(TenantQuota::tightest)
        });
        match tightest {
            Some(quota) => self.tenant_quotas.insert(tenant_id.to_owned(), quota),
            None => self.tenant_quotas.remove(tenant_id),
        };
    }

    /// Every policy of `tenant_id`, in policy-id order.
    pub fn of_tenant(&self, tenant_id: &str) -> Vec<&Arc<Policy>> {
        let mut policies: Vec<&Arc<Policy>> = self
            .by_tenant
            .get(tenant_id)
            .map(|ps| ps.values().collect())
            .unwrap_or_default();
        policies.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
        policies
    }

    /// Adds or replaces one policy.
    pub fn insert(&mut self, policy: Policy) {
        let tenant_id = policy.tenant_id.clone();
        self.by_tenant
            .entry(tenant_id.clone())
            .or_default()
            .insert(policy.policy_id.clone(), Arc::new(policy));
        self.recount_quota(&tenant_id);
    }

    /// Removes one policy; true when it was there.
    pub fn remove(&mut self, tenant_id: &str, policy_id: &str) -> bool {
        let Some(policies) = self.by_tenant.get_mut(tenant_id) else {
            return false;
        };
        let removed = policies.remove(policy_id).is_some();
        if policies.is_empty() {
            self.by_tenant.remove(tenant_id);
        }
        self.recount_quota(tenant_id);
        removed
    }

    /// How many policies the set holds.
    pub fn len(&self) -> usize {
        self.by_tenant.values().map(HashMap::len).sum()
    }

    /// True when the set holds no policy.
    pub fn is_empty(&self) -> bool {
        self.by_tenant.is_empty()
    }

    /// (tenant, policy) pairs, sorted.
    pub fn keys(&self) -> Vec<(String, String)> {
        let mut keys: Vec<_> = self
            .by_tenant
            .iter()
            .flat_map(|(t, ps)| ps.keys().map(move |p| (t.clone(), p.clone())))
            .collect();
        keys.sort();
        keys
    }
}

/// A policy file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct PolicyFileError {
    /// The file.
    pub path: PathBuf,
    /// Why it was refused.
    pub reason: String,
}

/// The policy directory itself could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory is missing or unreadable.
    #[error("cannot read policy directory {}: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What a load or reload did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Policies now served.
    pub loaded: usize,
    /// Files refused, with their reason.
    pub errors: Vec<PolicyFileError>,
    /// (tenant, policy) whose new file was refused, so the previous version stays.
    pub kept_previous: Vec<(String, String)>,
}

/// The live policy set, shared by every request.
#[derive(Debug, Default)]
pub struct PolicyStore {
    current: ArcSwap<PolicySet>,
}

impl PolicyStore {
    /// An empty store.
    pub fn new() -> Self {
        PolicyStore::default()
    }

    /// The policy for (tenant, policy_id), from the current snapshot.
    pub fn get(&self, tenant_id: &str, policy_id: &str) -> Option<Arc<Policy>> {
        self.current.load().get(tenant_id, policy_id).cloned()
    }

    /// The policy for (tenant, policy_id) and the tenant's limits, from one snapshot.
    pub fn get_with_quota(
        &self,
        tenant_id: &str,
        policy_id: &str,
    ) -> Option<(Arc<Policy>, Option<TenantQuota>)> {
        let set = self.current.load();
        let policy = set.get(tenant_id, policy_id)?.clone();
        Some((policy, set.tenant_quota(tenant_id)))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<PolicySet> {
        self.current.load_full()
    }

    /// Swaps in a whole new set.
    pub fn replace(&self, set: PolicySet) {
        self.current.store(Arc::new(set));
    }

    /// Adds or replaces one policy atomically.
    pub fn upsert(&self, policy: Policy) {
        self.current.rcu(|set| {
            let mut next = PolicySet::clone(set);
            next.insert(policy.clone());
            next
        });
    }

    /// Removes one policy atomically; true when it was there.
    pub fn remove(&self, tenant_id: &str, policy_id: &str) -> bool {
        let mut removed = false;
        self.current.rcu(|set| {
            let mut next = PolicySet::clone(set);
            removed = next.remove(tenant_id, policy_id);
            next
        });
        removed
    }

    /// Loads `<dir>/<tenant>/<policy>.json` and swaps the result in. Bad files are reported
    /// and, when they replace a policy already served, the old version is kept. Files that
    /// disappeared are dropped. An unreadable directory changes nothing.
    pub fn load_dir(&self, dir: &Path) -> Result<LoadReport, StoreError> {
        let (mut next, errors, refused) = read_dir(dir)?;
        let previous = self.current.load();
        let mut kept_previous = Vec::new();
        for (tenant, policy) in refused {
            if let Some(old) = previous.get(&tenant, &policy) {
                next.insert(Policy::clone(old));
                kept_previous.push((tenant, policy));
            }
        }
        let report = LoadReport {
            loaded: next.len(),
            errors,
            kept_previous,
        };
        self.replace(next);
        Ok(report)
    }
}

type DirContents = (PolicySet, Vec<PolicyFileError>, Vec<(String, String)>);

fn read_dir(dir: &Path) -> Result<DirContents, StoreError> {
    let dir_error = |source| StoreError::Directory {
        path: dir.to_path_buf(),
        source,
    };
    let mut set = PolicySet::default();
    let mut errors = Vec::new();
    let mut refused = Vec::new();
    let mut tenants: Vec<_> = std::fs::read_dir(dir)
        .map_err(dir_error)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    tenants.sort();
    for tenant_dir in tenants {
        let Some(tenant) = tenant_dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        if !ids::is_tenant_id(&tenant) {
            errors.push(PolicyFileError {
                path: tenant_dir.clone(),
                reason: "directory name is not a valid tenant id ([A-Za-z0-9._-]+)".into(),
            });
            continue;
        }
        let files = match std::fs::read_dir(&tenant_dir) {
            Ok(files) => files,
            Err(err) => {
                errors.push(PolicyFileError {
                    path: tenant_dir.clone(),
                    reason: format!("cannot read directory: {err}"),
                });
                continue;
            }
        };
        let mut files: Vec<_> = files
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        for file in files {
            let Some(policy_id) = file.file_stem().and_then(|s| s.to_str()).map(str::to_owned)
            else {
                continue;
            };
            match read_policy(&file, &tenant, &policy_id) {
                Ok(policy) => set.insert(policy),
                Err(reason) => {
                    errors.push(PolicyFileError { path: file, reason });
                    refused.push((tenant.clone(), policy_id));
                }
            }
        }
    }
    Ok((set, errors, refused))
}

fn read_policy(file: &Path, tenant: &str, policy_id: &str) -> Result<Policy, String> {
    let size = std::fs::metadata(file)
        .map_err(|err| format!("cannot read: {err}"))?
        .len();
    if size > MAX_POLICY_FILE_BYTES {
        return Err(format!(
            "file is {size} bytes, over the limit of {MAX_POLICY_FILE_BYTES}"
        ));
    }
    let text = std::fs::read_to_string(file).map_err(|err| format!("cannot read: {err}"))?;
    Policy::from_json(&text, tenant, policy_id).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, tenant: &str, policy: &str, body: &str) {
        let tenant_dir = dir.join(tenant);
        std::fs::create_dir_all(&tenant_dir).expect("create tenant dir");
        std::fs::write(tenant_dir.join(format!("{policy}.json")), body).expect("write policy");
    }

    const GOOD: &str = r#"{"providers": [{"name": "openai", "weight": 100}]}"#;
    const OTHER: &str = r#"{"providers": [{"name": "anthropic", "weight": 100}]}"#;

    #[test]
    fn bad_files_are_reported_and_good_ones_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "acme", "default", GOOD);
        write(dir.path(), "acme", "broken", "{not json");
        write(
            dir.path(),
            "globex",
            "default",
            r#"{"providers": [{"name": "x", "weight": -5}]}"#,
        );
        let store = PolicyStore::new();
        let report = store.load_dir(dir.path()).expect("dir readable");
        assert_eq!(report.loaded, 1);
        assert_eq!(report.errors.len(), 2);
        assert!(report
            .errors
            .iter()
            .any(|e| e.path.ends_with("acme/broken.json")));
        assert!(report
            .errors
            .iter()
            .any(|e| e.reason.contains("providers[0].weight")));
        assert!(store.get("acme", "default").is_some());
        assert!(store.get("globex", "default").is_none());
    }

    #[test]
    fn reload_keeps_the_old_policy_when_the_new_file_is_bad() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "acme", "default", GOOD);
        let store = PolicyStore::new();
        store.load_dir(dir.path()).expect("first load");
        write(dir.path(), "acme", "default", r#"{"providers": "oops"}"#);
        let report = store.load_dir(dir.path()).expect("reload");
        assert_eq!(
            report.kept_previous,
            vec![("acme".to_owned(), "default".to_owned())]
        );
        let policy = store.get("acme", "default").expect("old policy kept");
        assert_eq!(policy.providers[0].name, "openai");
        write(dir.path(), "acme", "default", OTHER);
        store.load_dir(dir.path()).expect("reload");
        let policy = store.get("acme", "default").expect("new policy");
        assert_eq!(policy.providers[0].name, "anthropic");
    }

    #[test]
    fn a_missing_directory_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "acme", "default", GOOD);
        let store = PolicyStore::new();
        store.load_dir(dir.path()).expect("first load");
        assert!(store.load_dir(&dir.path().join("missing")).is_err());
        assert!(store.get("acme", "default").is_some());
    }

    #[test]
    fn upsert_and_remove() {
        let store = PolicyStore::new();
        let policy = Policy::from_json(GOOD, "acme", "p1").expect("valid");
        store.upsert(policy);
        assert_eq!(
            store.snapshot().keys(),
            vec![("acme".to_owned(), "p1".to_owned())]
        );
        assert!(store.remove("acme", "p1"));
        assert!(store.snapshot().is_empty());
    }
}
