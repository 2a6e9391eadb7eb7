//! The standard certificate set: generation, chain verification, keep-or-renew decisions.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use certs::inspect::{self, Renewal, Verdict};
use certs::{ensure, negative, Action, Authority, BundlePaths, EnsureOptions, LeafSpec, Validity};
use time::{Duration, OffsetDateTime};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn der(path: &Path) -> Result<Vec<u8>, certs::CertError> {
    Ok(certs::files::read_cert_der(path)?.to_vec())
}

fn actions(report: &certs::Report) -> Vec<Action> {
    report.entries.iter().map(|e| e.action.clone()).collect()
}

#[test]
fn generated_chain_verifies_and_has_the_required_fields() -> TestResult {
    let dir = tempfile::tempdir()?;
    let report = ensure(dir.path(), &EnsureOptions::default())?;
    assert_eq!(actions(&report), vec![Action::Created; 5]);
    let p = &report.paths;

    let ca = der(&p.ca_cert)?;
    let server = der(&p.server_cert)?;
    let client = der(&p.client_cert)?;
    assert!(inspect::is_signed_by(&ca, &ca)?, "CA is self-signed");
    assert!(inspect::is_signed_by(&server, &ca)?, "server chains to CA");
    assert!(inspect::is_signed_by(&client, &ca)?, "client chains to CA");

    let ca_info = inspect::describe(&ca, "ca")?;
    assert!(ca_info.is_ca && ca_info.key_cert_sign);

    let server_info = inspect::describe(&server, "server")?;
    let sans: Vec<&str> = server_info.sans.iter().map(String::as_str).collect();
    assert_eq!(sans, vec!["127.0.0.1", "::1", "localhost"]);
    assert!(server_info.server_auth && !server_info.is_ca);

    let client_info = inspect::describe(&client, "client")?;
    assert_eq!(client_info.common_name.as_deref(), Some("internal"));
    assert_eq!(client_info.organizational_unit.as_deref(), Some("internal"));
    for (cert, role) in [(&p.router_cert, "router"), (&p.operator_cert, "operator")] {
        let info = inspect::describe(&der(cert)?, role)?;
        assert_eq!(info.organizational_unit.as_deref(), Some(role));
        assert!(info.client_auth && !info.server_auth);
    }
    assert!(client_info.client_auth && !client_info.server_auth);

    let in_a_year = OffsetDateTime::now_utc() + Duration::days(364);
    assert!(client_info.not_after > in_a_year);
    Ok(())
}

#[test]
fn private_keys_are_owner_only() -> TestResult {
    let dir = tempfile::tempdir()?;
    let report = ensure(dir.path(), &EnsureOptions::default())?;
    for entry in &report.entries {
        let mode = fs::metadata(&entry.key)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", entry.key.display());
        let mode = fs::metadata(&entry.cert)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", entry.cert.display());
    }
    Ok(())
}

#[test]
fn second_run_keeps_everything_untouched() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = ensure(dir.path(), &EnsureOptions::default())?;
    let before: Vec<String> = first
        .entries
        .iter()
        .map(|e| fs::read_to_string(&e.cert))
        .collect::<Result<_, _>>()?;
    let second = ensure(dir.path(), &EnsureOptions::default())?;
    assert!(second.all_kept(), "{:?}", actions(&second));
    let after: Vec<String> = second
        .entries
        .iter()
        .map(|e| fs::read_to_string(&e.cert))
        .collect::<Result<_, _>>()?;
    assert_eq!(before, after);
    Ok(())
}

#[test]
fn force_renews_everything() -> TestResult {
    let dir = tempfile::tempdir()?;
    ensure(dir.path(), &EnsureOptions::default())?;
    let old_ca = fs::read_to_string(dir.path().join(certs::CA_CERT))?;
    let options = EnsureOptions {
        force: true,
        ..EnsureOptions::default()
    };
    let report = ensure(dir.path(), &options)?;
    assert_eq!(actions(&report), vec![Action::Renewed(Renewal::Forced); 5]);
    assert_ne!(old_ca, fs::read_to_string(dir.path().join(certs::CA_CERT))?);
    let p = &report.paths;
    assert!(inspect::is_signed_by(
        &der(&p.server_cert)?,
        &der(&p.ca_cert)?
    )?);
    Ok(())
}

#[test]
fn leaves_from_another_ca_are_renewed() -> TestResult {
    let dir = tempfile::tempdir()?;
    ensure(dir.path(), &EnsureOptions::default())?;
    let paths = BundlePaths::new(dir.path());
    // Replace the CA by a different (valid) one: the leaves no longer chain to it.
    let other = negative::other_authority()?;
    other.write(&paths.ca_cert, &paths.ca_key)?;
    let report = ensure(dir.path(), &EnsureOptions::default())?;
    assert_eq!(
        actions(&report),
        vec![
            Action::Kept,
            Action::Renewed(Renewal::NotSignedByCa),
            Action::Renewed(Renewal::NotSignedByCa),
            Action::Renewed(Renewal::NotSignedByCa),
            Action::Renewed(Renewal::NotSignedByCa)
        ]
    );
    assert!(inspect::is_signed_by(
        &der(&paths.client_cert)?,
        other.cert_der()
    )?);
    Ok(())
}

