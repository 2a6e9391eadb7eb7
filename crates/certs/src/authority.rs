//! A certificate authority that issues server and client certificates (ECDSA P-256).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use router_core::Identity;

use crate::error::{CertError, Result};
use crate::files::{self, Mode};

/// The organisation written into every subject.
pub const ORGANIZATION: &str = router_core::identity::ORGANIZATION;

/// The period during which a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First instant of validity.
    pub not_before: OffsetDateTime,
    /// Last instant of validity.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from one hour ago (tolerates small clock differences) for `days` days from now.
    pub fn days_from_now(days: u32) -> Result<Self> {
        if days == 0 {
            return Err(CertError::Validity(
                "a certificate must be valid for at least one day".to_owned(),
            ));
        }
        let now = OffsetDateTime::now_utc();
        Ok(Self {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(i64::from(days)),
        })
    }

    /// A period that ended yesterday (started 30 days ago): for "expired certificate" tests.
    pub fn expired() -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::days(30),
            not_after: now - Duration::days(1),
        }
    }
}

/// What a leaf certificate is for; sets the extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// EKU serverAuth.
    Server,
    /// EKU clientAuth (nats-server with `verify: true` requires it on client certificates).
    Client,
    /// EKU serverAuth and clientAuth: a cluster node's certificate, which serves clients and
    /// routes and also dials routes to its peers (mutual TLS between nodes).
    ServerAndClient,
}

/// Everything that describes a leaf certificate to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// Subject common name.
    pub common_name: String,
    /// Subject organizational unit: the role of a client certificate
    /// ([`router_core::identity::Role`]); `None` for servers and role-less clients.
    pub unit: Option<String>,
    /// Subject alternative names: IP addresses are recognised, anything else is a DNS name.
    pub sans: Vec<String>,
    /// Server or client.
    pub usage: Usage,
    /// Validity period.
    pub validity: Validity,
}

impl LeafSpec {
    /// A server certificate for the given names (the first one is also the common name).
    pub fn server(sans: &[&str], validity: Validity) -> Self {
        Self {
            common_name: sans.first().copied().unwrap_or("server").to_owned(),
            unit: None,
            sans: sans.iter().map(|s| (*s).to_owned()).collect(),
            usage: Usage::Server,
            validity,
        }
    }

    /// A cluster node certificate (EKU serverAuth and clientAuth) for the given names (the
    /// first one is also the common name).
    pub fn node(sans: &[&str], validity: Validity) -> Self {
        Self {
            usage: Usage::ServerAndClient,
            ..Self::server(sans, validity)
        }
    }

    /// A client certificate with the given common name, no role and no SAN (nats-server
    /// maps it to no user: it is refused).
    pub fn client(common_name: &str, validity: Validity) -> Self {
        Self {
            common_name: common_name.to_owned(),
            unit: None,
            sans: Vec::new(),
            usage: Usage::Client,
            validity,
        }
    }

    /// The client certificate of `identity`: its role as the organizational unit, its name
    /// (the tenant for a tenant's caller) as the common name.
    pub fn for_identity(identity: &Identity, validity: Validity) -> Self {
        Self {
            unit: Some(identity.role().unit().to_owned()),
            ..Self::client(identity.name(), validity)
        }
    }
}

/// A freshly issued certificate and its private key, both PEM encoded.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The PKCS#8 private key (PEM).
    pub key_pem: String,
}

impl Issued {
    /// Writes the certificate (mode 0644) and the key (mode 0600).
    pub fn write(&self, cert_path: &Path, key_path: &Path) -> Result<()> {
        files::write_atomic(key_path, &self.key_pem, Mode::Private)?;
        files::write_atomic(cert_path, &self.cert_pem, Mode::Public)
    }
}

/// A CA: its certificate and the key that signs leaves.
pub struct Authority {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// Generates a new self-signed CA (CA:TRUE, keyCertSign, cRLSign) with a fresh P-256 key.
    pub fn generate(common_name: &str, validity: Validity) -> Result<Self> {
        let what = format!("the CA certificate {common_name:?}");
        let key = new_key(&what)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = subject(common_name, None);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let cert = params
            .self_signed(&key)
            .map_err(|source| CertError::Generate {
                what: what.clone(),
                source,
            })?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its PEM certificate and key files. This does not judge the CA; see
    /// [`crate::inspect::check_ca`] for that.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let cert_pem = std::fs::read_to_string(cert_path).map_err(|e| CertError::Pem {
            path: cert_path.to_path_buf(),
            kind: "certificate",
            source: rustls_pki_types::pem::Error::Io(e),
        })?;
        let cert_der = files::read_cert_der(cert_path)?;
        let key = files::read_key_pair(key_path)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| CertError::Parse {
            what: cert_path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            cert_pem,
            cert_der,
            issuer,
        })
    }

    /// The CA certificate, PEM encoded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER encoded.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA private key, PEM encoded (PKCS#8).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The CA key pair.
    pub fn key(&self) -> &KeyPair {
        self.issuer.key()
    }

    /// Writes the CA certificate (0644) and key (0600).
    pub fn write(&self, cert_path: &Path, key_path: &Path) -> Result<()> {
        files::write_atomic(key_path, &self.key_pem(), Mode::Private)?;
        files::write_atomic(cert_path, &self.cert_pem, Mode::Public)
    }

    /// Issues a leaf certificate with a fresh P-256 key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Issued> {
        let what = format!("the certificate {:?}", spec.common_name);
        let key = new_key(&what)?;
        let mut params =
            CertificateParams::new(spec.sans.clone()).map_err(|source| CertError::Generate {
                what: what.clone(),
                source,
            })?;
        params.distinguished_name = subject(&spec.common_name, spec.unit.as_deref());
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.not_before = spec.validity.not_before;
        params.not_after = spec.validity.not_after;
        match spec.usage {
            Usage::Server => {
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            Usage::Client => {
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
            Usage::ServerAndClient => {
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ];
                params.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ];
            }
        }
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| CertError::Generate { what, source })?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Parses a PEM string holding one certificate into DER.
pub fn cert_der_from_pem(pem: &str, what: &str) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| CertError::Parse {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

fn new_key(what: &str) -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| CertError::Generate {
        what: format!("the key for {what}"),
        source,
    })
}

/// O, then OU when given, then CN: nats-server reads it back in RFC 2253 order as
/// `CN=…,OU=…,O=…` ([`Identity::nats_user`]).
fn subject(common_name: &str, unit: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    if let Some(unit) = unit {
        dn.push(DnType::OrganizationalUnitName, unit);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

#[cfg(test)]
mod node_tests {
    use super::*;

    #[test]
    fn a_node_certificate_serves_and_dials() -> Result<()> {
        let validity = Validity::days_from_now(10)?;
        let ca = Authority::generate("test CA", validity)?;
        let issued = ca.issue(&LeafSpec::node(&["localhost", "127.0.0.1"], validity))?;
        let der = cert_der_from_pem(&issued.cert_pem, "node")?;
        let info = crate::inspect::describe(&der, "node")?;
        assert!(info.server_auth && info.client_auth);
        assert!(info.sans.contains("127.0.0.1") && info.sans.contains("localhost"));
        Ok(())
    }
}
