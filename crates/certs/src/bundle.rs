//! The project's certificate set in one directory, kept when still good: the CA, the server,
//! and one client certificate per role — the router, the operator, the trusted internal
//! caller (`client-cert.pem`) — plus, on request, one per tenant (`tenant-<id>-cert.pem`).

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use router_core::Identity;

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
/// The trusted internal caller's certificate file name.
pub const CLIENT_CERT: &str = "client-cert.pem";
/// The trusted internal caller's private key file name.
pub const CLIENT_KEY: &str = "client-key.pem";
/// The router's certificate file name.
pub const ROUTER_CERT: &str = "router-cert.pem";
/// The router's private key file name.
pub const ROUTER_KEY: &str = "router-key.pem";
/// The operator's certificate file name.
pub const OPERATOR_CERT: &str = "operator-cert.pem";
/// The operator's private key file name.
pub const OPERATOR_KEY: &str = "operator-key.pem";

/// Common name of the project CA.
pub const CA_COMMON_NAME: &str = "Beamline Router Dev CA";
/// Subject alternative names of the server certificate.
pub const SERVER_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Certificates valid for this many days or fewer are renewed.
pub const DEFAULT_RENEW_BEFORE_DAYS: u32 = 30;
/// Default validity of newly generated certificates.
pub const DEFAULT_DAYS: u32 = 365;

/// The file paths of a certificate set: a CA, a server certificate and the client
/// certificates of the router, the operator and the internal caller, each with its key.
/// [`BundlePaths::new`] gives the standard names in one directory; a set put together
/// otherwise (another server certificate from the same CA, files named by the environment)
/// may point elsewhere. Tenants' certificates are at [`BundlePaths::identity_files`].
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
    /// The trusted internal caller's certificate (`client-cert.pem`: OU `internal`, EKU
    /// clientAuth): the unscoped subjects, any tenant.
    pub client_cert: PathBuf,
    /// Its private key (`client-key.pem`).
    pub client_key: PathBuf,
    /// The router's certificate (`router-cert.pem`: OU `router`).
    pub router_cert: PathBuf,
    /// Its private key (`router-key.pem`).
    pub router_key: PathBuf,
    /// The operator's certificate (`operator-cert.pem`: OU `operator`).
    pub operator_cert: PathBuf,
    /// Its private key (`operator-key.pem`).
    pub operator_key: PathBuf,
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
            router_cert: dir.join(ROUTER_CERT),
            router_key: dir.join(ROUTER_KEY),
            operator_cert: dir.join(OPERATOR_CERT),
            operator_key: dir.join(OPERATOR_KEY),
        }
    }

    /// `--tls-ca <ca> --tls-cert <client cert> --tls-key <client key>`: the flags that give a
    /// load tool the internal caller's identity.
    pub fn client_tls_args(&self) -> [&std::ffi::OsStr; 6] {
        [
            "--tls-ca".as_ref(),
            self.ca_cert.as_os_str(),
            "--tls-cert".as_ref(),
            self.client_cert.as_os_str(),
            "--tls-key".as_ref(),
            self.client_key.as_os_str(),
        ]
    }

    /// `--tls-ca <ca> --tls-cert <router cert> --tls-key <router key>`: the flags that give a
    /// process (the router, the bench's raw echo) the router's identity.
    pub fn router_tls_args(&self) -> [&std::ffi::OsStr; 6] {
        [
            "--tls-ca".as_ref(),
            self.ca_cert.as_os_str(),
            "--tls-cert".as_ref(),
            self.router_cert.as_os_str(),
            "--tls-key".as_ref(),
            self.router_key.as_os_str(),
        ]
    }

    /// The certificate and key of `identity`: the set's own files for the router, the
    /// operator and the internal caller; `tenant-<id>-cert.pem` and `tenant-<id>-key.pem`
    /// in the set's directory for a tenant's caller.
    pub fn identity_files(&self, identity: &Identity) -> (PathBuf, PathBuf) {
        match identity.role() {
            router_core::Role::Router => (self.router_cert.clone(), self.router_key.clone()),
            router_core::Role::Operator => (self.operator_cert.clone(), self.operator_key.clone()),
            router_core::Role::Internal => (self.client_cert.clone(), self.client_key.clone()),
            router_core::Role::Tenant => {
                let stem = identity.file_stem();
                (
                    self.dir.join(format!("{stem}-cert.pem")),
                    self.dir.join(format!("{stem}-key.pem")),
                )
            }
        }
    }

    /// The certificate and key of `identity`, issued from the set's CA first when they are
    /// missing or no longer good (another CA, wrong role, expiring). For tests and tools
    /// that need a tenant's certificate on a set made without it.
    pub fn ensure_identity(&self, identity: &Identity) -> Result<(PathBuf, PathBuf)> {
        static ISSUING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = ISSUING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (cert, key) = self.identity_files(identity);
        let ca = self.authority()?;
        let spec = LeafSpec::for_identity(identity, Validity::days_from_now(DEFAULT_DAYS)?);
        let context = LeafContext {
            ca: &ca,
            force: false,
            ca_renewed: false,
            renew_before: Duration::days(i64::from(DEFAULT_RENEW_BEFORE_DAYS)),
            now: OffsetDateTime::now_utc(),
        };
        ensure_leaf(&context, &spec, &cert, &key)?;
        Ok((cert, key))
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
    /// Tenants to issue a caller certificate for (besides those already in the directory).
    pub tenants: Vec<String>,
}

