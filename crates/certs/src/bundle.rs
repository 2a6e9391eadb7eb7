//! The project's certificate set (CA, server, client) in one directory, kept when still good.

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use crate::authority::{Authority, LeafSpec, Validity};
use crate::error::{CertError, Result};
use crate::files;
use crate::inspect::{self, Renewal, Verdict};

/// CA certificate file name.
pub const CA_CERT: &str = "ca-cert.pem";
/// CA private key file name.
pub const CA_KEY: &str = "ca-key.pem";
/// Server certificate file name.
pub const SERVER_CERT: &str = "server-cert.pem";
/// Server private key file name.
pub const SERVER_KEY: &str = "server-key.pem";
/// Client certificate file name.
pub const CLIENT_CERT: &str = "client-cert.pem";
/// Client private key file name.
pub const CLIENT_KEY: &str = "client-key.pem";

/// Common name of the project CA.
pub const CA_COMMON_NAME: &str = "Beamline Router Dev CA";
/// Subject alternative names of the server certificate.
pub const SERVER_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Common name of the client certificate.
pub const CLIENT_COMMON_NAME: &str = "router-client";
/// Certificates valid for this many days or fewer are renewed.
pub const DEFAULT_RENEW_BEFORE_DAYS: u32 = 30;
/// Default validity of newly generated certificates.
pub const DEFAULT_DAYS: u32 = 365;

/// The six file paths of a certificate set: a CA, a server and a client certificate, each
/// with its key. [`BundlePaths::new`] gives the standard names in one directory; a set put
/// together otherwise (another server certificate from the same CA, files named by the
/// environment) may point elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePaths {
    /// The directory holding them (where further certificates of the set are written).
    pub dir: PathBuf,
    /// CA certificate (`ca-cert.pem`).
    pub ca_cert: PathBuf,
    /// CA private key (`ca-key.pem`), to issue further certificates from the same CA.
    pub ca_key: PathBuf,
    /// Server certificate (`server-cert.pem`).
    pub server_cert: PathBuf,
    /// Server private key (`server-key.pem`).
    pub server_key: PathBuf,
    /// Client certificate (`client-cert.pem`: CN `router-client`, EKU clientAuth).
    pub client_cert: PathBuf,
    /// Client private key (`client-key.pem`).
    pub client_key: PathBuf,
}

impl BundlePaths {
    /// The standard file names under `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            ca_cert: dir.join(CA_CERT),
            ca_key: dir.join(CA_KEY),
            server_cert: dir.join(SERVER_CERT),
            server_key: dir.join(SERVER_KEY),
            client_cert: dir.join(CLIENT_CERT),
            client_key: dir.join(CLIENT_KEY),
        }
    }

    /// Loads the set's CA (certificate and key), to issue more certificates (e.g. negative
    /// ones) from it. This does not judge the CA; see [`crate::inspect::check_ca`].
    pub fn authority(&self) -> Result<Authority> {
        Authority::load(&self.ca_cert, &self.ca_key)
    }
}

/// How [`ensure`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsureOptions {
    /// Validity of newly generated certificates, in days.
    pub days: u32,
    /// Regenerate everything even when the existing files are good.
    pub force: bool,
    /// Certificates that expire within this many days are renewed.
    pub renew_before_days: u32,
}

impl Default for EnsureOptions {
    fn default() -> Self {
        Self {
            days: DEFAULT_DAYS,
            force: false,
            renew_before_days: DEFAULT_RENEW_BEFORE_DAYS,
        }
    }
}

/// What [`ensure`] did with one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The existing certificate and key were good and left untouched.
    Kept,
    /// There was none; a new one was written.
    Created,
    /// The existing one was replaced, for this reason.
    Renewed(Renewal),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Kept => write!(f, "kept"),
            Action::Created => write!(f, "created"),
            Action::Renewed(why) => write!(f, "renewed: {why}"),
        }
    }
}

/// One certificate of the set after [`ensure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// "ca", "server" or "client".
    pub role: &'static str,
    /// Certificate file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
    /// End of validity of the certificate now on disk.
    pub not_after: OffsetDateTime,
    /// What was done.
    pub action: Action,
}

/// The result of [`ensure`]: the paths and one entry per certificate (CA, server, client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Where the files are.
    pub paths: BundlePaths,
    /// CA, server, client, in that order.
    pub entries: Vec<Entry>,
}

impl Report {
    /// True when nothing was written.
    pub fn all_kept(&self) -> bool {
        self.entries.iter().all(|e| e.action == Action::Kept)
    }
}

