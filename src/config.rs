//! Typed configuration, validated once at start-up. Tests build it directly.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::domain::bulk::BulkLimits;
use crate::http::network::NetworkPolicy;
use crate::http::tls::TlsSettings;
use crate::identity::browser::BrowserClientSettings;
use crate::identity::oidc::OidcSettings;
use crate::store::StoreOptions;

/// How the server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `backplane dev`: loopback only, demo data, requests without a token act as a
    /// demo administrator.
    Dev,
    /// `backplane serve`: every request needs a token from the configured issuer.
    Serve,
}

/// Everything the server needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub mode: Mode,
    pub listen: SocketAddr,
    pub database: StoreOptions,
    /// Required in `serve`; optional in `dev` (bearer tokens are then refused).
    pub oidc: Option<OidcSettings>,
    /// `BACKPLANE_SERVICE_CLIENTS`: the client ids (each `CLIENT` or
    /// `CLIENT=SUBJECT`) whose tokens are service identities, the only ones
    /// whose scopes grant rights (see `identity::oidc::ServiceClients`).
    pub service_clients: Vec<String>,
    /// Organizations `dev` seeds into an empty database.
    pub dev_seed_orgs: u64,
    /// Longest time one request may take.
    pub request_timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Who may connect.
    pub network: NetworkPolicy,
    /// Read events that may wait for the audit writer before requests are
    /// refused.
    pub audit_queue: usize,
    /// Signed checkpoints of the audit chain (`audit::checkpoint`), when a
    /// signing key is configured.
    pub audit_checkpoints: Option<crate::audit::checkpoint::Settings>,
    /// How long refusals of one source for one reason are folded into one
    /// audit event (`audit::refusals`).
    pub audit_fold: Duration,
    /// Bulk mutations' size limit and how long idempotency keys are kept.
    pub bulk: BulkLimits,
    /// Most operations one batch request (a JSON array) may carry.
    pub max_batch: usize,
    /// Rows per export and exports at once.
    pub export: crate::export::Settings,
    /// Document limits of people and of service identities.
    pub limits: crate::graphql::limits::Limits,
    /// Most operation cost executing at once (see `graphql::admission`).
    pub max_cost_in_flight: u64,
    /// The share (1–100 %) of that budget one caller may hold while another
    /// waits, and the most one operation reserves.
    pub max_cost_share_percent: u8,
    /// Whether reads may be answered by one SQL statement (see
    /// `graphql::compiled`); off, async-graphql's executor answers everything.
    pub compile_reads: bool,
    /// How many documents' compiled statements are kept for reuse (see
    /// `graphql::compiled`'s templates), per instance.
    pub prepared_documents: usize,
    /// Where people reach this server (`https://backplane.example.com`): the
    /// sign-in's redirect URI and the origin cookie requests must come from.
    pub public_url: Option<String>,
    /// Browser sign-in through the identity provider (needs `oidc`).
    pub browser: Option<BrowserClientSettings>,
    /// Seals session cookies; every instance behind one load balancer shares it.
    pub session_key: Option<SecretString>,
    /// How long a browser session lasts.
    pub session_ttl: Duration,
    /// Seals pagination cursors (see `graphql::pagination`); every instance
    /// behind one load balancer shares it. Unset: derived from `session_key`,
    /// else a random key of this process.
    pub cursor_key: Option<SecretString>,
    /// TLS termination: certificate and key (both, or neither for plain
    /// HTTP), and for mutual TLS the CA client certificates must chain to.
    /// With TLS on, session cookies are `Secure` whatever `public_url` says.
    pub tls: TlsSettings,
    /// How long a connection may take to send a request's headers: from
    /// accept to the end of the first request's headers, and on a kept-alive
    /// connection from the end of one response to the end of the next
    /// request's headers (so it is also how long an idle connection is kept).
    /// The TLS handshake has the same limit. Bodies are bounded by
    /// `request_timeout`.
    pub header_read_timeout: Duration,
    /// Most requests served at once (`/healthz` and `/readyz` aside); past
    /// it, 503 with `Retry-After: 1` at once, never a queue.
    pub max_concurrent_requests: usize,
    /// Rights that need a recent strong sign-in, and what counts as one.
    pub step_up: crate::identity::step_up::StepUpSettings,
    /// Cost budgets per caller and minute (`graphql::budget`).
    pub fair_use: crate::graphql::budget::FairUse,
}

