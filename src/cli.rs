//! The command line. Every flag has a `BACKPLANE_…` environment variable beside it,
//! shown by `--help`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::app::Application;
use crate::config::{Config, Mode};
use crate::identity::oidc::{OidcSettings, parse_algorithm};
use crate::policy::Role;
use crate::store::{Store, StoreOptions, seed};
use crate::telemetry::LogFormat;

/// Backplane: the internal GraphQL data layer.
///
/// One schema over the company's data, guarded per role, audited. Start with
/// `backplane dev` (SQLite, demo data, no identity provider needed).
#[derive(Parser, Debug)]
#[command(name = "backplane", version, about, long_about)]
pub struct Cli {
    /// Log line format.
    #[arg(
        long,
        env = "BACKPLANE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Export traces (one span per request, with its request id) over OTLP/HTTP
    /// to this collector, e.g. `http://otel-collector:4318`. Off when unset.
    #[arg(long, env = "BACKPLANE_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run in production: every request needs a token from the OIDC issuer.
    Serve(ServeArgs),
    /// Try it: a SQLite file migrated and filled with demo data on first start,
    /// loopback only, requests without a token act as a demo admin.
    Dev(DevArgs),
    /// Apply pending database migrations, then exit.
    Migrate(DatabaseArgs),
    /// Fill an empty database with deterministic demo data.
    Seed(SeedArgs),
    /// Print the GraphQL schema (SDL); `schema.graphql` must equal it.
    Schema(SchemaArgs),
    /// Audit-log maintenance.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; exits non-zero and names the first row
    /// that was changed, removed or inserted out of order. With
    /// `--checkpoints`, also against the signed checkpoints: newest rows
    /// deleted, a stretch rewritten and hashed again, a forged checkpoint.
    Verify(VerifyArgs),
    /// Write a new Ed25519 key pair for signing checkpoints: PREFIX (the
    /// private key, PKCS#8 PEM, mode 0600) and PREFIX.pub (the public key).
    Keygen(KeygenArgs),
    /// Write the events, with their ids and hashes, as NDJSON (one event a
    /// line), for a copy kept elsewhere; `verify --from-file` checks it.
    Export(ExportArgs),
    /// Remove the events before a date (the oldest stretch of the chain, never
    /// the newest event) and write a signed checkpoint of what was removed, so
    /// that the rest still verifies.
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Remove the events that occurred before this instant (RFC 3339) or day
    /// (`2026-01-01`, midnight UTC), up to the first event at or after it.
    #[arg(long, value_parser = parse_instant)]
    pub before: chrono::DateTime<chrono::Utc>,

    /// The key that signs the prune's checkpoint.
    #[arg(long, env = "BACKPLANE_AUDIT_SIGNING_KEY")]
    pub audit_signing_key: std::path::PathBuf,

    /// Where the prune's checkpoint is appended (as the servers' are).
    #[arg(long, env = "BACKPLANE_AUDIT_CHECKPOINT_DIR")]
    pub audit_checkpoint_dir: std::path::PathBuf,

    /// The name the checkpoint is written under.
    #[arg(long, env = "BACKPLANE_INSTANCE", default_value = "prune")]
    pub instance: String,
}

/// An RFC 3339 instant, or a day (midnight UTC).
fn parse_instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(instant) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| format!("{text:?} is neither an RFC 3339 instant nor a day (2026-01-01)"))
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// A directory of checkpoint files (`*.ndjson`, as instances write them
    /// to BACKPLANE_AUDIT_CHECKPOINT_DIR, or a SIEM's copy of them).
    #[arg(long, requires = "public_key")]
    pub checkpoints: Option<std::path::PathBuf>,

    /// The public key the checkpoints are signed with (PREFIX.pub).
    #[arg(long, requires = "checkpoints")]
    pub public_key: Option<std::path::PathBuf>,

    /// Verify a copy (`backplane audit export`'s NDJSON, or a SIEM's) instead
    /// of the database: it must be one unbroken stretch of the chain, and
    /// hold against every checkpoint of a row it holds.
    #[arg(long)]
    pub from_file: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// The first instant (RFC 3339) or day whose events are written.
    #[arg(long, value_parser = parse_instant)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,

    /// The instant or day before which the events end.
    #[arg(long, value_parser = parse_instant)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,

    /// Where to write them; standard output when absent.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the key pair; neither file may exist.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Print what a caller with these roles sees instead of the whole schema
    /// (repeat or comma-separate: `--role support` or `--role finance,ops`).
    #[arg(long, value_delimiter = ',')]
    pub role: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DatabaseArgs {
    /// `sqlite://FILE` or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(
        long,
        env = "BACKPLANE_DATABASE_URL",
        default_value = "sqlite://backplane.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Most pooled database connections. On SQLite at most one per core plus
    /// two, and never more than 8: SQLite works on its connections' own
    /// threads, and more of them only take turns on the same cores.
    #[arg(long, env = "BACKPLANE_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
}

