//! Reading certificates back and deciding whether they can be kept.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use rcgen::KeyPair;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::authority::{LeafSpec, Usage};
use crate::error::{CertError, Result};

/// The facts of a certificate that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject common name, if any.
    pub common_name: Option<String>,
    /// Subject organizational unit (a client certificate's role), if any.
    pub organizational_unit: Option<String>,
    /// Subject alternative names, normalised (DNS names lower case, IPs in canonical form).
    pub sans: BTreeSet<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// keyUsage keyCertSign.
    pub key_cert_sign: bool,
    /// extendedKeyUsage serverAuth.
    pub server_auth: bool,
    /// extendedKeyUsage clientAuth.
    pub client_auth: bool,
    /// The raw subject public key (for ECDSA: the uncompressed point).
    pub public_key: Vec<u8>,
}

/// Parses the facts out of a DER certificate. `what` names it in errors.
pub fn describe(der: &[u8], what: &str) -> Result<CertInfo> {
    let cert = parse(der, what)?;
    let bad = |e: x509_parser::error::X509Error| CertError::Parse {
        what: what.to_owned(),
        reason: e.to_string(),
    };
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let organizational_unit = cert
        .subject()
        .iter_organizational_unit()
        .next()
        .and_then(|ou| ou.as_str().ok())
        .map(str::to_owned);
    let mut sans = BTreeSet::new();
    if let Some(ext) = cert.subject_alternative_name().map_err(bad)? {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    sans.insert(dns.to_ascii_lowercase());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        sans.insert(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let eku = cert.extended_key_usage().map_err(bad)?;
    let key_usage = cert.key_usage().map_err(bad)?;
    Ok(CertInfo {
        common_name,
        organizational_unit,
        sans,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        is_ca: cert.is_ca(),
        key_cert_sign: key_usage.is_some_and(|k| k.value.key_cert_sign()),
        server_auth: eku.as_ref().is_some_and(|e| e.value.server_auth),
        client_auth: eku.as_ref().is_some_and(|e| e.value.client_auth),
        public_key: cert.public_key().subject_public_key.data.to_vec(),
    })
}

/// True when `cert_der` names `issuer_der`'s subject as its issuer and its signature verifies
/// with the issuer's public key.
pub fn is_signed_by(cert_der: &[u8], issuer_der: &[u8]) -> Result<bool> {
    let cert = parse(cert_der, "certificate")?;
    let issuer = parse(issuer_der, "issuer certificate")?;
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Ok(false);
    }
    Ok(cert.verify_signature(Some(issuer.public_key())).is_ok())
}

/// Normalises a SAN as written in a [`LeafSpec`] the way [`describe`] reports it.
pub fn normalize_san(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

/// Why a certificate has to be (re)generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// The certificate or key file does not exist.
    Missing,
    /// A file exists but cannot be read or parsed.
    Unreadable(String),
    /// Renewal was asked for (`--force`).
    Forced,
    /// The CA was regenerated, so everything it signed must be too.
    IssuerRenewed,
    /// The CA certificate lacks CA:TRUE or keyCertSign.
    NotACa,
    /// The certificate does not chain to the CA (issuer or signature mismatch).
    NotSignedByCa,
    /// The private key does not belong to the certificate.
    KeyMismatch,
    /// Subject alternative names differ from what is required.
    SanMismatch {
        /// What the certificate has.
        found: Vec<String>,
    },
    /// The common name differs from what is required.
    CommonNameMismatch {
        /// What the certificate has.
        found: Option<String>,
    },
    /// The organizational unit (the role) differs from what is required.
    UnitMismatch {
        /// What the certificate has.
        found: Option<String>,
    },
    /// The required extended key usage is missing.
    MissingUsage(&'static str),
    /// Not valid yet.
    NotYetValid {
        /// Start of validity.
        not_before: OffsetDateTime,
    },
    /// Expired, or expires within the renewal window.
    ExpiresSoon {
        /// End of validity.
        not_after: OffsetDateTime,
    },
}

impl fmt::Display for Renewal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Renewal::Missing => write!(f, "missing"),
            Renewal::Unreadable(why) => write!(f, "unreadable ({why})"),
            Renewal::Forced => write!(f, "forced"),
            Renewal::IssuerRenewed => write!(f, "CA renewed"),
            Renewal::NotACa => write!(f, "not a CA (needs CA:TRUE and keyCertSign)"),
            Renewal::NotSignedByCa => write!(f, "not signed by the CA"),
            Renewal::KeyMismatch => write!(f, "key does not match the certificate"),
            Renewal::SanMismatch { found } => write!(f, "SAN mismatch (has {})", found.join(", ")),
            Renewal::CommonNameMismatch { found } => {
                write!(
                    f,
                    "CN mismatch (has {})",
                    found.as_deref().unwrap_or("none")
                )
            }
            Renewal::UnitMismatch { found } => write!(
                f,
                "role (OU) mismatch (has {})",
                found.as_deref().unwrap_or("none")
            ),
            Renewal::MissingUsage(eku) => write!(f, "missing EKU {eku}"),
            Renewal::NotYetValid { not_before } => {
                write!(f, "not valid before {}", not_before.date())
            }
            Renewal::ExpiresSoon { not_after } => write!(f, "expires {}", not_after.date()),
        }
    }
}

