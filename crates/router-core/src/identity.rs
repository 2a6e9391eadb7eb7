//! Who is on the bus: the roles a client certificate carries (router, operator, trusted
//! internal caller, a tenant's caller), how nats-server names the user a certificate maps to
//! (`verify_and_map`), the inbox each identity receives replies on, and the tenant-scoped
//! subjects a tenant's caller publishes to.
//!
//! A certificate's role is its subject's organizational unit (`OU`), its name the common name
//! (`CN`), under the organization [`ORGANIZATION`]. nats-server maps a certificate without an
//! e-mail or DNS name to the user named by its subject in RFC 2253 order:
//! `CN=acme,OU=tenant,O=Beamline Router`.

use std::fmt;

use thiserror::Error;

use crate::ids;

/// The organization (`O`) of every certificate the project issues.
pub const ORGANIZATION: &str = "Beamline Router";

/// What a certificate may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The router: serves decide, feedback and status; writes its own buckets and the DLQ.
    Router,
    /// The operator: writes policies, reads the DLQ, may call every subject.
    Operator,
    /// A trusted internal caller: the unscoped decide and feedback subjects, any tenant.
    Internal,
    /// A tenant's caller: only that tenant's scoped subjects and its own inbox.
    Tenant,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Router, Role::Operator, Role::Internal, Role::Tenant];

    /// The organizational unit (`OU`) that carries the role.
    pub fn unit(self) -> &'static str {
        match self {
            Role::Router => "router",
            Role::Operator => "operator",
            Role::Internal => "internal",
            Role::Tenant => "tenant",
        }
    }

    /// The role an organizational unit names.
    pub fn from_unit(unit: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.unit() == unit)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.unit())
    }
}

/// A refused identity.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    /// A tenant id that cannot name a tenant-scoped identity.
    #[error(
        "tenant id {0:?} cannot have its own certificate: use 1 to 128 of [A-Za-z0-9_-] \
         (no dots: the tenant is one token of its subjects and inbox)"
    )]
    ScopedTenant(String),
    /// A certificate subject that names no role of this project.
    #[error("the certificate subject ({0}) names no role: OU must be router, operator, internal or tenant")]
    NoRole(String),
}

/// One identity: a role and, for a tenant's caller, the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    role: Role,
    name: String,
}

impl Identity {
    /// The router.
    pub fn router() -> Self {
        Self::fixed(Role::Router)
    }

    /// The operator.
    pub fn operator() -> Self {
        Self::fixed(Role::Operator)
    }

    /// The trusted internal caller.
    pub fn internal() -> Self {
        Self::fixed(Role::Internal)
    }

    /// The caller of `tenant_id`.
    pub fn tenant(tenant_id: &str) -> Result<Self, IdentityError> {
        if !is_scoped_tenant(tenant_id) {
            return Err(IdentityError::ScopedTenant(tenant_id.to_owned()));
        }
        Ok(Identity {
            role: Role::Tenant,
            name: tenant_id.to_owned(),
        })
    }

    fn fixed(role: Role) -> Self {
        Identity {
            role,
            name: role.unit().to_owned(),
        }
    }

    /// The identity a certificate subject's organizational unit and common name carry.
    pub fn from_subject(
        unit: Option<&str>,
        common_name: Option<&str>,
    ) -> Result<Self, IdentityError> {
        let described = || {
            format!(
                "OU={}, CN={}",
                unit.unwrap_or("(none)"),
                common_name.unwrap_or("(none)")
            )
        };
        match unit.and_then(Role::from_unit) {
            Some(Role::Tenant) => Identity::tenant(common_name.unwrap_or_default())
                .map_err(|_| IdentityError::NoRole(described())),
            Some(role) => Ok(Identity::fixed(role)),
            None => Err(IdentityError::NoRole(described())),
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The common name: the role's unit, or the tenant id.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tenant, for a tenant's caller.
    pub fn tenant_id(&self) -> Option<&str> {
        (self.role == Role::Tenant).then_some(self.name.as_str())
    }

    /// The nats-server user this certificate maps to under `verify_and_map`.
    pub fn nats_user(&self) -> String {
        format!("CN={},OU={},O={ORGANIZATION}", self.name, self.role.unit())
    }

    /// The inbox prefix of this identity's replies: `_INBOX.tenant.<tenant>` for a tenant's
    /// caller, `_INBOX.<role>` otherwise. nats-server lets each identity subscribe only below
    /// its own.
    pub fn inbox_prefix(&self) -> String {
        match self.role {
            Role::Tenant => format!("_INBOX.tenant.{}", self.name),
            role => format!("_INBOX.{}", role.unit()),
        }
    }

    /// The file stem of this identity's certificate and key as `cargo xtask certs` writes
    /// them: `router`, `operator`, `client` (the internal caller), `tenant-<tenant>`.
    pub fn file_stem(&self) -> String {
        match self.role {
            Role::Tenant => format!("tenant-{}", self.name),
            Role::Internal => "client".to_owned(),
            role => role.unit().to_owned(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.role {
            Role::Tenant => write!(f, "tenant {}", self.name),
            role => write!(f, "{role}"),
        }
    }
}

/// True when `tenant_id` can have scoped subjects and a certificate: a valid tenant id
/// without dots.
pub fn is_scoped_tenant(tenant_id: &str) -> bool {
    ids::is_tenant_id(tenant_id) && !tenant_id.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_users_follow_rfc_2253_order() {
        assert_eq!(
            Identity::router().nats_user(),
            "CN=router,OU=router,O=Beamline Router"
        );
        let acme = Identity::tenant("acme").expect("acme");
        assert_eq!(acme.nats_user(), "CN=acme,OU=tenant,O=Beamline Router");
        assert_eq!(acme.inbox_prefix(), "_INBOX.tenant.acme");
        assert_eq!(acme.file_stem(), "tenant-acme");
        assert_eq!(Identity::internal().inbox_prefix(), "_INBOX.internal");
        assert_eq!(Identity::internal().file_stem(), "client");
    }

    #[test]
    fn a_tenant_with_a_dot_or_a_wildcard_has_no_identity() {
        for bad in ["acme.eu", "a*", ">", "", "a b"] {
            assert!(Identity::tenant(bad).is_err(), "{bad}");
        }
        assert!(Identity::tenant("default_tenant").is_ok());
    }

    #[test]
    fn subjects_name_their_role_or_are_refused() {
        assert_eq!(
            Identity::from_subject(Some("router"), Some("router")),
            Ok(Identity::router())
        );
        assert_eq!(
            Identity::from_subject(Some("tenant"), Some("acme")),
            Identity::tenant("acme")
        );
        assert!(Identity::from_subject(None, Some("router-client")).is_err());
        assert!(Identity::from_subject(Some("tenant"), Some("a.b")).is_err());
        let err = Identity::from_subject(Some("sales"), Some("x")).map_err(|e| e.to_string());
        assert!(err.is_err_and(|e| e.contains("OU=sales, CN=x")));
    }
}