impl DatabaseArgs {
    fn options(&self) -> StoreOptions {
        let mut options = StoreOptions::new(self.database_url.clone());
        options.max_connections = self.database_max_connections.max(1);
        options
    }
}

#[derive(Args, Debug)]
pub struct OidcArgs {
    /// The OIDC issuer URL (discovery at `/.well-known/openid-configuration`).
    #[arg(long, env = "BACKPLANE_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The `aud` every bearer token must carry.
    #[arg(long, env = "BACKPLANE_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,

    /// Accepted signing algorithms, comma-separated; asymmetric ones only.
    #[arg(
        long,
        env = "BACKPLANE_OIDC_ALGORITHMS",
        default_value = "RS256,PS256,ES256,EdDSA"
    )]
    pub oidc_algorithms: String,

    /// The token claim that carries roles; a dotted path reaches into objects
    /// (`realm_access.roles`).
    #[arg(long, env = "BACKPLANE_ROLES_CLAIM", default_value = "roles")]
    pub roles_claim: String,

    /// Identity-provider groups mapped to roles: `eng-oncall=ops,cs-team=support`.
    /// When set, it is the only source of roles: a group named like a role
    /// grants nothing unless it is mapped.
    #[arg(long, env = "BACKPLANE_ROLE_MAP", default_value = "")]
    pub role_map: String,

    /// Clients whose tokens are service identities, comma-separated: `CLIENT`
    /// when its client-credentials tokens carry the client id as `sub`
    /// (oidc-provider), `CLIENT=SUBJECT` when they carry another subject
    /// (Keycloak's service-account user id, Auth0's `CLIENT@clients`). Only a
    /// token whose `client_id` (or `azp`) is listed, with that `sub` and no
    /// `email`, gets rights from its `backplane:<permission>` scopes, and
    /// never the audit log; scopes on other tokens are ignored.
    #[arg(long, env = "BACKPLANE_SERVICE_CLIENTS", default_value = "")]
    pub service_clients: String,

    /// Rights a person may use only after a recent strong sign-in,
    /// comma-separated permission names (`viewer.permissions` lists them);
    /// empty turns step-up off. Service identities are exempt. Without it an
    /// operation that uses one is refused with 401 and RFC 9470's
    /// `insufficient_user_authentication` challenge.
    #[arg(
        long,
        env = "BACKPLANE_STEP_UP_PERMISSIONS",
        default_value = "read:cost_data,bulk:organizations,read:audit_log"
    )]
    pub step_up_permissions: String,

    /// Authentication methods (the token's `amr`, RFC 8176) any one of which
    /// makes a sign-in strong, comma-separated.
    #[arg(
        long,
        env = "BACKPLANE_STEP_UP_AMR",
        default_value = "mfa,mca,otp,hwk,swk,sc,fpt,face,iris,retina,vbm"
    )]
    pub step_up_amr: String,

    /// Authentication context classes (the token's `acr`) any one of which
    /// makes a sign-in strong, comma-separated (Okta:
    /// `urn:okta:loa:2fa:any`; Keycloak: the level you bound to a second
    /// factor). Sent as `acr_values` in the challenge and the playground's
    /// step-up sign-in.
    #[arg(long, env = "BACKPLANE_STEP_UP_ACR", default_value = "")]
    pub step_up_acr: String,

    /// How recent a strong sign-in (the token's `auth_time`) must be:
    /// seconds, or with a unit (`90m`, `12h`, `1d`).
    #[arg(long, env = "BACKPLANE_STEP_UP_MAX_AGE", default_value = "12h")]
    pub step_up_max_age: String,
}

impl OidcArgs {
    /// The step-up settings these arguments name.
    fn step_up(&self) -> anyhow::Result<crate::identity::step_up::StepUpSettings> {
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut permissions = std::collections::BTreeSet::new();
        for name in list(&self.step_up_permissions) {
            let Some(p) = crate::policy::Permission::from_name(&name) else {
                bail!(
                    "BACKPLANE_STEP_UP_PERMISSIONS: {name:?} is not a permission (one of {})",
                    crate::policy::Permission::ALL
                        .map(|p| p.as_str())
                        .join(", ")
                );
            };
            permissions.insert(p);
        }
        Ok(crate::identity::step_up::StepUpSettings {
            permissions,
            amr: list(&self.step_up_amr),
            acr: list(&self.step_up_acr),
            max_age: crate::identity::step_up::parse_max_age(&self.step_up_max_age)
                .map_err(|e| anyhow::anyhow!("BACKPLANE_STEP_UP_MAX_AGE: {e}"))?,
        })
    }
}