#[test]
fn a_new_ca_renews_the_leaves() -> TestResult {
    let dir = tempfile::tempdir()?;
    ensure(dir.path(), &EnsureOptions::default())?;
    fs::remove_file(dir.path().join(certs::CA_KEY))?;
    let report = ensure(dir.path(), &EnsureOptions::default())?;
    assert_eq!(
        actions(&report),
        vec![
            Action::Created,
            Action::Renewed(Renewal::IssuerRenewed),
            Action::Renewed(Renewal::IssuerRenewed),
            Action::Renewed(Renewal::IssuerRenewed),
            Action::Renewed(Renewal::IssuerRenewed)
        ]
    );
    Ok(())
}

#[test]
fn wrong_san_wrong_key_and_garbage_are_renewed() -> TestResult {
    let dir = tempfile::tempdir()?;
    ensure(dir.path(), &EnsureOptions::default())?;
    let paths = BundlePaths::new(dir.path());
    let ca = Authority::load(&paths.ca_cert, &paths.ca_key)?;

    negative::wrong_san_server(&ca)?.write(&paths.server_cert, &paths.server_key)?;
    // Client certificate with the server's key: key mismatch.
    fs::copy(&paths.ca_key, &paths.client_key)?;
    let report = ensure(dir.path(), &EnsureOptions::default())?;
    assert_eq!(
        actions(&report),
        vec![
            Action::Kept,
            Action::Renewed(Renewal::SanMismatch {
                found: vec!["wrong.example".to_owned()]
            }),
            Action::Kept,
            Action::Kept,
            Action::Renewed(Renewal::KeyMismatch)
        ]
    );

    fs::write(&paths.server_cert, "not a certificate")?;
    let report = ensure(dir.path(), &EnsureOptions::default())?;
    assert!(matches!(
        report.entries[1].action,
        Action::Renewed(Renewal::Unreadable(_))
    ));
    assert!(ensure(dir.path(), &EnsureOptions::default())?.all_kept());
    Ok(())
}

#[test]
fn expiring_and_expired_certificates_are_detected_and_renewed() -> TestResult {
    let dir = tempfile::tempdir()?;
    ensure(dir.path(), &EnsureOptions::default())?;
    let paths = BundlePaths::new(dir.path());
    let ca = Authority::load(&paths.ca_cert, &paths.ca_key)?;
    let server_spec = certs::server_leaf(10)?;
    // Valid for 10 more days only: inside the 30-day window.
    ca.issue(&server_spec)?
        .write(&paths.server_cert, &paths.server_key)?;
    // Already expired.
    negative::expired_client(&ca)?.write(&paths.router_cert, &paths.router_key)?;

    let now = OffsetDateTime::now_utc();
    let window = Duration::days(30);
    let server_verdict = inspect::check_leaf(
        &der(&paths.server_cert)?,
        &certs::files::read_key_pair(&paths.server_key)?,
        ca.cert_der(),
        &server_spec,
        window,
        now,
    );
    assert!(matches!(
        server_verdict,
        Verdict::Renew(Renewal::ExpiresSoon { .. })
    ));
    // Outside a 5-day window the same certificate is kept.
    let kept = inspect::check_leaf(
        &der(&paths.server_cert)?,
        &certs::files::read_key_pair(&paths.server_key)?,
        ca.cert_der(),
        &server_spec,
        Duration::days(5),
        now,
    );
    assert!(matches!(kept, Verdict::Keep { .. }));

    let report = ensure(dir.path(), &EnsureOptions::default())?;
    assert!(matches!(
        report.entries[1].action,
        Action::Renewed(Renewal::ExpiresSoon { .. })
    ));
    assert!(matches!(
        report.entries[2].action,
        Action::Renewed(Renewal::ExpiresSoon { .. })
    ));
    Ok(())
}

#[test]
fn an_expiring_ca_is_renewed_with_its_leaves() -> TestResult {
    let dir = tempfile::tempdir()?;
    let paths = BundlePaths::new(dir.path());
    let ca = Authority::generate(certs::CA_COMMON_NAME, Validity::days_from_now(20)?)?;
    ca.write(&paths.ca_cert, &paths.ca_key)?;
    let report = ensure(dir.path(), &EnsureOptions::default())?;
    assert!(matches!(
        report.entries[0].action,
        Action::Renewed(Renewal::ExpiresSoon { .. })
    ));
    assert_eq!(report.entries[1].action, Action::Created);
    Ok(())
}

#[test]
fn too_short_validity_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let options = EnsureOptions {
        days: 30,
        ..EnsureOptions::default()
    };
    assert!(matches!(
        ensure(dir.path(), &options),
        Err(certs::CertError::Validity(_))
    ));
    Ok(())
}

