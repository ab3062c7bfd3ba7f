//! Where rights come from: a service identity's `backplane:<permission>`
//! scopes (only clients of `BACKPLANE_SERVICE_CLIENTS`, never the audit log),
//! a person's roles alone (scopes on a person's token are ignored), roles
//! from the role map alone when there is one, and no token without a
//! subject. Tokens come from the real OpenID provider of the tests
//! (`tests/oidc-provider`: client credentials, and a person's authorization
//! code flow with a resource indicator) and from the test issuer.

use backplane::config::{Config, Mode};
use backplane::identity::oidc::OidcSettings;
use backplane::policy::Role;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::{Backend, TestApp, spawn_app_configured};
use crate::on_both_databases;
use crate::sign_in::{
    CLIENT_ID, CLIENT_SECRET, Provider, SERVICE_ID, SERVICE_SECRET, browser, follow, resolve,
    start_provider_with,
};

/// Every Backplane permission as a scope, the audit log's included.
const EVERY_SCOPE: &str = "backplane:read:customers backplane:read:billing backplane:read:cost_data \
     backplane:read:internal_flags backplane:write:internal_flags backplane:write:tickets \
     backplane:write:invoices backplane:bulk:organizations backplane:read:audit_log";

/// The provider, with the script client allowed every scope.
async fn provider() -> Provider {
    start_provider_with(&[("SERVICE_SCOPES", EVERY_SCOPE)]).await
}

/// Backplane trusting `provider`'s access tokens (audience `backplane`).
async fn app_trusting(
    backend: Backend,
    provider: &Provider,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let issuer = provider.issuer.clone();
    spawn_app_configured(backend, Mode::Serve, move |c| {
        c.oidc = Some(OidcSettings::new(issuer, "backplane"));
        adjust(c);
    })
    .await
}

