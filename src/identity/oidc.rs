//! Bearer-token verification against the configured OIDC issuer.
//!
//! `openidconnect` does discovery (and checks the issuer it returns); it verifies
//! ID tokens but not access tokens and never refreshes its key set, so the
//! verification itself is ours, on `jsonwebtoken`: an allowlist of asymmetric
//! algorithms, issuer, audience, `exp`/`nbf` with a small leeway, and the key found
//! by `kid` in the issuer's JWKS, refetched (rate-limited) when a token names a key
//! we have not seen, so that keys rotate without a restart.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openidconnect::core::CoreProviderMetadata;
use openidconnect::{IssuerUrl, reqwest};
use serde_json::{Map, Value};

use super::{IdentityError, Principal, PrincipalKind};
use crate::policy::{Permission, Role};

/// Verifies a bearer token and says who it belongs to. A trait so that the HTTP
/// layer does not care where keys come from.
pub trait TokenVerifier: Send + Sync + 'static {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, IdentityError>> + Send + 'a>>;

    /// Whether the issuer's keys are loaded (readiness).
    fn is_ready(&self) -> bool;

    /// The subject of `token`, refused with `error`, when its signature was
    /// verified before the refusal (an expired token, another audience):
    /// what the audit log may name. `None` when nothing vouches for it.
    fn signed_subject(&self, token: &str, error: &IdentityError) -> Option<String> {
        let _ = (token, error);
        None
    }
}

/// How to trust an issuer.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// The issuer URL; discovery is at `/.well-known/openid-configuration` below it.
    pub issuer: String,
    /// The `aud` every bearer token must carry.
    pub audience: String,
    /// The algorithms accepted; never a symmetric one.
    pub algorithms: Vec<Algorithm>,
    /// The claim that carries roles (a dotted path reaches into objects, as
    /// Keycloak's `realm_access.roles`).
    pub roles_claim: String,
    /// Identity-provider group names mapped to roles. When it is not empty it
    /// is the only source of roles: a group named like a role (`admin`)
    /// grants nothing unless it is mapped.
    pub role_map: HashMap<String, Role>,
    /// The clients whose tokens are service identities, the only tokens whose
    /// `backplane:<permission>` scopes count (see [`ServiceClients`]).
    /// `Application::build` fills it from `Config::service_clients`.
    pub service_clients: ServiceClients,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// The shortest time between two key-set fetches caused by unknown key ids.
    pub min_refresh_interval: Duration,
    /// Key sets are refetched this often even when no unknown key was seen.
    pub refresh_interval: Duration,
}

impl OidcSettings {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: vec![
                Algorithm::RS256,
                Algorithm::PS256,
                Algorithm::ES256,
                Algorithm::EdDSA,
            ],
            roles_claim: "roles".into(),
            role_map: HashMap::new(),
            service_clients: ServiceClients::default(),
            leeway: Duration::from_secs(30),
            min_refresh_interval: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(600),
        }
    }
}

/// The clients of `BACKPLANE_SERVICE_CLIENTS`, each with the subject its
/// client-credentials tokens carry.
///
/// A token is a service identity only when its client (`client_id`, or `azp`
/// when there is no `client_id`) is listed here **and** it names no person: it
/// has no `email` claim and its `sub` is the client's own subject. That
/// subject is the client id itself unless the entry says otherwise
/// (`CLIENT=SUBJECT`): oidc-provider puts the client id in `sub`;
/// Keycloak puts the id of the client's service-account user there, Auth0
/// `CLIENT@clients`, Entra ID the service principal's object id. A person
/// who signs in through a listed client keeps their own `sub`, so their token
/// is never taken for the client's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceClients {
    /// Client id → the `sub` of its tokens.
    subjects: HashMap<String, String>,
}

