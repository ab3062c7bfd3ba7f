//! Who is calling: turns a bearer token (or, in `backplane dev`, nothing) into a
//! [`Principal`]. No GraphQL types here; authorization is declared on the schema.

pub mod browser;
pub mod directory;
pub mod oidc;
pub mod step_up;

use std::collections::BTreeSet;

use crate::policy::{Permission, Role, permissions_of};

pub use oidc::{OidcVerifier, TokenVerifier};

/// What kind of caller a principal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person signed in through the identity provider.
    Staff,
    /// A script: a token of a client in `BACKPLANE_SERVICE_CLIENTS` that names
    /// no person (see `oidc::ServiceClients`). The only kind whose scopes count.
    Service,
    /// `backplane dev` without a token: a demo identity, never in `serve`.
    Demo,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub kind: PrincipalKind,
    pub roles: BTreeSet<Role>,
    /// Granted directly (service scopes), on top of what the roles grant.
    pub scopes: BTreeSet<Permission>,
    /// How the person signed in (`amr`, `acr`, `auth_time`).
    pub authentication: step_up::Authentication,
    /// Rights held but not usable until the person steps up
    /// (`step_up::StepUpSettings::standing`, filled in at authentication).
    pub step_up: BTreeSet<Permission>,
}

impl Principal {
    /// Everything this principal holds: what its roles and scopes grant,
    /// less any right whose prerequisite is missing (`policy::requires`).
    /// Rights waiting for a step-up are held (the schema shows them) but not
    /// usable: see [`Principal::can`].
    pub fn permissions(&self) -> BTreeSet<Permission> {
        let mut all = permissions_of(&self.roles);
        if self.kind == PrincipalKind::Service {
            all.extend(self.scopes.iter().copied());
        }
        crate::policy::effective(&all)
    }

    /// Whether the principal may use `permission` now: held, with what it
    /// requires, and not waiting for a step-up.
    pub fn can(&self, permission: Permission) -> bool {
        !self.step_up.contains(&permission) && self.holds(permission)
    }

    /// Whether the principal holds `permission`, step-up or not: what its
    /// schema shows (a right waiting for a step-up stays visible).
    pub fn holds(&self, permission: Permission) -> bool {
        // Scopes count for service identities only (a second wall behind
        // `oidc::principal`, which fills them for those alone).
        let held = |p: Permission| {
            (self.kind == PrincipalKind::Service && self.scopes.contains(&p))
                || self
                    .roles
                    .iter()
                    .any(|r| crate::policy::grants(*r).contains(&p))
        };
        held(permission) && crate::policy::requires(permission).iter().all(|r| held(*r))
    }

    /// The demo administrator of `backplane dev`.
    pub fn demo_admin() -> Self {
        Principal {
            subject: "demo-admin".into(),
            email: Some("demo-admin@backplane.example".into()),
            name: Some("Ada Admin".into()),
            kind: PrincipalKind::Demo,
            roles: BTreeSet::from([Role::Admin]),
            scopes: BTreeSet::new(),
            authentication: Default::default(),
            step_up: BTreeSet::new(),
        }
    }
}

/// Why a caller was not authenticated. Each becomes HTTP 401 with a
/// `WWW-Authenticate` header; the message never echoes the token.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum IdentityError {
    #[error("a bearer token is required")]
    MissingToken,
    #[error("the Authorization header is not a bearer token")]
    NotBearer,
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued for another audience")]
    WrongAudience,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token lacks a required claim: {0}")]
    MissingClaim(&'static str),
    #[error("the identity provider is unavailable")]
    IssuerUnavailable,
    #[error("bearer tokens are not accepted: no identity provider is configured")]
    NotConfigured,
    #[error("your session has ended; sign in again")]
    SessionEnded,
}

impl IdentityError {
    /// Its name in the audit log's record of the refusal (`audit::refusals`).
    pub fn reason(&self) -> &'static str {
        match self {
            IdentityError::MissingToken => "missing_token",
            IdentityError::NotBearer => "not_bearer",
            IdentityError::Malformed => "malformed_token",
            IdentityError::AlgorithmNotAllowed => "algorithm_not_allowed",
            IdentityError::UnknownKey => "unknown_key",
            IdentityError::BadSignature => "bad_signature",
            IdentityError::Expired => "expired_token",
            IdentityError::NotYetValid => "token_not_yet_valid",
            IdentityError::WrongAudience => "wrong_audience",
            IdentityError::WrongIssuer => "wrong_issuer",
            IdentityError::MissingClaim(_) => "missing_claim",
            IdentityError::IssuerUnavailable => "issuer_unavailable",
            IdentityError::NotConfigured => "bearer_not_accepted",
            IdentityError::SessionEnded => "session_ended",
        }
    }
}
