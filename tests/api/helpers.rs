//! The real stack for tests: a server on a random loopback port, a fresh database
//! per test (a SQLite file, or a PostgreSQL database cloned from a seeded
//! template), and a test OIDC issuer with real RSA keys.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::routing::get;
use backplane::app::Application;
use backplane::config::{Config, Mode};
use backplane::identity::oidc::OidcSettings;
use backplane::store::{Store, StoreOptions, seed};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

/// Organizations in every test database: enough for pages of 100 parents.
pub const SEED_ORGS: u64 = 150;

/// The audience test tokens carry.
pub const AUDIENCE: &str = "backplane-tests";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per database.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await;
            }
        }
    };
}

/// A fresh, migrated, seeded database for one test.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub async fn database(backend: Backend) -> TestDatabase {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}/test.db", dir.path().display());
            let store = Store::connect(&StoreOptions::new(url.clone()))
                .await
                .expect("open sqlite");
            store.migrate().await.expect("migrate");
            seed::seed(&store, SEED_ORGS).await.expect("seed");
            TestDatabase {
                url,
                _dir: Some(dir),
            }
        }
        Backend::Postgres => {
            let admin_url = postgres_url();
            let template = ensure_template(&admin_url).await;
            let name = format!("bp_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(admin_url.as_str())
                .await
                .expect("connect to the test PostgreSQL server");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .await
                .expect("clone the template database");
            admin.close().await.ok();
            TestDatabase {
                url: with_database(&admin_url, &name),
                _dir: None,
            }
        }
    }
}

fn postgres_url() -> String {
    std::env::var("BACKPLANE_TEST_POSTGRES_URL").expect(
        "BACKPLANE_TEST_POSTGRES_URL is not set: run the tests with ./scripts/test, which starts a throwaway PostgreSQL server",
    )
}

fn with_database(url: &str, name: &str) -> String {
    match url.rfind('/') {
        Some(i) if url[..i].contains("@") || url[..i].ends_with(char::is_numeric) => {
            format!("{}/{name}", &url[..i])
        }
        _ => format!("{url}/{name}"),
    }
}

/// A migrated, seeded database to clone, made once per seed size and schema by
/// whichever test process gets there first; the others wait for it.
async fn ensure_template(admin_url: &str) -> String {
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/src"))
        .map(|d| d.count())
        .unwrap_or(0);
    let name = format!(
        "bp_template_{SEED_ORGS}_{migrations}_{}",
        env!("CARGO_PKG_VERSION").replace('.', "_")
    );
    let admin = Database::connect(admin_url)
        .await
        .expect("connect to PostgreSQL");
    let created = admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .is_ok();
    if created {
        let url = with_database(admin_url, &name);
        let store = Store::connect(&StoreOptions::new(url))
            .await
            .expect("open template");
        store.migrate().await.expect("migrate template");
        seed::seed(&store, SEED_ORGS).await.expect("seed template");
        drop(store);
        // Connections of the pool may linger a moment; a template must have none.
        for _ in 0..50 {
            let r = admin
                .execute_unprepared(&format!("ALTER DATABASE {name} IS_TEMPLATE true"))
                .await;
            let busy = admin
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    format!("SELECT count(*)::bigint AS n FROM pg_stat_activity WHERE datname = '{name}'"),
                ))
                .await
                .ok()
                .flatten()
                .and_then(|row| row.try_get::<i64>("", "n").ok())
                .unwrap_or(0);
            if r.is_ok() && busy == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    } else {
        for _ in 0..600 {
            let ready = admin
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    format!("SELECT datistemplate FROM pg_database WHERE datname = '{name}'"),
                ))
                .await
                .ok()
                .flatten()
                .and_then(|row| row.try_get::<bool>("", "datistemplate").ok())
                .unwrap_or(false);
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    admin.close().await.ok();
    name
}

/// A test OIDC issuer on loopback: discovery and a JWKS whose keys the test may
/// change (rotation), and tokens signed with real RSA keys.
pub struct TestIssuer {
    pub url: String,
    keys: Arc<Mutex<Vec<(String, String)>>>,
    jwks_fetches: Arc<std::sync::atomic::AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

pub fn key_pem(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/api/keys/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("test key")
}

fn rsa_jwk(kid: &str, pem: &str) -> Value {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("RSA test key");
    let public = key.to_public_key();
    json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    })
}