/// A configuration that cannot work; the message says what to set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "`backplane dev` listens on loopback only (it signs everyone in as a demo admin); {0} is not a loopback address. Use 127.0.0.1 or ::1, or run `backplane serve`"
    )]
    DevNotLoopback(SocketAddr),
    #[error(
        "`backplane serve` needs an identity provider: set BACKPLANE_OIDC_ISSUER (or --oidc-issuer) and BACKPLANE_OIDC_AUDIENCE (or --oidc-audience)"
    )]
    IssuerRequired,
    #[error("BACKPLANE_OIDC_AUDIENCE (or --oidc-audience) must not be empty")]
    AudienceRequired,
    #[error("BACKPLANE_OIDC_ALGORITHMS lists no allowed algorithm")]
    NoAlgorithms,
    #[error("BACKPLANE_ALLOWED_NETWORKS is empty: nobody could connect")]
    NoNetworks,
    #[error(
        "browser sign-in (BACKPLANE_OIDC_CLIENT_ID) needs BACKPLANE_OIDC_ISSUER and BACKPLANE_PUBLIC_URL (where people reach this server, for the redirect URI)"
    )]
    BrowserIncomplete,
    #[error(
        "browser sign-in in `serve` needs BACKPLANE_SESSION_KEY: a random secret of at least 32 characters, the same on every instance (e.g. `openssl rand -base64 48`)"
    )]
    SessionKeyRequired,
    #[error(
        "BACKPLANE_CURSOR_KEY (--cursor-key) is shorter than 32 characters: set a random secret of at least 32 characters, the same on every instance (e.g. `openssl rand -base64 48`)"
    )]
    CursorKeyTooShort,
    #[error("BACKPLANE_PUBLIC_URL must start with http:// or https://")]
    PublicUrl,
    #[error(
        "TLS needs both BACKPLANE_TLS_CERT (--tls-cert) and BACKPLANE_TLS_KEY (--tls-key); only {0} is set"
    )]
    TlsIncomplete(&'static str),
    #[error(
        "BACKPLANE_TLS_CLIENT_CA (mutual TLS) needs TLS on: set BACKPLANE_TLS_CERT and BACKPLANE_TLS_KEY too"
    )]
    ClientCaWithoutTls,
    #[error(
        "BACKPLANE_SERVICE_CLIENTS: {0:?} is not CLIENT or CLIENT=SUBJECT (comma-separated, each client once)"
    )]
    ServiceClient(String),
    #[error("{0}")]
    StepUp(String),
}