#[test]
fn negative_set_is_what_it_claims() -> TestResult {
    let dir = tempfile::tempdir()?;
    ensure(dir.path(), &EnsureOptions::default())?;
    let paths = BundlePaths::new(dir.path());
    let ca = Authority::load(&paths.ca_cert, &paths.ca_key)?;
    let set = negative::write_negative_set(dir.path(), &ca)?;
    let ca_der = ca.cert_der().to_vec();
    let other_ca = der(&set.other_ca_cert)?;

    let other_client = der(&set.other_client_cert)?;
    assert!(!inspect::is_signed_by(&other_client, &ca_der)?);
    assert!(inspect::is_signed_by(&other_client, &other_ca)?);
    assert!(!inspect::is_signed_by(
        &der(&paths.server_cert)?,
        &other_ca
    )?);

    let expired = der(&set.expired_client_cert)?;
    assert!(inspect::is_signed_by(&expired, &ca_der)?);
    assert!(inspect::describe(&expired, "expired")?.not_after < OffsetDateTime::now_utc());

    let wrong = der(&set.wrong_san_server_cert)?;
    assert!(inspect::is_signed_by(&wrong, &ca_der)?);
    let sans: Vec<String> = inspect::describe(&wrong, "wrong")?
        .sans
        .into_iter()
        .collect();
    assert_eq!(sans, vec!["wrong.example".to_owned()]);

    let mode = fs::metadata(&set.expired_client_key)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    Ok(())
}

#[test]
fn custom_leaf_spec_round_trips() -> TestResult {
    let ca = Authority::generate("Test CA", Validity::days_from_now(40)?)?;
    let spec = LeafSpec::server(&["node-1.local", "10.0.0.7"], Validity::days_from_now(40)?);
    let issued = ca.issue(&spec)?;
    let cert = certs::cert_der_from_pem(&issued.cert_pem, "leaf")?;
    let info = inspect::describe(&cert, "leaf")?;
    assert_eq!(info.common_name.as_deref(), Some("node-1.local"));
    assert!(info.sans.contains("10.0.0.7") && info.sans.contains("node-1.local"));
    Ok(())
}

#[test]
fn the_bundle_loads_its_own_ca() -> TestResult {
    let dir = tempfile::tempdir()?;
    let report = ensure(dir.path(), &EnsureOptions::default())?;
    let ca = report.paths.authority()?;
    assert_eq!(ca.cert_der().to_vec(), der(&report.paths.ca_cert)?);
    let leaf = ca.issue(&LeafSpec::client("extra", Validity::days_from_now(1)?))?;
    let (cert, key) = (
        dir.path().join("extra.pem"),
        dir.path().join("extra-key.pem"),
    );
    leaf.write(&cert, &key)?;
    assert!(inspect::is_signed_by(
        &der(&cert)?,
        &der(&report.paths.ca_cert)?
    )?);
    let missing = BundlePaths::new(&dir.path().join("missing")).authority();
    assert!(missing.is_err());
    Ok(())
}

#[test]
fn tenant_certificates_are_issued_on_request_and_kept_afterwards() -> TestResult {
    let dir = tempfile::tempdir()?;
    let options = EnsureOptions {
        tenants: vec!["acme".to_owned()],
        ..EnsureOptions::default()
    };
    let report = ensure(dir.path(), &options)?;
    let acme = report.entries.last().expect("an entry per certificate");
    assert_eq!(
        (acme.role.as_str(), &acme.action),
        ("tenant acme", &Action::Created)
    );
    let info = inspect::describe(&der(&acme.cert)?, "acme")?;
    assert_eq!(info.organizational_unit.as_deref(), Some("tenant"));
    assert_eq!(info.common_name.as_deref(), Some("acme"));
    assert_eq!(certs::tenants_in(dir.path()), ["acme"]);
    // Without --tenant the tenant already there is judged too, and kept.
    let again = ensure(dir.path(), &EnsureOptions::default())?;
    assert!(again.all_kept());
    assert_eq!(again.entries.len(), 6);

    let dotted = EnsureOptions {
        tenants: vec!["acme.eu".to_owned()],
        ..EnsureOptions::default()
    };
    let err = ensure(dir.path(), &dotted).map_err(|e| e.to_string());
    assert!(err.is_err_and(|e| e.contains("no dots")));
    Ok(())
}

#[test]
fn a_certificate_with_the_wrong_role_is_renewed() -> TestResult {
    let dir = tempfile::tempdir()?;
    ensure(dir.path(), &EnsureOptions::default())?;
    let paths = BundlePaths::new(dir.path());
    let ca = Authority::load(&paths.ca_cert, &paths.ca_key)?;
    // CN router, but OU operator.
    ca.issue(&LeafSpec {
        unit: Some("operator".to_owned()),
        ..LeafSpec::for_identity(&certs::Identity::router(), Validity::days_from_now(365)?)
    })?
    .write(&paths.router_cert, &paths.router_key)?;
    let report = ensure(dir.path(), &EnsureOptions::default())?;
    assert_eq!(
        report.entries[2].action,
        Action::Renewed(Renewal::UnitMismatch {
            found: Some("operator".to_owned())
        })
    );
    Ok(())
}