impl OidcArgs {
    fn settings(&self) -> anyhow::Result<Option<OidcSettings>> {
        let Some(issuer) = self.oidc_issuer.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let audience = self.oidc_audience.clone().unwrap_or_default();
        let mut settings = OidcSettings::new(issuer.trim(), audience);
        settings.algorithms = self
            .oidc_algorithms
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                parse_algorithm(s).with_context(|| {
                    format!(
                        "BACKPLANE_OIDC_ALGORITHMS: {s:?} is not an allowed asymmetric algorithm"
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        settings.roles_claim = self.roles_claim.clone();
        settings.role_map = parse_role_map(&self.role_map)?;
        Ok(Some(settings))
    }
}

fn parse_role_map(text: &str) -> anyhow::Result<HashMap<String, Role>> {
    let mut map = HashMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((group, role)) = pair.split_once('=') else {
            bail!("BACKPLANE_ROLE_MAP: {pair:?} is not GROUP=ROLE");
        };
        let role: Role = role.parse().map_err(|_| {
            anyhow::anyhow!(
                "BACKPLANE_ROLE_MAP: {role:?} is not a role (support, billing, finance, ops, admin, auditor)"
            )
        })?;
        map.insert(group.trim().to_owned(), role);
    }
    Ok(map)
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Request time limit in seconds.
    #[arg(long, env = "BACKPLANE_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Largest request body in bytes.
    #[arg(long, env = "BACKPLANE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// CIDRs allowed to connect, comma-separated; others get 403 before anything
    /// is parsed. Default: loopback and the private ranges.
    #[arg(
        long,
        env = "BACKPLANE_ALLOWED_NETWORKS",
        value_delimiter = ',',
        default_value = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
    )]
    pub allowed_networks: Vec<ipnet::IpNet>,

    /// Most operations one batch request (a JSON array of operations) may carry.
    #[arg(long, env = "BACKPLANE_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

    /// Most rows one export of a person may hold (`POST /export`).
    #[arg(long, env = "BACKPLANE_EXPORT_MAX_ROWS", default_value_t = 1_000_000)]
    pub export_max_rows: u64,