impl Default for EnsureOptions {
    fn default() -> Self {
        Self {
            days: DEFAULT_DAYS,
            force: false,
            renew_before_days: DEFAULT_RENEW_BEFORE_DAYS,
            tenants: Vec::new(),
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
    /// "ca", "server", or the identity of a client certificate ("router", "operator",
    /// "internal", "tenant acme").
    pub role: String,
    /// Certificate file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
    /// End of validity of the certificate now on disk.
    pub not_after: OffsetDateTime,
    /// What was done.
    pub action: Action,
}

/// The result of [`ensure`]: the paths and one entry per certificate (CA, server, router,
/// operator, internal caller, then any tenants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Where the files are.
    pub paths: BundlePaths,
    /// CA, server, router, operator, internal caller, tenants, in that order.
    pub entries: Vec<Entry>,
}

impl Report {
    /// True when nothing was written.
    pub fn all_kept(&self) -> bool {
        self.entries.iter().all(|e| e.action == Action::Kept)
    }
}

/// The identities whose certificates every set holds: router, operator, internal caller.
pub fn standard_identities() -> [Identity; 3] {
    [
        Identity::router(),
        Identity::operator(),
        Identity::internal(),
    ]
}

/// The server's leaf spec, valid for `days` from now.
pub fn server_leaf(days: u32) -> Result<LeafSpec> {
    Ok(LeafSpec::server(
        &SERVER_SANS,
        Validity::days_from_now(days)?,
    ))
}

/// Makes sure `dir` holds a good CA, server certificate and client certificate for the
/// router, the operator and the internal caller, plus one for each tenant of
/// `options.tenants` and each tenant whose certificate is already there.
///
/// A certificate is kept when it (still) chains to the CA, has the expected names, role and
/// extended key usage, matches its key and stays valid for more than
/// `renew_before_days`; otherwise it is regenerated. A new CA renews every leaf.
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
        role: "ca".to_owned(),
        cert: paths.ca_cert.clone(),
        key: paths.ca_key.clone(),
        not_after: ca_info.not_after,
        action: ca_action.clone(),
    }];

    let validity = Validity::days_from_now(options.days)?;
    let mut leaves = vec![(
        "server".to_owned(),
        server_leaf(options.days)?,
        paths.server_cert.clone(),
        paths.server_key.clone(),
    )];
    let mut identities = standard_identities().to_vec();
    for tenant in tenants_in(dir).iter().chain(&options.tenants) {
        let identity =
            Identity::tenant(tenant).map_err(|err| CertError::Validity(err.to_string()))?;
        if !identities.contains(&identity) {
            identities.push(identity);
        }
    }
    for identity in &identities {
        let (cert, key) = paths.identity_files(identity);
        let spec = LeafSpec::for_identity(identity, validity);
        leaves.push((identity.to_string(), spec, cert, key));
    }
    let ca_renewed = ca_action != Action::Kept;
    for (role, spec, cert_path, key_path) in leaves {
        let context = LeafContext {
            ca: &ca,
            force: options.force,
            ca_renewed,
            renew_before,
            now,
        };
        let (not_after, action) = ensure_leaf(&context, &spec, &cert_path, &key_path)?;
        entries.push(Entry {
            role,
            cert: cert_path,
            key: key_path,
            not_after,
            action,
        });
    }
    Ok(Report { paths, entries })
}

/// What judging one leaf depends on besides its spec.
struct LeafContext<'a> {
    ca: &'a Authority,
    force: bool,
    ca_renewed: bool,
    renew_before: Duration,
    now: OffsetDateTime,
}

/// Keeps or (re)issues one leaf: its end of validity and what was done.
fn ensure_leaf(
    context: &LeafContext<'_>,
    spec: &LeafSpec,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(OffsetDateTime, Action)> {
    let forced = if context.force {
        Some(Renewal::Forced)
    } else if context.ca_renewed {
        Some(Renewal::IssuerRenewed)
    } else {
        None
    };
    let verdict = match forced {
        Some(why) if cert_path.exists() && key_path.exists() => Verdict::Renew(why),
        _ => judge_leaf(
            cert_path,
            key_path,
            context.ca,
            spec,
            context.renew_before,
            context.now,
        ),
    };
    Ok(match verdict {
        Verdict::Keep { not_after } => (not_after, Action::Kept),
        Verdict::Renew(why) => {
            context.ca.issue(spec)?.write(cert_path, key_path)?;
            let action = match why {
                Renewal::Missing => Action::Created,
                other => Action::Renewed(other),
            };
            (spec.validity.not_after, action)
        }
    })
}

/// The tenants whose certificates (`tenant-<id>-cert.pem`) are in `dir`, sorted.
pub fn tenants_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut tenants: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let tenant = name.strip_prefix("tenant-")?.strip_suffix("-cert.pem")?;
            router_core::identity::is_scoped_tenant(tenant).then(|| tenant.to_owned())
        })
        .collect();
    tenants.sort();
    tenants
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