impl ServiceClients {
    /// Reads entries of the form `CLIENT` or `CLIENT=SUBJECT` (surrounding
    /// blanks ignored, empty entries skipped). The error names the entry
    /// that is neither, or a client listed twice.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut subjects = HashMap::new();
        for entry in entries.iter().map(|e| e.as_ref().trim()) {
            if entry.is_empty() {
                continue;
            }
            let (client, subject) = match entry.split_once('=') {
                Some((client, subject)) => (client.trim(), subject.trim()),
                None => (entry, entry),
            };
            if client.is_empty() || subject.is_empty() || client.contains(char::is_whitespace) {
                return Err(entry.to_owned());
            }
            if subjects
                .insert(client.to_owned(), subject.to_owned())
                .is_some()
            {
                return Err(entry.to_owned());
            }
        }
        Ok(Self { subjects })
    }

    /// The subject tokens of `client` carry, if it is a service client.
    pub fn subject_of(&self, client: &str) -> Option<&str> {
        self.subjects.get(client).map(String::as_str)
    }

    /// Whether no client is listed.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }
}

/// The only algorithms that may ever be configured: asymmetric ones.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    match name.trim().to_ascii_uppercase().as_str() {
        "RS256" => Some(Algorithm::RS256),
        "RS384" => Some(Algorithm::RS384),
        "RS512" => Some(Algorithm::RS512),
        "PS256" => Some(Algorithm::PS256),
        "PS384" => Some(Algorithm::PS384),
        "PS512" => Some(Algorithm::PS512),
        "ES256" => Some(Algorithm::ES256),
        "ES384" => Some(Algorithm::ES384),
        "EDDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

struct Keys {
    jwks_uri: String,
    set: JwkSet,
    fetched_at: Instant,
}

/// Verifies tokens of one OIDC issuer.
pub struct OidcVerifier {
    settings: OidcSettings,
    http: reqwest::Client,
    keys: RwLock<Option<Keys>>,
    /// When a fetch was last attempted: unknown key ids and failures refetch at most
    /// once per `min_refresh_interval`, so a flood of made-up kids cannot hammer
    /// the issuer.
    last_attempt: Mutex<Option<Instant>>,
    /// Unknown groups already logged, so each is logged once.
    logged_groups: Mutex<HashSet<String>>,
    /// Which notices about ignored scopes were logged (each once).
    logged_notices: Mutex<HashSet<&'static str>>,
    /// One fetch at a time: requests that need keys wait for the fetch under way
    /// instead of starting their own (or failing while it runs).
    fetching: tokio::sync::Mutex<()>,
    /// What discovery found, kept for browser sign-in.
    metadata: RwLock<Option<CoreProviderMetadata>>,
    /// Tokens verified lately, by the SHA-256 of the token: the principal and
    /// the token's `exp`. A script sends the same token with every request;
    /// checking an RSA signature each time was most of a small query's cost.
    /// Emptied whenever the key set is fetched again, so a withdrawn key stops
    /// working as it would without the cache.
    verified: Mutex<Verified>,
}

/// Tokens verified under the current key set.
#[derive(Default)]
struct Verified {
    /// Bumped after every key-set fetch: a verification that began under an
    /// older key set is not remembered (its key may just have been withdrawn).
    generation: u64,
    tokens: HashMap<[u8; 32], (Principal, i64)>,
}

/// Most tokens remembered as verified (the cache starts over when full).
const VERIFIED_CAPACITY: usize = 10_000;

impl OidcVerifier {
    /// A verifier that loads the issuer's keys on first use and in the background.
    pub fn new(settings: OidcSettings) -> Result<Arc<Self>, IdentityError> {
        let http = reqwest::ClientBuilder::new()
            // Following redirects here would let an issuer send us elsewhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|_| IdentityError::IssuerUnavailable)?;
        Ok(Arc::new(Self {
            settings,
            http,
            keys: RwLock::new(None),
            last_attempt: Mutex::new(None),
            logged_groups: Mutex::new(HashSet::new()),
            logged_notices: Mutex::new(HashSet::new()),
            fetching: tokio::sync::Mutex::new(()),
            metadata: RwLock::new(None),
            verified: Mutex::new(Verified::default()),
        }))
    }