    /// Most rows one export of a service identity may hold.
    #[arg(
        long,
        env = "BACKPLANE_SERVICE_EXPORT_MAX_ROWS",
        default_value_t = 10_000_000
    )]
    pub service_export_max_rows: u64,

    /// Exports one caller may run at once.
    #[arg(long, env = "BACKPLANE_EXPORTS_PER_CALLER", default_value_t = 2)]
    pub exports_per_caller: usize,

    /// Exports running at once in all.
    #[arg(long, env = "BACKPLANE_EXPORTS_AT_ONCE", default_value_t = 8)]
    pub exports_at_once: usize,

    /// Most ids one bulk mutation may carry.
    #[arg(long, env = "BACKPLANE_BULK_MAX_ITEMS", default_value_t = 10_000)]
    pub bulk_max_items: usize,

    /// How long idempotency keys of bulk mutations are kept, in hours.
    #[arg(long, env = "BACKPLANE_IDEMPOTENCY_TTL_HOURS", default_value_t = 24)]
    pub idempotency_ttl_hours: u64,

    /// Read events that may wait for the audit writer before requests are
    /// refused (the writer fails closed).
    #[arg(long, env = "BACKPLANE_AUDIT_QUEUE", default_value_t = 1024)]
    pub audit_queue: usize,

    /// Seconds over which requests refused before the GraphQL gate (a bad
    /// token, a foreign network, …) from one address for one reason are
    /// folded into one audit event with their count; the first of them is
    /// recorded at once.
    #[arg(long, env = "BACKPLANE_AUDIT_FOLD_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_fold_secs: u64,

    /// The Ed25519 key (PKCS#8 PEM file, `backplane audit keygen`) that signs
    /// checkpoints of the audit chain; none are written without it. Keep it
    /// off the database's host: whoever holds it can forge checkpoints.
    #[arg(long, env = "BACKPLANE_AUDIT_SIGNING_KEY")]
    pub audit_signing_key: Option<std::path::PathBuf>,

    /// The append-only directory this instance adds its checkpoints to
    /// (`INSTANCE.ndjson`); they go to the log stream in any case.
    #[arg(long, env = "BACKPLANE_AUDIT_CHECKPOINT_DIR")]
    pub audit_checkpoint_dir: Option<std::path::PathBuf>,

    /// A checkpoint after this many audit events written by this instance …
    #[arg(long, env = "BACKPLANE_AUDIT_CHECKPOINT_EVERY", default_value_t = 1000)]
    pub audit_checkpoint_every: u64,

    /// … or this many seconds after the last one (when the chain grew), and
    /// at shutdown.
    #[arg(long, env = "BACKPLANE_AUDIT_CHECKPOINT_SECS", default_value_t = 60)]
    pub audit_checkpoint_secs: u64,

    /// This instance's name in its checkpoints (letters, digits, `-`, `_`,
    /// `.`); the host's name and the process id by default.
    #[arg(long, env = "BACKPLANE_INSTANCE")]
    pub instance: Option<String>,

    /// CIDRs of proxies whose `X-Forwarded-For` is believed; none by default.
    /// Their requests without a readable `X-Forwarded-For` get 403;
    /// `Forwarded` is ignored.
    #[arg(long, env = "BACKPLANE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Seconds a connection may take to send a request's headers (and to
    /// finish its TLS handshake); also how long an idle kept-alive connection
    /// stays open. Slower clients are disconnected.
    #[arg(long, env = "BACKPLANE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Most requests served at once; past it, 503 with `Retry-After: 1` at
    /// once (never a queue). `/healthz` and `/readyz` are not counted.
    #[arg(long, env = "BACKPLANE_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,

    /// Most cost (as `--max-complexity` counts it) executing at once; further
    /// operations wait their turn, in order, within the request time limit.
    /// Memory grows with the answers being built, so this bounds it: about 6
    /// deep pages of 100 parents at once with the default.
    #[arg(long, env = "BACKPLANE_MAX_COST_IN_FLIGHT", default_value_t = 32_000)]
    pub max_cost_in_flight: u64,

    /// The share (percent) of `--max-cost-in-flight` one caller may hold
    /// while another caller waits; one operation never reserves more than
    /// this share. A caller alone may use the whole budget.
    #[arg(long, env = "BACKPLANE_MAX_COST_SHARE_PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub max_cost_share_percent: u8,

    /// Cost (as `--max-complexity` counts it) one person may spend per
    /// minute, as a token bucket: a full minute's worth may be spent at once,
    /// and it refills evenly. Past it, 429 with `Retry-After`, `RateLimit`
    /// and `RateLimit-Policy`. Unset or 0: no per-minute budget. Per instance.
    #[arg(long, env = "BACKPLANE_PERSON_COST_PER_MINUTE", value_parser = cost_per_minute)]
    pub person_cost_per_minute: Option<u32>,

    /// The same for each service identity (script).
    #[arg(long, env = "BACKPLANE_SERVICE_COST_PER_MINUTE", value_parser = cost_per_minute)]
    pub service_cost_per_minute: Option<u32>,

    /// Answer a read over the customer entities with one SQL
    /// statement that builds the JSON answer (one round trip per request, not
    /// one per level). Documents it does not cover, and each document's first
    /// run, go to the GraphQL executor. `false` sends everything to the
    /// executor.
    #[arg(
        long,
        env = "BACKPLANE_COMPILE_READS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub compile_reads: bool,

    /// How many documents' compiled statements to keep, the least recently
    /// used dropped first: a document asked again (by the same permissions)
    /// binds its variables into the statement kept instead of compiling it.
    /// Each document keeps up to 4 statements (one per page size, filter or
    /// order it is asked with), a few KiB each. Cleared at restart.
    #[arg(
        long,
        env = "BACKPLANE_PREPARED_DOCUMENTS",
        default_value_t = crate::graphql::compiled::DEFAULT_PREPARED_DOCUMENTS,
        value_name = "N"
    )]
    pub prepared_documents: usize,

    /// Seals pagination cursors (at least 32 characters, the same on every
    /// instance; changing it invalidates cursors in flight). Unset: derived
    /// from the session key, else random per process. Never logged.
    #[arg(long, env = "BACKPLANE_CURSOR_KEY", hide_env_values = true)]
    pub cursor_key: Option<String>,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub browser: BrowserArgs,
}