/// A client-credentials token of the script client for `scope`; returns the
/// access token and the scopes the provider says it granted.
async fn client_credentials(provider: &Provider, scope: &str) -> (String, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(SERVICE_ID, Some(SERVICE_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status(), StatusCode::OK);
    let token: Value = resp.json().await.expect("json");
    (
        token["access_token"]
            .as_str()
            .expect("access token")
            .to_owned(),
        token["scope"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Signs `login` in at the provider through the browser client (authorization
/// code, PKCE, `resource=backplane`) asking for `scope`, and exchanges the
/// code: returns the person's JWT access token for Backplane and the scopes
/// the provider says it granted.
async fn person_access_token(provider: &Provider, login: &str, scope: &str) -> (String, String) {
    const REDIRECT_URI: &str = "http://127.0.0.1/auth/callback";
    let client = browser();
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut authorize = reqwest::Url::parse(&format!("{}/auth", provider.issuer)).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("resource", "backplane")
        .append_pair("state", "state-1")
        .append_pair("nonce", "nonce-1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let (url, page) = follow(&client, authorize.to_string()).await;
    assert_eq!(page.status(), StatusCode::OK, "the login page at {url}");
    let resp = client
        .post(format!("{url}/login"))
        .form(&[("login", login)])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // Redirects up to the relying party's callback (nothing listens there:
    // the code is read from the Location).
    let mut next = resolve(&url, resp.headers()[LOCATION].to_str().expect("location"));
    for _ in 0..5 {
        if next.starts_with(REDIRECT_URI) {
            break;
        }
        let resp = client.get(&next).send().await.expect("redirect");
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "at {next}");
        next = resolve(&next, resp.headers()[LOCATION].to_str().expect("location"));
    }
    let callback = reqwest::Url::parse(&next).expect("callback url");
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {next}"));
    let resp = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status(), StatusCode::OK);
    let token: Value = resp.json().await.expect("json");
    let access = token["access_token"].as_str().expect("access token");
    assert_eq!(access.split('.').count(), 3, "a JWT access token: {token}");
    (
        access.to_owned(),
        token["scope"].as_str().unwrap_or_default().to_owned(),
    )
}

const VIEWER: &str = "{ viewer { subject kind roles permissions } }";

/// Asserts that `query` fails validation as naming a field that does not
/// exist for the caller.
async fn assert_unknown_field(app: &TestApp, token: &str, query: &str) {
    let (status, body) = app.graphql_as(Some(token), query, json!({})).await;
    assert_eq!(status, 200, "{query}: {body}");
    assert!(body["data"].is_null(), "{query}: data returned: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Unknown field"), "{query}: {body}");
}

async fn a_listed_service_client_gets_its_scopes_but_never_the_audit_log(backend: Backend) {
    let provider = provider().await;
    let app = app_trusting(backend, &provider, |c| {
        c.service_clients = vec![SERVICE_ID.into()];
    })
    .await;
    let (token, granted) = client_credentials(
        &provider,
        "backplane:read:customers backplane:read:cost_data backplane:read:audit_log",
    )
    .await;
    assert!(
        granted.contains("backplane:read:audit_log"),
        "the provider granted the audit log scope: {granted}"
    );

    let (status, body) = app.graphql_as(Some(&token), VIEWER, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["viewer"],
        json!({
            "subject": SERVICE_ID,
            "kind": "SERVICE",
            "roles": [],
            "permissions": ["read:customers", "read:cost_data"],
        })
    );
    // The scopes work: a cost field is read.
    let (status, body) = app
        .graphql_as(
            Some(&token),
            "{ organizations(first: 2) { nodes { id monthlyCostCents } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let nodes = body["data"]["organizations"]["nodes"]
        .as_array()
        .expect("nodes");
    assert_eq!(nodes.len(), 2, "{body}");
    assert!(
        nodes.iter().all(|n| n["monthlyCostCents"].is_number()),
        "{body}"
    );
    // The audit log does not exist for it.
    assert_unknown_field(&app, &token, "{ auditEvents(first: 1) { nodes { id } } }").await;
}
on_both_databases!(a_listed_service_client_gets_its_scopes_but_never_the_audit_log);

async fn a_client_that_is_not_listed_gets_nothing_from_its_scopes(backend: Backend) {
    let provider = provider().await;
    let app = app_trusting(backend, &provider, |c| {
        c.service_clients = vec!["another-script".into()];
    })
    .await;
    let (token, granted) = client_credentials(
        &provider,
        "backplane:read:customers backplane:read:cost_data",
    )
    .await;
    assert_eq!(granted, "backplane:read:customers backplane:read:cost_data");

    let (status, body) = app.graphql_as(Some(&token), VIEWER, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["viewer"],
        json!({ "subject": SERVICE_ID, "kind": "STAFF", "roles": [], "permissions": [] })
    );
    assert_unknown_field(&app, &token, "{ organizations(first: 1) { nodes { id } } }").await;
}
on_both_databases!(a_client_that_is_not_listed_gets_nothing_from_its_scopes);

async fn a_person_who_asks_for_scopes_gets_only_what_their_roles_grant(backend: Backend) {
    let provider = provider().await;
    // The browser client is listed too (a mistake an operator could make): a
    // person's token through it still names a person.
    let app = app_trusting(backend, &provider, |c| {
        c.service_clients = vec![SERVICE_ID.into(), CLIENT_ID.into()];
    })
    .await;
    let (token, granted) = person_access_token(
        &provider,
        "alice",
        &format!("openid email profile {EVERY_SCOPE}"),
    )
    .await;
    for scope in ["backplane:read:cost_data", "backplane:read:audit_log"] {
        assert!(
            granted.contains(scope),
            "the provider granted {scope}: {granted}"
        );
    }

    let (status, body) = app.graphql_as(Some(&token), VIEWER, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["viewer"],
        json!({
            "subject": "alice",
            "kind": "STAFF",
            "roles": ["support"],
            "permissions": ["read:customers", "read:billing", "write:tickets", "write:trials"],
        })
    );
    // What support may read works; what only the scopes named does not exist.
    let (status, body) = app
        .graphql_as(
            Some(&token),
            "{ organizations(first: 1) { nodes { id name } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_unknown_field(
        &app,
        &token,
        "{ organizations(first: 1) { nodes { monthlyCostCents } } }",
    )
    .await;
    assert_unknown_field(&app, &token, "{ auditEvents(first: 1) { nodes { id } } }").await;
}
on_both_databases!(a_person_who_asks_for_scopes_gets_only_what_their_roles_grant);

async fn a_persons_token_with_scopes_and_no_email_gets_a_persons_limits(backend: Backend) {
    let app = spawn_app_configured(backend, Mode::Serve, |c| {
        c.limits.people.max_root_fields = 2;
        c.limits.services.max_root_fields = 50;
        c.service_clients = vec!["ops-scripts".into()];
    })
    .await;
    // An access token as Okta or Keycloak give a person without the email
    // scope: no `email`, a client, and scopes.
    let mut claims = app.issuer.claims("alice", &["support"]);
    claims.as_object_mut().map(|c| c.remove("email"));
    claims["client_id"] = json!("ops-scripts");
    claims["scope"] = json!("backplane:read:customers backplane:read:cost_data");
    let token = app.issuer.sign(claims);
    let (status, body) = app
        .graphql_as(Some(&token), "{ viewer { kind permissions } }", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["viewer"],
        json!({ "kind": "STAFF", "permissions": ["read:customers", "read:billing", "write:tickets", "write:trials"] })
    );
    let (status, body) = app
        .graphql_as(
            Some(&token),
            "{ a: viewer { subject } b: viewer { subject } c: viewer { subject } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED",
        "{body}"
    );
}
on_both_databases!(a_persons_token_with_scopes_and_no_email_gets_a_persons_limits);

async fn a_group_named_admin_grants_nothing_when_the_role_map_does_not_map_it(backend: Backend) {
    let app = spawn_app_configured(backend, Mode::Serve, |c| {
        if let Some(oidc) = c.oidc.as_mut() {
            oidc.roles_claim = "groups".into();
            oidc.role_map = [("cs-team".to_owned(), Role::Support)]
                .into_iter()
                .collect();
        }
    })
    .await;
    let mut claims = app.issuer.claims("mallory", &[]);
    claims["groups"] = json!(["admin", "auditor"]);
    let token = app.issuer.sign(claims);
    let (status, body) = app.graphql_as(Some(&token), VIEWER, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["viewer"],
        json!({ "subject": "mallory", "kind": "STAFF", "roles": [], "permissions": [] })
    );
    assert_unknown_field(&app, &token, "{ auditEvents(first: 1) { nodes { id } } }").await;

    // A mapped group does grant its role.
    let mut claims = app.issuer.claims("carol", &[]);
    claims["groups"] = json!(["cs-team", "admin"]);
    let token = app.issuer.sign(claims);
    let (_, body) = app.graphql_as(Some(&token), VIEWER, json!({})).await;
    assert_eq!(
        body["data"]["viewer"]["roles"],
        json!(["support"]),
        "{body}"
    );
}
on_both_databases!(a_group_named_admin_grants_nothing_when_the_role_map_does_not_map_it);

async fn a_token_without_a_subject_is_refused_with_401(backend: Backend) {
    let app = spawn_app_configured(backend, Mode::Serve, |c| {
        c.service_clients = vec!["ops-scripts".into()];
    })
    .await;
    for subject in ["", "   ", "\t"] {
        let mut claims = app.issuer.claims(subject, &["admin"]);
        claims["sub"] = json!(subject);
        let token = app.issuer.sign(claims);
        let resp = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": "{ viewer { subject roles } }" }))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "sub {subject:?}");
        let challenge = crate::helpers::www_authenticate(&resp);
        assert!(
            challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
            "sub {subject:?}: {challenge}"
        );
        let body: Value = resp.json().await.expect("json");
        assert!(body.get("data").is_none(), "sub {subject:?}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "sub {subject:?}: {body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("sub")),
            "sub {subject:?}: {body}"
        );
    }
}
on_both_databases!(a_token_without_a_subject_is_refused_with_401);