    /// Keeps the keys fresh: retries discovery with backoff until it succeeds, then
    /// refetches the key set every `refresh_interval`. Keys already loaded keep
    /// working while the issuer is unreachable.
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                let Some(verifier) = this.upgrade() else {
                    return;
                };
                let wait = match verifier.refresh().await {
                    Ok(()) => {
                        backoff = Duration::from_millis(500);
                        verifier.settings.refresh_interval
                    }
                    Err(_) => {
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        backoff
                    }
                };
                drop(verifier);
                tokio::time::sleep(wait).await;
            }
        })
    }

    /// Discovers the issuer (first time) and fetches its key set.
    pub async fn refresh(&self) -> Result<(), IdentityError> {
        let _one_at_a_time = self.fetching.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<(), IdentityError> {
        if let Ok(mut last) = self.last_attempt.lock() {
            *last = Some(Instant::now());
        }
        let known_uri = self
            .keys
            .read()
            .ok()
            .and_then(|k| k.as_ref().map(|k| k.jwks_uri.clone()));
        let jwks_uri = match known_uri {
            Some(uri) => uri,
            None => self.discover().await?,
        };
        let set = self.fetch_jwks(&jwks_uri).await?;
        tracing::info!(
            issuer = %self.settings.issuer,
            keys = set.keys.len(),
            "identity provider keys loaded"
        );
        if let Ok(mut keys) = self.keys.write() {
            *keys = Some(Keys {
                jwks_uri,
                set,
                fetched_at: Instant::now(),
            });
        }
        // After the keys are replaced: a verification that read the generation
        // before this point and then found an old key is not remembered.
        if let Ok(mut verified) = self.verified.lock() {
            verified.generation += 1;
            verified.tokens.clear();
        }
        Ok(())
    }

    async fn discover(&self) -> Result<String, IdentityError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|err| {
            tracing::error!(error = %err, "the configured issuer is not a URL");
            IdentityError::IssuerUnavailable
        })?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|err| {
                tracing::warn!(issuer = %self.settings.issuer, error = %err, "OIDC discovery failed");
                IdentityError::IssuerUnavailable
            })?;
        let jwks_uri = metadata.jwks_uri().url().to_string();
        if let Ok(mut known) = self.metadata.write() {
            *known = Some(metadata);
        }
        Ok(jwks_uri)
    }

    /// The issuer's discovery document with its current keys, fetched now:
    /// sign-ins are rare, and fresh keys verify ID tokens after a rotation.
    pub async fn provider_metadata(&self) -> Result<CoreProviderMetadata, IdentityError> {
        self.discover().await?;
        self.metadata
            .read()
            .ok()
            .and_then(|m| m.clone())
            .ok_or(IdentityError::IssuerUnavailable)
    }

    /// The HTTP client that talks to the issuer (no redirects, short timeout).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    async fn fetch_jwks(&self, uri: &str) -> Result<JwkSet, IdentityError> {
        let response = self.http.get(uri).send().await.map_err(|err| {
            tracing::warn!(error = %err, "fetching the issuer's key set failed");
            IdentityError::IssuerUnavailable
        })?;
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), "the issuer's key set answered with an error");
            return Err(IdentityError::IssuerUnavailable);
        }
        let body = response.bytes().await.map_err(|err| {
            tracing::warn!(error = %err, "reading the issuer's key set failed");
            IdentityError::IssuerUnavailable
        })?;
        serde_json::from_slice::<JwkSet>(&body).map_err(|err| {
            tracing::warn!(error = %err, "the issuer's key set is not a JWK set");
            IdentityError::IssuerUnavailable
        })
    }

    /// Whether a fetch may be attempted now (rate limit on unknown kids).
    fn may_refetch(&self) -> bool {
        let Ok(last) = self.last_attempt.lock() else {
            return false;
        };
        last.is_none_or(|t| t.elapsed() >= self.settings.min_refresh_interval)
    }

    fn find_key(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let guard = self.keys.read().ok()?;
        let keys = guard.as_ref()?;
        let jwk = match kid {
            Some(kid) => keys.set.find(kid)?,
            // Without a kid only an issuer with a single key is unambiguous.
            None if keys.set.keys.len() == 1 => &keys.set.keys[0],
            None => return None,
        };
        // A key that declares its algorithm is used with that algorithm only.
        if let Some(key_alg) = jwk.common.key_algorithm
            && format!("{key_alg:?}") != format!("{alg:?}")
        {
            return None;
        }
        DecodingKey::from_jwk(jwk).ok()
    }

    async fn verify_token(&self, token: &str) -> Result<Principal, IdentityError> {
        // Read `alg` ourselves first: jsonwebtoken cannot even parse `none`, and
        // the caller deserves "algorithm not allowed" rather than "not a JWT".
        let alg = header_alg(token).ok_or(IdentityError::Malformed)?;
        if parse_algorithm(&alg).is_none_or(|a| !self.settings.algorithms.contains(&a)) {
            return Err(IdentityError::AlgorithmNotAllowed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| IdentityError::Malformed)?;
        if !self.settings.algorithms.contains(&header.alg) {
            return Err(IdentityError::AlgorithmNotAllowed);
        }
        // Read before the key is looked up (see `fetch_locked`).
        let generation = self.verified.lock().map(|v| v.generation).unwrap_or(0);
        let mut key = self.find_key(header.kid.as_deref(), header.alg);
        if key.is_none() {
            // Wait for a fetch under way, then look again; fetch ourselves only
            // when no keys were ever loaded or the rate limit allows.
            let _one_at_a_time = self.fetching.lock().await;
            key = self.find_key(header.kid.as_deref(), header.alg);
            let loaded = self.keys.read().map(|k| k.is_some()).unwrap_or(false);
            if key.is_none() && (!loaded || self.may_refetch()) {
                match self.fetch_locked().await {
                    Ok(()) => key = self.find_key(header.kid.as_deref(), header.alg),
                    Err(err) if !loaded => return Err(err),
                    Err(_) => {}
                }
            }
        }
        let key = key.ok_or(IdentityError::UnknownKey)?;

        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(
            |err| match err.kind() {
                ErrorKind::ExpiredSignature => IdentityError::Expired,
                ErrorKind::ImmatureSignature => IdentityError::NotYetValid,
                ErrorKind::InvalidAudience => IdentityError::WrongAudience,
                ErrorKind::InvalidIssuer => IdentityError::WrongIssuer,
                ErrorKind::InvalidSignature => IdentityError::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    IdentityError::AlgorithmNotAllowed
                }
                ErrorKind::MissingRequiredClaim(claim) => {
                    IdentityError::MissingClaim(match claim.as_str() {
                        "exp" => "exp",
                        "iss" => "iss",
                        "aud" => "aud",
                        _ => "sub",
                    })
                }
                _ => IdentityError::Malformed,
            },
        )?;
        let principal = self.principal(&data.claims)?;
        if let Some(exp) = data.claims.get("exp").and_then(Value::as_i64)
            && let Ok(mut verified) = self.verified.lock()
            && verified.generation == generation
        {
            if verified.tokens.len() >= VERIFIED_CAPACITY {
                verified.tokens.clear();
            }
            verified
                .tokens
                .insert(token_digest(token), (principal.clone(), exp));
        }
        Ok(principal)
    }

    /// A token verified before, still before its `exp`.
    fn remembered(&self, token: &str) -> Option<Principal> {
        let now = chrono::Utc::now().timestamp();
        let verified = self.verified.lock().ok()?;
        let (principal, exp) = verified.tokens.get(&token_digest(token))?;
        (*exp > now).then(|| principal.clone())
    }

    /// The principal verified claims describe.
    ///
    /// - `sub` must name someone: empty or blank is refused (401).
    /// - Roles come from the roles claim: through the role map alone when one
    ///   is configured, else by their names.
    /// - `backplane:<permission>` scopes count only for a service identity
    ///   (see [`ServiceClients`]), and never grant the audit log. On anyone
    ///   else's token they are ignored: a person's rights come from roles.
    /// - The kind (`Service` or `Staff`) follows the same rule, so a person's
    ///   token never gets a service's limits either.
    pub fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, IdentityError> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let subject = text("sub")
            .filter(|s| !s.trim().is_empty())
            .ok_or(IdentityError::MissingClaim("sub"))?;
        let mapped = !self.settings.role_map.is_empty();
        let mut roles = BTreeSet::new();
        for name in claim_strings(lookup(claims, &self.settings.roles_claim)) {
            let role = if mapped {
                self.settings.role_map.get(&name).copied()
            } else {
                name.parse::<Role>().ok()
            };
            if let Some(role) = role {
                roles.insert(role);
            } else if let Ok(mut logged) = self.logged_groups.lock()
                && logged.len() < 1024
                && logged.insert(name.clone())
            {
                tracing::info!(group = %name, "a token carries a group that maps to no role; ignored");
            }
        }
        let requested: BTreeSet<Permission> = claim_strings(claims.get("scope"))
            .into_iter()
            .filter_map(|s| s.strip_prefix("backplane:").and_then(Permission::from_name))
            .collect();
        let email = text("email");
        let service = self.is_service(claims, &subject);
        let scopes = match service {
            Ok(()) => {
                if requested.contains(&Permission::ReadAuditLog) {
                    self.notice_once(
                        "the backplane:read:audit_log scope grants nothing; the audit log is read through roles",
                    );
                }
                requested
                    .into_iter()
                    .filter(|p| *p != Permission::ReadAuditLog)
                    .collect()
            }
            Err(reason) => {
                if !requested.is_empty() {
                    self.notice_once(reason);
                }
                BTreeSet::new()
            }
        };
        Ok(Principal {
            subject,
            name: text("name").or_else(|| text("preferred_username")),
            email,
            kind: if service.is_ok() {
                PrincipalKind::Service
            } else {
                PrincipalKind::Staff
            },
            roles,
            scopes,
            authentication: super::step_up::Authentication::from_claims(claims),
            step_up: BTreeSet::new(),
        })
    }

    /// Whether the token is a service identity: its client (`client_id`, or
    /// `azp` when there is no `client_id`) is a service client, its `sub` is
    /// that client's subject, and it has no `email`. Otherwise why not (a
    /// constant, for the log).
    fn is_service(&self, claims: &Map<String, Value>, subject: &str) -> Result<(), &'static str> {
        let client = match claims.get("client_id") {
            Some(client) => client.as_str(),
            None => claims.get("azp").and_then(Value::as_str),
        };
        let Some(expected) = client.and_then(|c| self.settings.service_clients.subject_of(c))
        else {
            return Err(
                "scopes on a token whose client is not in BACKPLANE_SERVICE_CLIENTS are ignored",
            );
        };
        let has_email = claims.get("email").is_some_and(|e| !e.is_null());
        if has_email || subject != expected {
            return Err("scopes on a token that names a person are ignored");
        }
        Ok(())
    }

    /// Logs `notice` at info the first time it comes up; nothing of the
    /// token goes into it.
    fn notice_once(&self, notice: &'static str) {
        if let Ok(mut logged) = self.logged_notices.lock()
            && logged.insert(notice)
        {
            tracing::info!(notice, "a token's scopes were not all honoured");
        }
    }
}