impl TestIssuer {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// An issuer on a given address (a test may point a server at an address
    /// before anything listens there).
    pub async fn start_on(addr: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind issuer");
        let addr = listener.local_addr().expect("issuer addr");
        let url = format!("http://{addr}");
        let keys = Arc::new(Mutex::new(vec![("key-1".to_owned(), key_pem("rsa1"))]));
        let discovery = json!({
            "issuer": url,
            "authorization_endpoint": format!("{url}/authorize"),
            "token_endpoint": format!("{url}/token"),
            "jwks_uri": format!("{url}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        let jwks_keys = keys.clone();
        let jwks_fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let fetches = jwks_fetches.clone();
        // The client-credentials grant for scripts: one client, `script` /
        // `script-secret`, whose tokens carry the scopes it asks for.
        let token_keys = keys.clone();
        let token_issuer = url.clone();
        let app = axum::Router::new()
            .route(
                "/token",
                axum::routing::post(move |axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
                    let keys = token_keys.lock().map(|k| k.clone()).unwrap_or_default();
                    let issuer = token_issuer.clone();
                    async move {
                        let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
                            && form.get("client_id").map(String::as_str) == Some("script")
                            && form.get("client_secret").map(|s| s.trim()) == Some("script-secret");
                        if !ok {
                            return (axum::http::StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_client" })));
                        }
                        let now = chrono::Utc::now().timestamp();
                        let (kid, pem) = keys[0].clone();
                        let mut header = Header::new(Algorithm::RS256);
                        header.kid = Some(kid);
                        let token = jsonwebtoken::encode(
                            &header,
                            &json!({
                                "iss": issuer, "aud": AUDIENCE, "sub": "script", "client_id": "script",
                                "scope": form.get("scope").cloned().unwrap_or_default(),
                                "iat": now, "exp": now + 300,
                            }),
                            &EncodingKey::from_rsa_pem(pem.as_bytes()).expect("key"),
                        )
                        .expect("sign");
                        (axum::http::StatusCode::OK, Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": 300 })))
                    }
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let d = discovery.clone();
                    async move { Json(d) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let keys = jwks_keys.lock().map(|k| k.clone()).unwrap_or_default();
                    async move {
                        Json(json!({
                            "keys": keys.iter().map(|(kid, pem)| rsa_jwk(kid, pem)).collect::<Vec<_>>()
                        }))
                    }
                }),
            );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        TestIssuer {
            url,
            keys,
            jwks_fetches,
            _server: server,
        }
    }

    /// Stops answering (new connections are refused).
    pub fn stop(&self) {
        self._server.abort();
    }

    /// How many times the key set was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Replaces the published keys: `(kid, key file)` pairs, the first signs.
    pub fn publish(&self, keys: &[(&str, &str)]) {
        if let Ok(mut k) = self.keys.lock() {
            *k = keys
                .iter()
                .map(|(kid, file)| ((*kid).to_owned(), key_pem(file)))
                .collect();
        }
    }

    /// Signs `claims` with the RSA key in `file`, naming `kid`.
    pub fn sign_with(&self, kid: &str, file: &str, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(key_pem(file).as_bytes()).expect("encoding key"),
        )
        .expect("sign")
    }

    /// Standard claims for `subject` with `roles`, valid for an hour, of a
    /// person who signed in a minute ago with a password and a one-time code
    /// (a strong sign-in: no step-up is pending; see
    /// [`TestIssuer::password_only`]).
    pub fn claims(&self, subject: &str, roles: &[&str]) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "amr": ["pwd", "otp"],
            "auth_time": now - 60,
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": subject,
            "email": format!("{subject}@staff.example"),
            "name": subject,
            "roles": roles,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 3600,
        })
    }

    /// A token of a person who signed in with a password alone a minute ago.
    pub fn password_only(&self, subject: &str, roles: &[&str]) -> String {
        let mut claims = self.claims(subject, roles);
        claims["amr"] = json!(["pwd"]);
        self.sign(claims)
    }

    /// A token for `subject` with `roles`, valid for an hour, signed by the
    /// issuer's current key.
    pub fn token(&self, subject: &str, roles: &[&str]) -> String {
        self.sign(self.claims(subject, roles))
    }

    /// Signs any claims with the issuer's current key.
    pub fn sign(&self, claims: Value) -> String {
        let (kid, pem) = self.keys.lock().map(|k| k[0].clone()).expect("issuer keys");
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key"),
        )
        .expect("sign")
    }

    pub fn settings(&self) -> OidcSettings {
        let mut s = OidcSettings::new(self.url.clone(), AUDIENCE);
        s.min_refresh_interval = Duration::from_millis(200);
        s
    }
}

