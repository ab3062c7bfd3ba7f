//! A session belongs to the deployment that made it: a cookie minted by
//! `backplane dev`'s demo sign-in, or by a `serve` of another issuer or public
//! URL, is an ended session everywhere else, even under the same
//! `BACKPLANE_SESSION_KEY`; and where cookies are `Secure` they carry the
//! `__Host-` prefix, so no sibling host can plant or shadow them.

use backplane::config::Mode;
use reqwest::StatusCode;
use reqwest::cookie::CookieStore;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app_configured};
use crate::sign_in::{app_with_sign_in, browser_with, sign_in, start_provider};

/// The key every server of these tests shares.
const KEY: &str = "one-session-key-shared-by-every-server-here";

/// The `Set-Cookie` lines of a response.
fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// The line setting cookie `name`.
fn set_cookie<'a>(lines: &'a [String], name: &str) -> &'a str {
    lines
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {lines:?}"))
}

/// The attributes of a `Set-Cookie` line, lower-cased, the name=value left out.
fn attributes(line: &str) -> Vec<String> {
    line.split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

/// Signs in through `/auth/dev` as `staff` in `role`; returns the
/// `Set-Cookie` lines.
async fn dev_sign_in(app: &TestApp, staff: &str, role: &str) -> Vec<String> {
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(app.url("/auth/dev"))
        .form(&[("staff", staff), ("role", role)])
        .send()
        .await
        .expect("dev sign-in");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    set_cookies(&resp)
}

/// A token-less JSON POST carrying `cookie` (a `name=value` pair).
async fn graphql_with(app: &TestApp, cookie: &str, query: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header(COOKIE, cookie)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// What `/auth/session` says to a browser carrying `cookie`.
async fn session_with(app: &TestApp, cookie: &str) -> Value {
    reqwest::Client::new()
        .get(app.url("/auth/session"))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json")
}

/// The answer of a server that does not take a session: 401, asking to sign
/// in again, no data.
fn assert_ended(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["message"], "your session has ended; sign in again",
        "{body}"
    );
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_dev_sign_in_session_sealed_with_the_same_key() {
    let dev = spawn_app_configured(Backend::Sqlite, Mode::Dev, |c| {
        c.session_key = Some(KEY.into());
    })
    .await;
    // `serve` with the very same key and the same identity provider: only the
    // mode and the demo sign-in tell the sessions apart.
    let issuer = dev.issuer.settings();
    let serve = spawn_app_configured(Backend::Sqlite, Mode::Serve, move |c| {
        c.oidc = Some(issuer);
        c.session_key = Some(KEY.into());
    })
    .await;
    let lines = dev_sign_in(&dev, "demo-admin", "admin").await;
    let cookie = set_cookie(&lines, "backplane_session")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    // The dev server itself takes it, as the admin picked.
    let (status, body) = graphql_with(&dev, &cookie, "{ viewer { subject roles } }").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["viewer"]["roles"], json!(["admin"]), "{body}");

    // `serve` does not: not as the admin, not as anyone; nothing changes.
    let admin = dev.issuer.token("admin-1", &["admin"]);
    let status_of_org_1 = || async {
        let (status, body) = serve
            .graphql_as(
                Some(&admin),
                "{ organization(id: \"org_1\") { status } }",
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"]["organization"]["status"].clone()
    };
    let before = status_of_org_1().await;
    for query in [
        "{ viewer { subject roles } }",
        "{ auditEvents(first: 1) { totalCount } }",
        "mutation { bulkUpdateOrganizationStatus(input: { ids: [\"org_1\"], status: CHURNED, reason: \"dev cookie\" }) { changed } }",
    ] {
        let (status, body) = graphql_with(&serve, &cookie, query).await;
        assert_ended(status, &body);
    }
    assert_eq!(status_of_org_1().await, before);
    let session = session_with(&serve, &cookie).await;
    assert_eq!(session["signedIn"], false, "{session}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_another_issuer_or_public_url_is_refused() {
    let provider = start_provider().await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = browser_with(jar.clone());
    let home = app_with_sign_in(Backend::Sqlite, &provider, |c| {
        c.session_key = Some(KEY.into());
    })
    .await;
    sign_in(&home, &client, "alice").await;
    let cookie = jar
        .cookies(&home.url("/").parse().expect("url"))
        .and_then(|v| {
            v.to_str().ok().and_then(|all| {
                all.split("; ")
                    .find(|c| c.starts_with("backplane_session="))
                    .map(str::to_owned)
            })
        })
        .expect("a session cookie after signing in");
    let (status, body) = graphql_with(&home, &cookie, "{ viewer { subject } }").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["viewer"]["subject"], "alice", "{body}");

    // Same provider, same key, another public URL.
    let elsewhere = app_with_sign_in(Backend::Sqlite, &provider, |c| {
        c.session_key = Some(KEY.into());
    })
    .await;
    // Same public URL, same key, another issuer (the test issuer of the
    // helpers).
    let public = home.url("").trim_end_matches('/').to_owned();
    let other_issuer = spawn_app_configured(Backend::Sqlite, Mode::Serve, move |c| {
        c.public_url = Some(public);
        c.session_key = Some(KEY.into());
    })
    .await;
    for app in [&elsewhere, &other_issuer] {
        let (status, body) = graphql_with(app, &cookie, "{ viewer { subject roles } }").await;
        assert_ended(status, &body);
        let session = session_with(app, &cookie).await;
        assert_eq!(session["signedIn"], false, "{session}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_cookies_carry_the_host_prefix_and_plain_ones_do_not() {
    // Over https (the public URL says so): `__Host-`, Secure, Path=/, no Domain.
    let secure = spawn_app_configured(Backend::Sqlite, Mode::Dev, |c| {
        c.oidc = None;
        c.public_url = Some("https://backplane.example".into());
    })
    .await;
    let lines = dev_sign_in(&secure, "demo-admin", "admin").await;
    let line = set_cookie(&lines, "__Host-backplane_session");
    let attrs = attributes(line);
    assert!(attrs.iter().any(|a| a == "secure"), "{line}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{line}");
    assert!(attrs.iter().any(|a| a == "httponly"), "{line}");
    assert!(!attrs.iter().any(|a| a.starts_with("domain")), "{line}");
    assert!(
        !lines.iter().any(|c| c.starts_with("backplane_session=")),
        "{lines:?}"
    );
    let cookie = line.split(';').next().expect("name=value").to_owned();
    let (status, body) = graphql_with(&secure, &cookie, "{ viewer { roles } }").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["viewer"]["roles"], json!(["admin"]), "{body}");
    // Signing out removes it under the same name and attributes (a browser
    // ignores a `__Host-` cookie without them).
    let resp = reqwest::Client::new()
        .get(secure.url("/auth/logout"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("logout");
    let removal = set_cookies(&resp);
    let line = set_cookie(&removal, "__Host-backplane_session");
    let attrs = attributes(line);
    assert!(attrs.iter().any(|a| a == "secure"), "{line}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{line}");
    assert!(attrs.iter().any(|a| a == "max-age=0"), "{line}");
    // A cookie without the prefix (planted by a sibling host, or from before
    // the prefix) is no session here: it has ended, it is no demo admin.
    let (status, body) =
        graphql_with(&secure, "backplane_session=planted", "{ viewer { roles } }").await;
    assert_ended(status, &body);

    // The pending sign-in of `serve` over https is prefixed too.
    let provider = start_provider().await;
    let port = crate::sign_in::free_port();
    let issuer = provider.issuer.clone();
    let serve = spawn_app_configured(Backend::Sqlite, Mode::Serve, move |c| {
        c.listen = format!("127.0.0.1:{port}").parse().expect("addr");
        c.oidc = Some(backplane::identity::oidc::OidcSettings::new(
            issuer,
            "backplane",
        ));
        c.public_url = Some(format!("https://127.0.0.1:{port}"));
        c.session_key = Some(KEY.into());
        c.browser = Some(backplane::identity::browser::BrowserClientSettings {
            client_id: crate::sign_in::CLIENT_ID.into(),
            client_secret: Some(crate::sign_in::CLIENT_SECRET.into()),
            redirect_uri: format!("https://127.0.0.1:{port}/auth/callback"),
        });
    })
    .await;
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(serve.url("/auth/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let lines = set_cookies(&resp);
    let line = set_cookie(&lines, "__Host-backplane_sign_in");
    let attrs = attributes(line);
    assert!(attrs.iter().any(|a| a == "secure"), "{line}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{line}");
    assert!(!attrs.iter().any(|a| a.starts_with("domain")), "{line}");

    // Plain HTTP keeps the plain names, without Secure.
    let plain = spawn_app_configured(Backend::Sqlite, Mode::Dev, |c| c.oidc = None).await;
    let lines = dev_sign_in(&plain, "demo-support", "support").await;
    let line = set_cookie(&lines, "backplane_session");
    let attrs = attributes(line);
    assert!(!attrs.iter().any(|a| a == "secure"), "{line}");
    assert!(attrs.iter().any(|a| a == "path=/"), "{line}");
    assert!(!lines.iter().any(|c| c.starts_with("__Host-")), "{lines:?}");
}