impl TokenVerifier for OidcVerifier {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Principal, IdentityError>> + Send + 'a>> {
        Box::pin(async move {
            match self.remembered(token) {
                Some(principal) => Ok(principal),
                None => self.verify_token(token).await,
            }
        })
    }

    fn signed_subject(&self, token: &str, error: &IdentityError) -> Option<String> {
        // jsonwebtoken checks the signature before any claim, and
        // `principal` reads claims of a verified token only: these errors
        // come after the signature held.
        if !matches!(
            error,
            IdentityError::Expired
                | IdentityError::NotYetValid
                | IdentityError::WrongAudience
                | IdentityError::WrongIssuer
                | IdentityError::MissingClaim(_)
        ) {
            return None;
        }
        let data = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token).ok()?;
        let subject = data.claims.get("sub")?.as_str()?.trim();
        (!subject.is_empty()).then(|| subject.chars().take(256).collect())
    }

    fn is_ready(&self) -> bool {
        self.keys
            .read()
            .map(|k| {
                k.as_ref()
                    .is_some_and(|k| k.fetched_at.elapsed() < Duration::from_secs(24 * 3600))
            })
            .unwrap_or(false)
    }
}

/// The `alg` of a compact JWS, if `token` has that shape.
fn header_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let mut parts = token.split('.');
    let (header, _payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let header: Value = serde_json::from_slice(&bytes).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

/// A claim by dotted path (`realm_access.roles`).
fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// A claim that is a list of strings, or one string separated by spaces or commas.
fn claim_strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn token_digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_claims_come_as_lists_or_strings() {
        assert_eq!(claim_strings(Some(&json!(["a", "b"]))), vec!["a", "b"]);
        assert_eq!(claim_strings(Some(&json!("a b,c"))), vec!["a", "b", "c"]);
        assert!(claim_strings(Some(&json!(3))).is_empty());
    }

    #[test]
    fn dotted_paths_reach_nested_claims() {
        let claims = json!({"realm_access": {"roles": ["ops"]}});
        let map = claims.as_object().cloned().unwrap_or_default();
        assert_eq!(lookup(&map, "realm_access.roles"), Some(&json!(["ops"])));
    }

    #[test]
    fn the_header_algorithm_is_read_before_anything_else() {
        // {"alg":"none"} . {} . (empty)
        assert_eq!(
            header_alg("eyJhbGciOiJub25lIn0.e30.").as_deref(),
            Some("none")
        );
        assert_eq!(header_alg("sk_live_123"), None);
        assert_eq!(header_alg("a.b"), None);
        assert_eq!(header_alg("a.b.c.d"), None);
    }

    fn verifier(adjust: impl FnOnce(&mut OidcSettings)) -> Arc<OidcVerifier> {
        let mut settings = OidcSettings::new("http://127.0.0.1:9/issuer", "backplane");
        adjust(&mut settings);
        OidcVerifier::new(settings).expect("a verifier")
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn clients(entries: &[&str]) -> ServiceClients {
        ServiceClients::parse(entries).expect("service clients")
    }

    const EVERY_SCOPE: &str = "backplane:read:customers backplane:read:cost_data \
        backplane:read:internal_flags backplane:write:internal_flags backplane:bulk:organizations \
        backplane:read:audit_log";

    #[test]
    fn a_persons_token_gets_no_rights_from_its_scopes() {
        // The browser client is (wrongly) listed as a service client too: a
        // person signed in through it still names themself.
        let verifier = verifier(|s| s.service_clients = clients(&["backplane-web", "ops-scripts"]));
        for person in [
            json!({"sub": "alice", "email": "alice@corp.example", "client_id": "backplane-web",
                   "roles": ["support"], "scope": EVERY_SCOPE}),
            json!({"sub": "alice", "client_id": "backplane-web", "roles": ["support"], "scope": EVERY_SCOPE}),
            json!({"sub": "alice", "azp": "backplane-web", "roles": ["support"], "scope": EVERY_SCOPE}),
            json!({"sub": "alice", "email": "alice@corp.example", "roles": ["support"], "scope": EVERY_SCOPE}),
        ] {
            let principal = verifier
                .principal(&claims(person.clone()))
                .expect("a principal");
            assert_eq!(principal.kind, PrincipalKind::Staff, "{person}");
            assert!(
                principal.scopes.is_empty(),
                "{person}: {:?}",
                principal.scopes
            );
            assert_eq!(principal.roles, BTreeSet::from([Role::Support]), "{person}");
            assert!(!principal.can(Permission::ReadCostData), "{person}");
        }
    }

    #[test]
    fn a_listed_service_client_gets_its_scopes_but_never_the_audit_log() {
        let verifier = verifier(|s| {
            s.service_clients = clients(&["ops-scripts", "etl=5b0c2a1e-service-account"]);
        });
        let expected = BTreeSet::from([
            Permission::ReadCustomers,
            Permission::ReadCostData,
            Permission::ReadInternalFlags,
            Permission::WriteInternalFlags,
            Permission::BulkOrganizations,
        ]);
        for service in [
            // oidc-provider: `sub` is the client id.
            json!({"sub": "ops-scripts", "client_id": "ops-scripts", "scope": EVERY_SCOPE}),
            // Keycloak: `azp`, and the service-account user's id as `sub`.
            json!({"sub": "5b0c2a1e-service-account", "azp": "etl",
                   "preferred_username": "service-account-etl", "scope": EVERY_SCOPE}),
        ] {
            let principal = verifier
                .principal(&claims(service.clone()))
                .expect("a principal");
            assert_eq!(principal.kind, PrincipalKind::Service, "{service}");
            assert_eq!(principal.scopes, expected, "{service}");
            assert!(!principal.can(Permission::ReadAuditLog), "{service}");
            assert!(!principal.permissions().contains(&Permission::ReadAuditLog));
        }
    }

    #[test]
    fn a_client_that_is_not_listed_gets_no_rights_from_its_scopes() {
        let verifier = verifier(|s| s.service_clients = clients(&["ops-scripts"]));
        for token in [
            json!({"sub": "billing-export", "client_id": "billing-export", "scope": EVERY_SCOPE}),
            // `client_id` decides; a listed `azp` beside it does not count.
            json!({"sub": "ops-scripts", "client_id": "billing-export", "azp": "ops-scripts", "scope": EVERY_SCOPE}),
            // The client's name, but another subject than the one listed.
            json!({"sub": "someone-else", "client_id": "ops-scripts", "scope": EVERY_SCOPE}),
            // No client at all.
            json!({"sub": "ops-scripts", "scope": EVERY_SCOPE}),
        ] {
            let principal = verifier
                .principal(&claims(token.clone()))
                .expect("a principal");
            assert_eq!(principal.kind, PrincipalKind::Staff, "{token}");
            assert!(
                principal.scopes.is_empty(),
                "{token}: {:?}",
                principal.scopes
            );
            assert!(principal.permissions().is_empty(), "{token}");
        }
        // Without any service client, nobody's scopes count.
        let none = self::verifier(|_| {});
        let token = json!({"sub": "ops-scripts", "client_id": "ops-scripts", "scope": EVERY_SCOPE});
        let principal = none.principal(&claims(token)).expect("a principal");
        assert_eq!(principal.kind, PrincipalKind::Staff);
        assert!(principal.scopes.is_empty());
    }

    #[test]
    fn with_a_role_map_only_mapped_groups_grant_roles() {
        let mapped = verifier(|s| {
            s.role_map = HashMap::from([("cs-team".to_owned(), Role::Support)]);
        });
        let token = claims(json!({"sub": "mallory", "roles": ["admin", "auditor", "cs-team"]}));
        let principal = mapped.principal(&token).expect("a principal");
        assert_eq!(principal.roles, BTreeSet::from([Role::Support]));
        let token = claims(json!({"sub": "mallory", "roles": ["admin"]}));
        assert!(
            mapped
                .principal(&token)
                .expect("a principal")
                .roles
                .is_empty()
        );
        // A group may be mapped to a role of its own name.
        let admins = verifier(|s| {
            s.role_map = HashMap::from([("admin".to_owned(), Role::Admin)]);
        });
        let principal = admins.principal(&token).expect("a principal");
        assert_eq!(principal.roles, BTreeSet::from([Role::Admin]));
        // Without a role map, role names are roles.
        let plain = verifier(|_| {});
        let token = claims(json!({"sub": "ada", "roles": ["admin", "cs-team"]}));
        let principal = plain.principal(&token).expect("a principal");
        assert_eq!(principal.roles, BTreeSet::from([Role::Admin]));
    }

    #[test]
    fn a_token_that_names_nobody_is_refused() {
        let verifier = verifier(|s| s.service_clients = clients(&["ops-scripts"]));
        for token in [
            json!({"sub": "", "roles": ["admin"]}),
            json!({"sub": "   ", "roles": ["admin"]}),
            json!({"sub": "\t\n", "client_id": "ops-scripts", "scope": EVERY_SCOPE}),
            json!({"sub": 42, "roles": ["admin"]}),
            json!({"roles": ["admin"]}),
        ] {
            assert_eq!(
                verifier
                    .principal(&claims(token.clone()))
                    .map(|p| p.subject),
                Err(IdentityError::MissingClaim("sub")),
                "{token}"
            );
        }
    }

    #[test]
    fn service_clients_are_client_or_client_and_subject() {
        let parsed = clients(&[" ops-scripts ", "", "etl = 5b0c2a1e"]);
        assert_eq!(parsed.subject_of("ops-scripts"), Some("ops-scripts"));
        assert_eq!(parsed.subject_of("etl"), Some("5b0c2a1e"));
        assert_eq!(parsed.subject_of("backplane-web"), None);
        for bad in ["=sub", "client=", "two words", "ops-scripts"] {
            assert_eq!(
                ServiceClients::parse(&["ops-scripts", bad]),
                Err(bad.to_owned()),
                "{bad}"
            );
        }
        assert!(clients(&[]).is_empty());
    }

    #[test]
    fn symmetric_algorithms_cannot_be_configured() {
        assert_eq!(parse_algorithm("HS256"), None);
        assert_eq!(parse_algorithm("none"), None);
        assert_eq!(parse_algorithm("rs256"), Some(Algorithm::RS256));
    }
}