impl Config {
    /// A configuration with the documented defaults.
    pub fn new(mode: Mode, listen: SocketAddr, database: StoreOptions) -> Self {
        Self {
            mode,
            listen,
            database,
            oidc: None,
            service_clients: Vec::new(),
            dev_seed_orgs: 200,
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            network: NetworkPolicy {
                allowed: NetworkPolicy::default_allowed(),
                trusted_proxies: Vec::new(),
            },
            audit_queue: 1024,
            audit_checkpoints: None,
            audit_fold: Duration::from_secs(60),
            bulk: BulkLimits::default(),
            max_batch: 10,
            export: Default::default(),
            limits: Default::default(),
            max_cost_in_flight: 32_000,
            max_cost_share_percent: 50,
            compile_reads: true,
            prepared_documents: crate::graphql::compiled::DEFAULT_PREPARED_DOCUMENTS,
            public_url: None,
            browser: None,
            session_key: None,
            session_ttl: Duration::from_secs(8 * 3600),
            cursor_key: None,
            tls: TlsSettings::default(),
            header_read_timeout: Duration::from_secs(10),
            max_concurrent_requests: 256,
            step_up: Default::default(),
            fair_use: Default::default(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.mode == Mode::Dev && !self.listen.ip().is_loopback() {
            return Err(ConfigError::DevNotLoopback(self.listen));
        }
        if self.network.allowed.is_empty() {
            return Err(ConfigError::NoNetworks);
        }
        crate::identity::oidc::ServiceClients::parse(&self.service_clients)
            .map_err(ConfigError::ServiceClient)?;
        self.step_up.validate().map_err(ConfigError::StepUp)?;
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => return Err(ConfigError::TlsIncomplete("BACKPLANE_TLS_CERT")),
            (None, Some(_)) => return Err(ConfigError::TlsIncomplete("BACKPLANE_TLS_KEY")),
            (None, None) if self.tls.client_ca.is_some() => {
                return Err(ConfigError::ClientCaWithoutTls);
            }
            _ => {}
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::PublicUrl);
        }
        if self.browser.is_some() && (self.oidc.is_none() || self.public_url.is_none()) {
            return Err(ConfigError::BrowserIncomplete);
        }
        let weak_key = self
            .session_key
            .as_ref()
            .is_none_or(|k| k.expose_secret().len() < 32);
        if self.browser.is_some() && self.mode == Mode::Serve && weak_key {
            return Err(ConfigError::SessionKeyRequired);
        }
        if self
            .cursor_key
            .as_ref()
            .is_some_and(|k| k.expose_secret().chars().count() < 32)
        {
            return Err(ConfigError::CursorKeyTooShort);
        }
        match &self.oidc {
            None if self.mode == Mode::Serve => return Err(ConfigError::IssuerRequired),
            Some(oidc) if oidc.audience.trim().is_empty() => {
                return Err(ConfigError::AudienceRequired);
            }
            Some(oidc) if oidc.algorithms.is_empty() => return Err(ConfigError::NoAlgorithms),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: Mode, listen: &str) -> Config {
        Config::new(
            mode,
            listen
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
            StoreOptions::new("sqlite://x.db"),
        )
    }

    #[test]
    fn dev_refuses_other_than_loopback() {
        assert!(config(Mode::Dev, "127.0.0.1:8080").validate().is_ok());
        assert!(config(Mode::Dev, "[::1]:8080").validate().is_ok());
        assert!(matches!(
            config(Mode::Dev, "0.0.0.0:8080").validate(),
            Err(ConfigError::DevNotLoopback(_))
        ));
    }

    #[test]
    fn serve_requires_an_issuer() {
        assert_eq!(
            config(Mode::Serve, "0.0.0.0:8080").validate(),
            Err(ConfigError::IssuerRequired)
        );
        let mut c = config(Mode::Serve, "0.0.0.0:8080");
        c.oidc = Some(OidcSettings::new("https://id.example", "backplane"));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn a_cursor_key_has_at_least_32_characters() {
        let mut c = config(Mode::Dev, "127.0.0.1:8080");
        c.cursor_key = Some(SecretString::from("x".repeat(31)));
        assert_eq!(c.validate(), Err(ConfigError::CursorKeyTooShort));
        assert!(
            ConfigError::CursorKeyTooShort
                .to_string()
                .contains("BACKPLANE_CURSOR_KEY")
        );
        c.cursor_key = Some(SecretString::from("ü".repeat(32)));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn malformed_service_clients_are_refused_naming_the_entry() {
        let mut c = config(Mode::Dev, "127.0.0.1:8080");
        c.service_clients = vec!["ops-scripts".into(), "etl=5b0c2a1e".into()];
        assert!(c.validate().is_ok());
        c.service_clients.push("=nobody".into());
        let err = c.validate().map_err(|e| e.to_string());
        assert!(
            err.as_ref()
                .is_err_and(|e| e.contains("BACKPLANE_SERVICE_CLIENTS") && e.contains("=nobody")),
            "{err:?}"
        );
    }

    #[test]
    fn tls_needs_both_files() {
        let mut c = config(Mode::Dev, "127.0.0.1:8443");
        c.tls.cert = Some("cert.pem".into());
        assert_eq!(
            c.validate(),
            Err(ConfigError::TlsIncomplete("BACKPLANE_TLS_CERT"))
        );
        c.tls = TlsSettings {
            key: Some("key.pem".into()),
            ..Default::default()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::TlsIncomplete("BACKPLANE_TLS_KEY"))
        );
        c.tls = TlsSettings {
            client_ca: Some("ca.pem".into()),
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::ClientCaWithoutTls));
        c.tls.cert = Some("cert.pem".into());
        c.tls.key = Some("key.pem".into());
        assert!(c.validate().is_ok());
    }
}