/// TLS termination. Without these, plain HTTP (behind a proxy that
/// terminates TLS, or on loopback).
#[derive(Args, Debug)]
pub struct TlsArgs {
    /// PEM file with the server's certificate chain, leaf first; needs
    /// `--tls-key`. Turns TLS on, and session cookies become `Secure`.
    #[arg(long, env = "BACKPLANE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1);
    /// needs `--tls-cert`. Its contents are never logged.
    #[arg(long, env = "BACKPLANE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM bundle of the CAs client certificates must chain to (mutual TLS):
    /// a connection without such a certificate fails its handshake. Who the
    /// caller is still comes from the bearer token or session.
    #[arg(long, env = "BACKPLANE_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Browser sign-in (the playground) through the identity provider.
#[derive(Args, Debug)]
pub struct BrowserArgs {
    /// Where people reach this server, e.g. `https://backplane.example.com`:
    /// the sign-in redirect URI is `<this>/auth/callback`, and cookie requests
    /// must come from this origin.
    #[arg(long, env = "BACKPLANE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The client id registered at the identity provider for browser sign-in;
    /// without it, the playground takes bearer tokens only (and `dev` offers
    /// its demo sign-in).
    #[arg(long, env = "BACKPLANE_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// The client's secret (confidential client). Never logged.
    #[arg(long, env = "BACKPLANE_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// Seals session cookies (at least 32 characters, the same on every
    /// instance). Sessions are also bound to the issuer, the public URL and
    /// the mode: changing one of them signs everyone out. Never logged.
    #[arg(long, env = "BACKPLANE_SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,
    /// How long a browser session lasts, in minutes.
    #[arg(long, env = "BACKPLANE_SESSION_TTL_MINUTES", default_value_t = 480)]
    pub session_ttl_minutes: u64,
}

/// Query limits. Every refusal is a GraphQL error with code LIMIT_EXCEEDED,
/// before anything runs. People (staff, the dev identity) and service
/// identities (client-credentials tokens) have budgets of their own.
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Longest document, in bytes.
    #[arg(long, env = "BACKPLANE_MAX_DOCUMENT_BYTES", default_value_t = 64 * 1024)]
    pub max_document_bytes: usize,
    /// Deepest nesting of selections.
    #[arg(long, env = "BACKPLANE_MAX_DEPTH", default_value_t = 24)]
    pub max_depth: usize,
    /// Most field selections once fragments are expanded.
    #[arg(long, env = "BACKPLANE_MAX_FIELDS", default_value_t = 5_000)]
    pub max_fields: u64,
    /// Highest cost of one operation: every field counts 1, times the `first`
    /// of each connection above it.
    #[arg(long, env = "BACKPLANE_MAX_COMPLEXITY", default_value_t = 50_000)]
    pub max_complexity: u64,
    /// Most aliases in one document (`__typename` included).
    #[arg(long, env = "BACKPLANE_MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,
    /// Most root fields in one operation.
    #[arg(long, env = "BACKPLANE_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,
    /// Most directives on one field, fragment or operation.
    #[arg(long, env = "BACKPLANE_MAX_DIRECTIVES", default_value_t = 4)]
    pub max_directives: usize,
    /// Largest `first` of any connection.
    #[arg(long, env = "BACKPLANE_MAX_PAGE_SIZE", default_value_t = 100)]
    pub max_page_size: i32,
    /// Largest `first` for service identities.
    #[arg(long, env = "BACKPLANE_SERVICE_MAX_PAGE_SIZE", default_value_t = 1_000)]
    pub service_max_page_size: i32,
    /// Highest cost of one operation for service identities.
    #[arg(
        long,
        env = "BACKPLANE_SERVICE_MAX_COMPLEXITY",
        default_value_t = 500_000
    )]
    pub service_max_complexity: u64,
    /// Most field selections for service identities.
    #[arg(long, env = "BACKPLANE_SERVICE_MAX_FIELDS", default_value_t = 20_000)]
    pub service_max_fields: u64,
    /// Most aliases for service identities.
    #[arg(long, env = "BACKPLANE_SERVICE_MAX_ALIASES", default_value_t = 100)]
    pub service_max_aliases: usize,
}