/// A running Backplane.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub client: reqwest::Client,
    pub issuer: TestIssuer,
    _db: TestDatabase,
    _server: tokio::task::JoinHandle<()>,
    /// Asks the server to shut down as `SIGTERM` would ([`TestApp::stop`]).
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The shutdown signal of a test server: the sender's message; a sender
/// dropped unsent leaves the server running.
fn shutdown_signal() -> (
    tokio::sync::oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (tx, async move {
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Mode::Serve).await
}

pub async fn spawn_app_with(backend: Backend, mode: Mode) -> TestApp {
    spawn_app_configured(backend, mode, |_| {}).await
}

/// A running Backplane whose configuration `adjust` may change first.
pub async fn spawn_app_configured(
    backend: Backend,
    mode: Mode,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let db = database(backend).await;
    let issuer = TestIssuer::start().await;
    let mut config = Config::new(
        mode,
        "127.0.0.1:0".parse().expect("addr"),
        StoreOptions::new(db.url.clone()),
    );
    config.oidc = Some(issuer.settings());
    config.dev_seed_orgs = 0;
    adjust(&mut config);
    let app = Application::build(config).await.expect("build app");
    let addr = app.local_addr();
    let store = app.store().clone();
    let (shutdown, signal) = shutdown_signal();
    let server = tokio::spawn(async move {
        app.run_until_stopped(signal).await.ok();
    });
    TestApp {
        addr,
        store,
        client: reqwest::Client::new(),
        issuer,
        _db: db,
        _server: server,
        shutdown: Some(shutdown),
    }
}

/// A second server on the database of another, trusting the same issuer.
pub async fn spawn_app_on(url: &str, issuer: &TestIssuer) -> TestApp {
    spawn_app_on_configured(url, issuer, |_| {}).await
}

/// [`spawn_app_on`], with a configuration `adjust` may change first.
pub async fn spawn_app_on_configured(
    url: &str,
    issuer: &TestIssuer,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let own_issuer = TestIssuer::start().await;
    let mut config = Config::new(
        Mode::Serve,
        "127.0.0.1:0".parse().expect("addr"),
        StoreOptions::new(url.to_owned()),
    );
    config.oidc = Some(issuer.settings());
    adjust(&mut config);
    let app = Application::build(config).await.expect("build app");
    let addr = app.local_addr();
    let store = app.store().clone();
    let (shutdown, signal) = shutdown_signal();
    let server = tokio::spawn(async move {
        app.run_until_stopped(signal).await.ok();
    });
    TestApp {
        addr,
        store,
        client: reqwest::Client::new(),
        issuer: own_issuer,
        _db: TestDatabase {
            url: url.to_owned(),
            _dir: None,
        },
        _server: server,
        shutdown: Some(shutdown),
    }
}

impl TestApp {
    /// Shuts the server down as `SIGTERM` does, and waits until it has
    /// (its audit events written, its last checkpoint too).
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        tokio::time::timeout(Duration::from_secs(60), &mut self._server)
            .await
            .expect("the server stops within a minute")
            .expect("the server task ends without a panic");
    }

    /// The database this server uses.
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs a GraphQL request with a bearer token (or none); returns status and body.
    pub async fn graphql_as(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// POSTs a GraphQL request with a bearer token; returns status and the
    /// body as sent.
    pub async fn graphql_text(&self, token: &str, query: &str, variables: Value) -> (u16, String) {
        let resp = self
            .client
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// A GraphQL request as an administrator; panics unless it has no errors.
    pub async fn query(&self, query: &str, variables: Value) -> Value {
        let token = self.issuer.token("admin-1", &["admin"]);
        let (status, body) = self.graphql_as(Some(&token), query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Asks `query` as an administrator and checks the answer is one
    /// `BAD_USER_INPUT` error naming `argument`; returns the body.
    pub async fn assert_bad_input(&self, query: &str, argument: &str) -> Value {
        let token = self.issuer.token("admin-1", &["admin"]);
        let (_, body) = self.graphql_as(Some(&token), query, json!({})).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["argument"], argument,
            "{body}"
        );
        body
    }

    /// Statements the server sent while `f` ran to read and change data, the
    /// audit log's own statements (a constant few per request) apart.
    pub async fn statements_during<F: std::future::Future<Output = T>, T>(&self, f: F) -> (u64, T) {
        let before = self.store.request_statements_sent();
        let out = f.await;
        let after = self.store.request_statements_sent();
        (after - before, out)
    }
}

/// Polls /readyz until it answers `want`; (answered, polls, last status).
pub async fn readyz_until(
    client: &reqwest::Client,
    url: &str,
    want: u16,
    within: Duration,
) -> (bool, usize, Option<u16>) {
    let started = std::time::Instant::now();
    let mut polls = 0;
    let mut last = None;
    while started.elapsed() < within {
        polls += 1;
        let r =
            tokio::time::timeout(std::time::Duration::from_secs(10), client.get(url).send()).await;
        match r {
            Err(_) => panic!("/readyz hung for 10 s"),
            Ok(Ok(resp)) => {
                last = Some(resp.status().as_u16());
                if last == Some(want) {
                    return (true, polls, last);
                }
            }
            Ok(Err(_)) => {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (false, polls, last)
}

/// The `backplane` binary as a child process whose output goes to
/// `log_path`, killed with its handle, with no issuer or listen address from
/// the test's own environment; the caller adds the command and its flags.
pub fn backplane_process(log_path: &std::path::Path) -> tokio::process::Command {
    let log = std::fs::File::create(log_path).expect("log file");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_backplane"));
    command
        .env_remove("BACKPLANE_OIDC_ISSUER")
        .env_remove("BACKPLANE_LISTEN")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .kill_on_drop(true);
    command
}

/// A response's `WWW-Authenticate` challenge (empty when there is none).
pub fn www_authenticate(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The sum of a counter's samples whose labels include `labels`.
pub fn counter(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
