//! Browser sign-in end to end, through a real OpenID Connect provider on
//! loopback (`oidc-provider`, see `tests/oidc-provider/`): the redirects of the
//! authorization code flow with PKCE, the session cookie, queries with it,
//! cross-site and form requests refused, sessions that end, and a JWT access
//! token of the same provider (resource indicators) used as a bearer token.

use std::process::Stdio;
use std::time::Duration;

use backplane::config::{Config, Mode};
use backplane::identity::browser::BrowserClientSettings;
use backplane::identity::oidc::OidcSettings;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Backend, TestApp, spawn_app_configured};
use crate::on_both_databases;

/// A running `tests/oidc-provider/provider.mjs`; it exits when dropped (its
/// stdin closes and the child is killed).
pub struct Provider {
    pub issuer: String,
    _child: tokio::process::Child,
}

pub const CLIENT_ID: &str = "backplane-web";
pub const CLIENT_SECRET: &str = "web-secret-for-tests";
pub const SERVICE_ID: &str = "ops-scripts";
pub const SERVICE_SECRET: &str = "service-secret-for-tests";

pub async fn start_provider() -> Provider {
    start_provider_with(&[]).await
}

/// [`start_provider`] with some of its environment (`provider.mjs`'s
/// variables) set otherwise.
pub async fn start_provider_with(env: &[(&str, &str)]) -> Provider {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc-provider");
    assert!(
        std::path::Path::new(dir).join("node_modules").exists(),
        "run `npm ci --prefix tests/oidc-provider` first (scripts/test does)"
    );
    let mut child = tokio::process::Command::new("node")
        .arg(format!("{dir}/provider.mjs"))
        .env("PORT", "0")
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", CLIENT_SECRET)
        .env("REDIRECT_URIS", "http://127.0.0.1/auth/callback")
        .env("SERVICE_CLIENT_ID", SERVICE_ID)
        .env("SERVICE_CLIENT_SECRET", SERVICE_SECRET)
        .env("SERVICE_SCOPES", "backplane:read:customers")
        .env("RESOURCE", "backplane")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node tests/oidc-provider/provider.mjs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the provider starts within 30 s")
        .expect("read")
        .expect("a READY line");
    let issuer = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("unexpected provider output: {line}"))
        .to_owned();
    Provider {
        issuer,
        _child: child,
    }
}

/// A port free now, for a server that must know its address before it
/// binds (its redirect URI). Drawn below Linux's ephemeral range (32768 and
/// up), where the other tests' `127.0.0.1:0` binds take their ports, so that
/// one of them cannot take it between this check and the server's bind.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..200)
        .map(|_| rng.gen_range(20_000..32_000))
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// Backplane in `serve` mode with browser sign-in through `provider`.
pub async fn app_with_sign_in(
    backend: Backend,
    provider: &Provider,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let issuer = provider.issuer.clone();
    spawn_app_configured(backend, Mode::Serve, move |c| {
        c.listen = format!("127.0.0.1:{port}").parse().expect("addr");
        c.oidc = Some(OidcSettings::new(issuer, "backplane"));
        c.public_url = Some(public.clone());
        c.session_key = Some("a-test-session-key-of-at-least-32-chars".into());
        c.browser = Some(BrowserClientSettings {
            client_id: CLIENT_ID.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            redirect_uri: format!("{public}/auth/callback"),
        });
        adjust(c);
    })
    .await
}

