//! [`target_store`]: `PolicyStore::load_dir` over a directory of fuzzed files, each one
//! either loaded or reported, never both, never neither.

use std::collections::HashSet;
use std::path::Path;

use proptest::prelude::*;
use router_core::PolicyStore;

/// One fuzzed file of a policy directory.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    pub tenant: String,
    pub policy: String,
    pub bytes: Vec<u8>,
}

/// `load_dir` over fuzzed files: each one loaded or reported, and every loaded policy
/// keeps the rules.
pub fn target_store(files: &[PolicyFile]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut written: Vec<(String, String)> = Vec::new();
    let mut bad_tenant_dirs = HashSet::new();
    for file in files {
        let tenant_dir = dir.path().join(&file.tenant);
        std::fs::create_dir_all(&tenant_dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = tenant_dir.join(format!("{}.json", file.policy));
        std::fs::write(&path, &file.bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let key = (file.tenant.clone(), file.policy.clone());
        if !written.contains(&key) {
            written.push(key);
        }
        let valid_tenant = !file.tenant.is_empty()
            && file
                .tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_tenant {
            bad_tenant_dirs.insert(file.tenant.clone());
        }
    }
    let store = PolicyStore::new();
    let report = store
        .load_dir(dir.path())
        .map_err(|e| TestCaseError::fail(format!("an existing directory must load: {e}")))?;
    let files_in_good_dirs = written
        .iter()
        .filter(|(tenant, _)| !bad_tenant_dirs.contains(tenant))
        .count();
    // Errors about a tenant directory sit right under the root; file errors one level down.
    let file_errors = report
        .errors
        .iter()
        .filter(|e| e.path.parent() != Some(dir.path()))
        .count();
    prop_assert_eq!(
        report.loaded + file_errors,
        files_in_good_dirs,
        "every file is loaded or reported: {:?}",
        report
    );
    prop_assert_eq!(report.errors.len() - file_errors, bad_tenant_dirs.len());
    for error in &report.errors {
        prop_assert!(!error.reason.is_empty(), "{:?}", error);
    }
    for (tenant, policy) in &written {
        if let Some(loaded) = store.get(tenant, policy) {
            prop_assert_eq!(&loaded.tenant_id, tenant);
            prop_assert_eq!(&loaded.policy_id, policy);
            let file = Path::new(tenant).join(format!("{policy}.json"));
            let reported = report.errors.iter().any(|e| e.path.ends_with(&file));
            prop_assert!(!reported, "{}/{} both loaded and reported", tenant, policy);
        }
    }
    Ok(())
}