/// The leaf specs of the standard set, valid for `days` from now.
pub fn standard_leaves(days: u32) -> Result<[LeafSpec; 2]> {
    let validity = Validity::days_from_now(days)?;
    Ok([
        LeafSpec::server(&SERVER_SANS, validity),
        LeafSpec::client(CLIENT_COMMON_NAME, validity),
    ])
}

/// Makes sure `dir` holds a good CA, server and client certificate set.
///
/// A certificate is kept when it (still) chains to the CA, has the expected names and
/// extended key usage, matches its key and stays valid for more than
/// `renew_before_days`; otherwise it is regenerated. A new CA renews both leaves.
/// Keys are written with mode 0600.
pub fn ensure(dir: &Path, options: &EnsureOptions) -> Result<Report> {
    if options.days <= options.renew_before_days {
        return Err(CertError::Validity(format!(
            "{} days is not more than the {}-day renewal window: every run would renew; \
             ask for more days",
            options.days, options.renew_before_days
        )));
    }
    let paths = BundlePaths::new(dir);
    let now = OffsetDateTime::now_utc();
    let renew_before = Duration::days(i64::from(options.renew_before_days));

    let (ca, ca_action) = ensure_ca(&paths, options, renew_before, now)?;
    let ca_info = inspect::describe(ca.cert_der(), "CA certificate")?;
    let mut entries = vec![Entry {
        role: "ca",
        cert: paths.ca_cert.clone(),
        key: paths.ca_key.clone(),
        not_after: ca_info.not_after,
        action: ca_action.clone(),
    }];

    let [server, client] = standard_leaves(options.days)?;
    let leaves = [
        ("server", &server, &paths.server_cert, &paths.server_key),
        ("client", &client, &paths.client_cert, &paths.client_key),
    ];
    for (role, spec, cert_path, key_path) in leaves {
        let forced = if options.force {
            Some(Renewal::Forced)
        } else if ca_action != Action::Kept {
            Some(Renewal::IssuerRenewed)
        } else {
            None
        };
        let verdict = match forced {
            Some(why) if cert_path.exists() && key_path.exists() => Verdict::Renew(why),
            _ => judge_leaf(cert_path, key_path, &ca, spec, renew_before, now),
        };
        let (not_after, action) = match verdict {
            Verdict::Keep { not_after } => (not_after, Action::Kept),
            Verdict::Renew(why) => {
                ca.issue(spec)?.write(cert_path, key_path)?;
                let action = match why {
                    Renewal::Missing => Action::Created,
                    other => Action::Renewed(other),
                };
                (spec.validity.not_after, action)
            }
        };
        entries.push(Entry {
            role,
            cert: cert_path.clone(),
            key: key_path.clone(),
            not_after,
            action,
        });
    }
    Ok(Report { paths, entries })
}

fn ensure_ca(
    paths: &BundlePaths,
    options: &EnsureOptions,
    renew_before: Duration,
    now: OffsetDateTime,
) -> Result<(Authority, Action)> {
    let verdict = if !paths.ca_cert.exists() || !paths.ca_key.exists() {
        Verdict::Renew(Renewal::Missing)
    } else if options.force {
        Verdict::Renew(Renewal::Forced)
    } else {
        match paths.authority() {
            Ok(ca) => match inspect::check_ca(ca.cert_der(), ca.key(), renew_before, now) {
                Verdict::Keep { .. } => return Ok((ca, Action::Kept)),
                renew => renew,
            },
            Err(e) => Verdict::Renew(Renewal::Unreadable(e.to_string())),
        }
    };
    let why = match verdict {
        Verdict::Renew(why) => why,
        Verdict::Keep { .. } => Renewal::Forced,
    };
    let ca = Authority::generate(CA_COMMON_NAME, Validity::days_from_now(options.days)?)?;
    ca.write(&paths.ca_cert, &paths.ca_key)?;
    let action = match why {
        Renewal::Missing => Action::Created,
        other => Action::Renewed(other),
    };
    Ok((ca, action))
}

fn judge_leaf(
    cert_path: &Path,
    key_path: &Path,
    ca: &Authority,
    spec: &LeafSpec,
    renew_before: Duration,
    now: OffsetDateTime,
) -> Verdict {
    if !cert_path.exists() || !key_path.exists() {
        return Verdict::Renew(Renewal::Missing);
    }
    let cert = match files::read_cert_der(cert_path) {
        Ok(cert) => cert,
        Err(e) => return Verdict::Renew(Renewal::Unreadable(e.to_string())),
    };
    let key = match files::read_key_pair(key_path) {
        Ok(key) => key,
        Err(e) => return Verdict::Renew(Renewal::Unreadable(e.to_string())),
    };
    inspect::check_leaf(&cert, &key, ca.cert_der(), spec, renew_before, now)
}