/// A browser-like client: a cookie jar, redirects followed by hand.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// [`browser`], keeping its cookies in `jar` for the test to read.
pub fn browser_with(jar: std::sync::Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn resolve(base: &str, location: &str) -> String {
    reqwest::Url::parse(base)
        .and_then(|b| b.join(location))
        .expect("a valid Location")
        .to_string()
}

/// Follows redirects from `url` until a page that is not one; returns the
/// final URL and response.
pub async fn follow(client: &reqwest::Client, mut url: String) -> (String, reqwest::Response) {
    for _ in 0..10 {
        let resp = client.get(&url).send().await.expect("request");
        if !resp.status().is_redirection() {
            return (url, resp);
        }
        let location = resp.headers()[LOCATION]
            .to_str()
            .expect("location")
            .to_owned();
        url = resolve(&url, &location);
    }
    panic!("too many redirects");
}

/// Signs `login` in through the provider, as a browser would; returns the
/// page the browser lands on.
pub async fn sign_in(app: &TestApp, client: &reqwest::Client, login: &str) -> String {
    sign_in_from(
        client,
        app.url("/auth/login?return_to=/playground"),
        login,
        None,
    )
    .await
}

/// Signs `login` in from the sign-in URL `start`, with a one-time code when
/// `otp` is given (a strong sign-in); returns the page the browser lands on.
pub async fn sign_in_from(
    client: &reqwest::Client,
    start: String,
    login: &str,
    otp: Option<&str>,
) -> String {
    let (url, page) = follow(client, start).await;
    assert_eq!(page.status(), StatusCode::OK, "the provider's login page");
    assert!(url.contains("/interaction/"), "{url}");
    let html = page.text().await.expect("html");
    assert!(html.contains("name=\"login\""), "{html}");
    let resp = client
        .post(format!("{url}/login"))
        .form(&[("login", login), ("otp", otp.unwrap_or_default())])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let next = resolve(&url, resp.headers()[LOCATION].to_str().expect("location"));
    let (landed, resp) = follow(client, next).await;
    assert_eq!(resp.status(), StatusCode::OK, "landed on {landed}");
    landed
}

/// What `/auth/session` says to this browser.
pub async fn session_of(app: &TestApp, client: &reqwest::Client) -> Value {
    client
        .get(app.url("/auth/session"))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json")
}

pub async fn graphql_with_cookie(
    app: &TestApp,
    client: &reqwest::Client,
    query: &str,
) -> (StatusCode, Value) {
    let resp = client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn signs_in_and_queries_with_the_session_cookie(backend: Backend) {
    let provider = start_provider().await;
    let app = app_with_sign_in(backend, &provider, |_| {}).await;
    let client = browser();

    let landed = sign_in(&app, &client, "alice").await;
    assert_eq!(
        landed,
        app.url("/playground"),
        "back where the sign-in started"
    );

    let session = session_of(&app, &client).await;
    assert_eq!(session["signedIn"], true, "{session}");
    assert_eq!(session["subject"], "alice");
    assert_eq!(session["name"], "Alice Support");
    assert_eq!(session["email"], "alice@corp.example");
    assert_eq!(session["roles"], json!(["support"]));

    let (status, body) = graphql_with_cookie(
        &app,
        &client,
        "{ viewer { subject roles } organizations(first: 2) { nodes { name } } }",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["viewer"]["subject"], "alice", "{body}");
    assert_eq!(
        body["data"]["viewer"]["roles"],
        json!(["support"]),
        "{body}"
    );
    assert!(body["data"]["organizations"]["nodes"].is_array(), "{body}");

    // What support may not see stays hidden with the cookie too.
    let (_, body) = graphql_with_cookie(
        &app,
        &client,
        "{ organizations(first: 1) { nodes { internalFlags { churnRisk } } } }",
    )
    .await;
    assert!(
        body["errors"].is_array() && body.get("data").is_none_or(Value::is_null),
        "{body}"
    );

    // A form post and a text/plain body carrying the cookie are refused, and so
    // is a JSON request from another origin; nothing runs.
    for (content_type, body) in [
        (
            "application/x-www-form-urlencoded",
            "query=%7B%20viewer%20%7B%20subject%20%7D%20%7D",
        ),
        ("text/plain", "{\"query\":\"{ viewer { subject } }\"}"),
        ("multipart/form-data; boundary=x", "--x--"),
    ] {
        let resp = client
            .post(app.url("/graphql"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{content_type}");
        let text = resp.text().await.unwrap_or_default();
        assert!(!text.contains("\"data\""), "{text}");
    }
    let resp = client
        .post(app.url("/graphql"))
        .header("origin", "http://evil.example")
        .json(&json!({ "query": "{ viewer { subject } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = client
        .post(app.url("/graphql"))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({ "query": "{ viewer { subject } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // From our own page it goes through.
    let resp = client
        .post(app.url("/graphql"))
        .header("origin", app.url("").trim_end_matches('/'))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({ "query": "{ viewer { subject } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);

    // `serve` has no dev sign-in at all.
    let resp = client.get(app.url("/auth/dev")).send().await.expect("dev");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = client
        .post(app.url("/auth/dev"))
        .form(&[("staff", "demo-admin"), ("role", "admin")])
        .send()
        .await
        .expect("dev");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Signing out ends the session.
    let resp = client
        .get(app.url("/auth/logout"))
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), StatusCode::OK);
    let session = session_of(&app, &client).await;
    assert_eq!(session["signedIn"], false, "{session}");
    let (status, _) = graphql_with_cookie(&app, &client, "{ viewer { subject } }").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
on_both_databases!(signs_in_and_queries_with_the_session_cookie);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_asks_to_sign_in_again() {
    let provider = start_provider().await;
    let app = app_with_sign_in(Backend::Sqlite, &provider, |c| {
        c.session_ttl = Duration::from_secs(1);
    })
    .await;
    let client = browser();
    sign_in(&app, &client, "fiona").await;
    let (status, body) = graphql_with_cookie(&app, &client, "{ viewer { subject } }").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["viewer"]["subject"], "fiona");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = graphql_with_cookie(&app, &client, "{ viewer { subject } }").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("session has ended")),
        "{body}"
    );
    let session = session_of(&app, &client).await;
    assert_eq!(session["signedIn"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_foreign_callback_is_refused() {
    let provider = start_provider().await;
    let app = app_with_sign_in(Backend::Sqlite, &provider, |_| {}).await;
    let client = browser();
    // A callback without a sign-in started in this browser.
    let resp = client
        .get(app.url("/auth/callback?code=abc&state=xyz"))
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // A sign-in started here, answered with another state.
    let resp = client
        .get(app.url("/auth/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers()[LOCATION]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(location.starts_with(&provider.issuer), "{location}");
    for needed in [
        "code_challenge_method=S256",
        "state=",
        "nonce=",
        "code_challenge=",
    ] {
        assert!(location.contains(needed), "{needed} in {location}");
    }
    let resp = client
        .get(app.url("/auth/callback?code=abc&state=not-the-state"))
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let text = resp.text().await.unwrap_or_default();
    assert!(text.contains("state mismatch"), "{text}");
    // Nobody is signed in.
    let session = session_of(&app, &client).await;
    assert_eq!(session["signedIn"], false);
    // Return paths stay on this server.
    let resp = client
        .get(app.url("/auth/login?return_to=//evil.example/x"))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_jwt_access_tokens_are_bearer_tokens() {
    let provider = start_provider().await;
    let app = app_with_sign_in(Backend::Sqlite, &provider, |c| {
        c.service_clients = vec![SERVICE_ID.into()];
    })
    .await;
    let token: Value = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(SERVICE_ID, Some(SERVICE_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", "backplane"),
            ("scope", "backplane:read:customers"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let access = token["access_token"].as_str().expect("access token");
    assert_eq!(access.split('.').count(), 3, "a JWT: {token}");
    let (status, body) = app
        .graphql_as(
            Some(access),
            "{ viewer { subject permissions } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["viewer"]["subject"], SERVICE_ID, "{body}");
    assert_eq!(
        body["data"]["viewer"]["permissions"],
        json!(["read:customers"]),
        "{body}"
    );
}