/// The outcome of checking an existing certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Good enough to keep.
    Keep {
        /// End of validity.
        not_after: OffsetDateTime,
    },
    /// Must be regenerated.
    Renew(Renewal),
}

/// Judges a CA certificate and its key: CA:TRUE, keyCertSign, self-signed, key matches,
/// valid now and for more than `renew_before` after `now`.
pub fn check_ca(
    cert_der: &[u8],
    key: &KeyPair,
    renew_before: Duration,
    now: OffsetDateTime,
) -> Verdict {
    let info = match describe(cert_der, "CA certificate") {
        Ok(info) => info,
        Err(e) => return Verdict::Renew(Renewal::Unreadable(e.to_string())),
    };
    if !info.is_ca || !info.key_cert_sign {
        return Verdict::Renew(Renewal::NotACa);
    }
    match is_signed_by(cert_der, cert_der) {
        Ok(true) => {}
        Ok(false) => return Verdict::Renew(Renewal::NotSignedByCa),
        Err(e) => return Verdict::Renew(Renewal::Unreadable(e.to_string())),
    }
    judge_key_and_time(&info, key, renew_before, now)
}

/// Judges a leaf certificate against the CA and the spec it should satisfy (common name,
/// exact SAN set, extended key usage), plus key match and remaining validity.
pub fn check_leaf(
    cert_der: &[u8],
    key: &KeyPair,
    ca_der: &[u8],
    spec: &LeafSpec,
    renew_before: Duration,
    now: OffsetDateTime,
) -> Verdict {
    let info = match describe(cert_der, &spec.common_name) {
        Ok(info) => info,
        Err(e) => return Verdict::Renew(Renewal::Unreadable(e.to_string())),
    };
    match is_signed_by(cert_der, ca_der) {
        Ok(true) => {}
        Ok(false) => return Verdict::Renew(Renewal::NotSignedByCa),
        Err(e) => return Verdict::Renew(Renewal::Unreadable(e.to_string())),
    }
    let wanted: BTreeSet<String> = spec.sans.iter().map(|s| normalize_san(s)).collect();
    if wanted != info.sans {
        return Verdict::Renew(Renewal::SanMismatch {
            found: info.sans.into_iter().collect(),
        });
    }
    if info.common_name.as_deref() != Some(spec.common_name.as_str()) {
        return Verdict::Renew(Renewal::CommonNameMismatch {
            found: info.common_name,
        });
    }
    if info.organizational_unit != spec.unit {
        return Verdict::Renew(Renewal::UnitMismatch {
            found: info.organizational_unit,
        });
    }
    match spec.usage {
        Usage::Server if !info.server_auth => {
            return Verdict::Renew(Renewal::MissingUsage("serverAuth"))
        }
        Usage::Client if !info.client_auth => {
            return Verdict::Renew(Renewal::MissingUsage("clientAuth"))
        }
        Usage::ServerAndClient if !info.server_auth => {
            return Verdict::Renew(Renewal::MissingUsage("serverAuth"))
        }
        Usage::ServerAndClient if !info.client_auth => {
            return Verdict::Renew(Renewal::MissingUsage("clientAuth"))
        }
        _ => {}
    }
    judge_key_and_time(&info, key, renew_before, now)
}

fn judge_key_and_time(
    info: &CertInfo,
    key: &KeyPair,
    renew_before: Duration,
    now: OffsetDateTime,
) -> Verdict {
    if key.public_key_raw() != info.public_key.as_slice() {
        return Verdict::Renew(Renewal::KeyMismatch);
    }
    if info.not_before > now {
        return Verdict::Renew(Renewal::NotYetValid {
            not_before: info.not_before,
        });
    }
    if info.not_after <= now + renew_before {
        return Verdict::Renew(Renewal::ExpiresSoon {
            not_after: info.not_after,
        });
    }
    Verdict::Keep {
        not_after: info.not_after,
    }
}

fn parse<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| CertError::Parse {
            what: what.to_owned(),
            reason: e.to_string(),
        })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}