impl LimitArgs {
    fn limits(&self) -> crate::graphql::limits::Limits {
        use crate::graphql::limits::DocumentLimits;
        let people = DocumentLimits {
            max_document_bytes: self.max_document_bytes,
            max_expanded_fields: self.max_fields,
            max_complexity: self.max_complexity,
            max_aliases: self.max_aliases,
            max_root_fields: self.max_root_fields,
            max_directives: self.max_directives,
            max_depth: self.max_depth,
            max_page_size: self.max_page_size.max(1),
        };
        let services = DocumentLimits {
            max_document_bytes: self
                .max_document_bytes
                .max(DocumentLimits::services().max_document_bytes),
            max_expanded_fields: self.service_max_fields,
            max_complexity: self.service_max_complexity,
            max_aliases: self.service_max_aliases,
            max_root_fields: self
                .max_root_fields
                .max(DocumentLimits::services().max_root_fields),
            max_page_size: self.service_max_page_size.max(1),
            ..people
        };
        crate::graphql::limits::Limits { people, services }
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BACKPLANE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub oidc: OidcArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Address to listen on; loopback only.
    #[arg(long, env = "BACKPLANE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub oidc: OidcArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Organizations to seed into an empty database on first start.
    #[arg(long, env = "BACKPLANE_DEV_SEED_ORGS", default_value_t = 200)]
    pub seed_orgs: u64,
}

#[derive(Args, Debug)]
pub struct SeedArgs {
    /// Number of organizations (with their users, invoices and tickets).
    #[arg(long, env = "BACKPLANE_SEED_ORGS", default_value_t = 200)]
    pub orgs: u64,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

impl ServeArgs {
    /// The configuration `backplane serve` runs with.
    fn config(&self) -> anyhow::Result<Config> {
        server_config(
            Mode::Serve,
            self.listen,
            &self.database,
            &self.oidc,
            &self.server,
        )
    }
}

/// A budget per minute: cost units, or empty (or 0) for none.
fn cost_per_minute(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a number of cost units (0 or empty: no budget)"))
}

fn server_config(
    mode: Mode,
    listen: SocketAddr,
    database: &DatabaseArgs,
    oidc: &OidcArgs,
    server: &ServerArgs,
) -> anyhow::Result<Config> {
    let mut config = Config::new(mode, listen, database.options());
    config.oidc = oidc.settings()?;
    config.step_up = oidc.step_up()?;
    config.fair_use = crate::graphql::budget::FairUse {
        person_per_minute: server.person_cost_per_minute.filter(|n| *n > 0),
        service_per_minute: server.service_cost_per_minute.filter(|n| *n > 0),
    };
    config.service_clients = oidc
        .service_clients
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    config.request_timeout = Duration::from_secs(server.request_timeout_secs.max(1));
    config.max_body_bytes = server.max_body_bytes;
    config.network.allowed = server.allowed_networks.clone();
    config.network.trusted_proxies = server.trusted_proxies.clone();
    config.bulk.max_items = server.bulk_max_items.max(1);
    config.bulk.idempotency_ttl = Duration::from_secs(server.idempotency_ttl_hours.max(1) * 3600);
    config.audit_queue = server.audit_queue.max(1);
    config.audit_fold = std::time::Duration::from_secs(server.audit_fold_secs);
    config.audit_checkpoints = match (&server.audit_signing_key, &server.audit_checkpoint_dir) {
        (None, Some(_)) => bail!(
            "BACKPLANE_AUDIT_CHECKPOINT_DIR is set but BACKPLANE_AUDIT_SIGNING_KEY is not: checkpoints need the key that signs them"
        ),
        (None, None) => None,
        (Some(key), dir) => Some(crate::audit::checkpoint::Settings {
            key_file: key.clone(),
            dir: dir.clone(),
            instance: server.instance.clone().unwrap_or_else(default_instance),
            every_events: server.audit_checkpoint_every.max(1),
            every: Duration::from_secs(server.audit_checkpoint_secs.max(1)),
        }),
    };
    config.max_batch = server.max_batch.max(1);
    config.export = crate::export::Settings {
        max_rows_people: server.export_max_rows,
        max_rows_services: server.service_export_max_rows,
        per_principal: server.exports_per_caller.max(1),
        in_all: server.exports_at_once.max(1),
        ..Default::default()
    };
    config.limits = server.limits.limits();
    config.header_read_timeout = Duration::from_secs(server.header_read_timeout_secs.max(1));
    config.max_concurrent_requests = server.max_concurrent_requests.max(1);
    config.max_cost_in_flight = server.max_cost_in_flight.max(1);
    config.max_cost_share_percent = server.max_cost_share_percent;
    config.compile_reads = server.compile_reads;
    config.prepared_documents = server.prepared_documents;
    // An empty variable counts as unset; half a pair is refused by
    // `Config::validate`, with a message that names the missing one.
    let path = |p: &Option<PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
    config.tls = crate::http::tls::TlsSettings {
        cert: path(&server.tls.tls_cert),
        key: path(&server.tls.tls_key),
        client_ca: path(&server.tls.tls_client_ca),
    };
    let browser = &server.browser;
    config.public_url = browser
        .public_url
        .as_deref()
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty());
    config.session_key = browser
        .session_key
        .clone()
        .filter(|k| !k.is_empty())
        .map(SecretString::from);
    config.session_ttl = Duration::from_secs(browser.session_ttl_minutes.max(1) * 60);
    config.cursor_key = server
        .cursor_key
        .clone()
        .filter(|k| !k.is_empty())
        .map(SecretString::from);
    if let Some(client_id) = browser.oidc_client_id.as_deref().filter(|c| !c.is_empty()) {
        config.browser = Some(crate::identity::browser::BrowserClientSettings {
            client_id: client_id.to_owned(),
            client_secret: browser
                .oidc_client_secret
                .clone()
                .filter(|s| !s.is_empty())
                .map(SecretString::from),
            redirect_uri: format!(
                "{}/auth/callback",
                config.public_url.as_deref().unwrap_or_default()
            ),
        });
    }
    Ok(config)
}

async fn open(database: &DatabaseArgs) -> anyhow::Result<Store> {
    Store::connect(&database.options()).await.context(
        "cannot open the database (check BACKPLANE_DATABASE_URL and that the server is up)",
    )
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Schema(args) if args.role.is_empty() => {
            print!(
                "{}",
                crate::graphql::sdl(&crate::graphql::build_schema(
                    None,
                    Default::default(),
                    Default::default()
                ))
            );
            Ok(())
        }
        Command::Schema(args) => {
            let roles = args
                .role
                .iter()
                .map(|r| {
                    r.parse::<Role>().map_err(|_| {
                        anyhow::anyhow!(
                            "--role: {r:?} is not a role (support, billing, finance, ops, admin, auditor)"
                        )
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            print!("{}", crate::graphql::role_sdl::sdl_for_roles(roles).await?);
            Ok(())
        }
        Command::Audit(AuditCommand::Verify(args)) => verify_audit(args).await,
        Command::Audit(AuditCommand::Export(args)) => {
            use std::io::Write;
            let store = open(&args.database).await?;
            let mut out: Box<dyn Write> = match &args.out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| path.display().to_string())?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let rows = crate::store::audit::export(&store, args.since, args.until, |row| {
                let line = serde_json::to_string(&row).map_err(|e| e.to_string())?;
                writeln!(out, "{line}").map_err(|e| e.to_string())
            })
            .await
            .map_err(anyhow::Error::msg)?;
            out.flush()?;
            eprintln!("{rows} events written");
            Ok(())
        }
        Command::Audit(AuditCommand::Prune(args)) => {
            let store = open(&args.database).await?;
            store.migrate().await.context("migrations failed")?;
            let checkpointer = crate::audit::checkpoint::Checkpointer::new(
                store.clone(),
                &crate::audit::checkpoint::Settings {
                    key_file: args.audit_signing_key.clone(),
                    dir: Some(args.audit_checkpoint_dir.clone()),
                    instance: args.instance.clone(),
                    every_events: 1,
                    every: Duration::from_secs(60),
                },
            )
            .map_err(anyhow::Error::msg)?;
            let pruned = crate::store::audit::prune(&store, args.before, |sequence, hash| {
                checkpointer.pruned(sequence, hash).map(|_| ())
            })
            .await
            .context("pruning the audit log failed")?;
            match pruned {
                None => println!(
                    "nothing to prune: no event before {} but the newest",
                    args.before
                ),
                Some(p) => println!(
                    "pruned {} events, up to row {}; the signed checkpoint of the prune is in {}",
                    p.rows,
                    p.through_id,
                    args.audit_checkpoint_dir.display()
                ),
            }
            Ok(())
        }
        Command::Audit(AuditCommand::Keygen(args)) => {
            let (private, public) =
                crate::audit::checkpoint::keygen(&args.out).map_err(anyhow::Error::msg)?;
            println!(
                "wrote {} (the signing key: give it to the servers as BACKPLANE_AUDIT_SIGNING_KEY, keep it from the database's administrators) and {} (the public key, for `backplane audit verify --public-key`)",
                private.display(),
                public.display()
            );
            Ok(())
        }
        Command::Migrate(database) => {
            let store = open(&database).await?;
            store.migrate().await.context("migrations failed")?;
            tracing::info!(backend = store.backend_name(), "migrations applied");
            Ok(())
        }
        Command::Seed(args) => {
            let store = open(&args.database).await?;
            store.migrate().await.context("migrations failed")?;
            let started = std::time::Instant::now();
            let report = seed::seed(&store, args.orgs)
                .await
                .context("seeding failed")?;
            println!(
                "seeded {} organizations, {} users, {} invoices ({} lines), {} tickets ({} messages) in {:.1}s",
                report.organizations,
                report.users,
                report.invoices,
                report.invoice_lines,
                report.tickets,
                report.messages,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Serve(args) => serve(args.config()?).await,
        Command::Dev(args) => {
            let mut config = server_config(
                Mode::Dev,
                args.listen,
                &args.database,
                &args.oidc,
                &args.server,
            )?;
            config.dev_seed_orgs = args.seed_orgs;
            serve(config).await
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// The host's name and this process's id: an instance's name by default.
fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "backplane".into());
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{host}-{}", std::process::id())
}

/// `backplane audit verify`: the chain, and the checkpoints when given.
async fn verify_audit(args: VerifyArgs) -> anyhow::Result<()> {
    use crate::audit::checkpoint;
    let mut checkpoints = Vec::new();
    let mut problems = Vec::new();
    if let (Some(dir), Some(public_key)) = (&args.checkpoints, &args.public_key) {
        let key = checkpoint::public_key(public_key).map_err(anyhow::Error::msg)?;
        for found in checkpoint::read_dir(dir).map_err(anyhow::Error::msg)? {
            let place = format!("{} line {}", found.file.display(), found.line);
            match found.checkpoint {
                Err(err) => problems.push(format!("{place}: not a checkpoint ({err})")),
                Ok(c) if !c.verify(&key) => problems.push(format!(
                    "{place}: the checkpoint of {} at row {} is not signed by this key (forged or changed)",
                    c.instance, c.sequence
                )),
                Ok(c) => checkpoints.push((place, c)),
            }
        }
        if checkpoints.is_empty() && problems.is_empty() {
            bail!("{}: no checkpoint found", dir.display());
        }
    }
    let report = match &args.from_file {
        Some(path) => {
            let file = std::fs::File::open(path).with_context(|| path.display().to_string())?;
            crate::store::audit::verify_copy(std::io::BufReader::new(file), &checkpoints)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => {
            let store = open(&args.database).await?;
            crate::store::audit::verify_against(&store, &checkpoints)
                .await
                .context("reading the audit log failed")?
        }
    };
    problems.extend(report.problems);
    if problems.is_empty() {
        println!(
            "audit log intact: {} rows, hash chain unbroken{}",
            report.rows,
            if checkpoints.is_empty() {
                String::new()
            } else {
                format!(", {} checkpoints hold", checkpoints.len())
            }
        );
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    bail!("audit log not intact: {} problems found", problems.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn service_clients_come_from_a_comma_separated_list() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from([
            "backplane",
            "serve",
            "--oidc-issuer",
            "https://id.example",
            "--oidc-audience",
            "backplane",
            "--service-clients",
            " ops-scripts, ,etl=5b0c2a1e ",
        ])?;
        let Command::Serve(args) = cli.command else {
            anyhow::bail!("not serve");
        };
        let config = args.config()?;
        assert_eq!(config.service_clients, ["ops-scripts", "etl=5b0c2a1e"]);
        Ok(())
    }

    fn serve_config(extra: &[&str]) -> anyhow::Result<Config> {
        let mut argv = vec![
            "backplane",
            "serve",
            "--oidc-issuer",
            "https://id.example",
            "--oidc-audience",
            "backplane",
        ];
        argv.extend_from_slice(extra);
        let Command::Serve(args) = Cli::try_parse_from(argv)?.command else {
            anyhow::bail!("not serve");
        };
        args.config()
    }

    #[test]
    fn step_up_and_budgets_parse_and_refuse_what_they_cannot_mean() -> anyhow::Result<()> {
        let config = serve_config(&[])?;
        assert_eq!(
            config.step_up,
            crate::identity::step_up::StepUpSettings::default()
        );
        assert_eq!(config.fair_use, Default::default());
        let config = serve_config(&[
            "--step-up-permissions",
            "read:cost_data, read:audit_log",
            "--step-up-acr",
            "gold",
            "--step-up-max-age",
            "90m",
            "--service-cost-per-minute",
            "6000",
            "--person-cost-per-minute",
            "",
        ])?;
        assert_eq!(config.step_up.permissions.len(), 2);
        assert_eq!(config.step_up.acr, ["gold"]);
        assert_eq!(config.step_up.max_age, Duration::from_secs(5400));
        assert_eq!(config.fair_use.service_per_minute, Some(6000));
        assert_eq!(config.fair_use.person_per_minute, None);
        let err = serve_config(&["--step-up-permissions", "read:everything"])
            .expect_err("an unknown permission");
        assert!(err.to_string().contains("\"read:everything\""), "{err}");
        assert!(serve_config(&["--step-up-max-age", "soon"]).is_err());
        assert!(serve_config(&["--service-cost-per-minute", "lots"]).is_err());
        Ok(())
    }

    #[test]
    fn role_maps_parse_and_refuse_unknown_roles() {
        let map = parse_role_map("eng-oncall=ops, cs-team=support").unwrap_or_default();
        assert_eq!(map.get("eng-oncall"), Some(&Role::Ops));
        assert_eq!(map.get("cs-team"), Some(&Role::Support));
        assert!(parse_role_map("x=root").is_err());
        assert!(parse_role_map("nonsense").is_err());
    }
}
