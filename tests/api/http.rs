//! GraphQL over HTTP, status code by status code, and the working group's own
//! conformance audit (`graphql-http`'s `auditServer`, in `tests/conformance/`).
//! Every hostile request is refused before anything runs, nothing changes, and
//! the server answers normally afterwards.

use std::time::Duration;

use backplane::config::Mode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_configured};

const GQL: &str = "application/graphql-response+json";

async fn post(app: &TestApp, token: &str, accept: &str, body: Value) -> (u16, String, Value) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header(ACCEPT, accept)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let media = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, media, resp.json().await.unwrap_or(Value::Null))
}

async fn raw(
    app: &TestApp,
    token: &str,
    content_type: Option<&str>,
    accept: &str,
    body: &str,
) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header(ACCEPT, accept)
        .body(body.to_owned());
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

async fn organization_status(app: &TestApp) -> Value {
    app.query("{ organization(id: \"org_1\") { status } }", json!({}))
        .await["organization"]["status"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_codes_follow_graphql_over_http() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.issuer.token("admin-1", &["admin"]);
    let before = organization_status(&app).await;
    let suspend = "mutation { bulkUpdateOrganizationStatus(input: { ids: [\"org_1\"], status: SUSPENDED, reason: \"x\" }) { changed } }";

    // Media types by Accept.
    let q = json!({ "query": "{ __typename }" });
    let (s, media, _) = post(&app, &token, GQL, q.clone()).await;
    assert_eq!(
        (s, media.as_str()),
        (200, "application/graphql-response+json; charset=utf-8")
    );
    let (s, media, _) = post(&app, &token, "application/json", q.clone()).await;
    assert_eq!(
        (s, media.as_str()),
        (200, "application/json; charset=utf-8")
    );
    let (s, media, _) = post(&app, &token, "*/*", q.clone()).await;
    assert_eq!(
        (s, media.as_str()),
        (200, "application/json; charset=utf-8")
    );
    let (s, _, body) = post(&app, &token, "text/html", q.clone()).await;
    assert_eq!((s, code(&body)), (406, "NOT_ACCEPTABLE"));

    // Bodies that are not JSON: 415 before anything is parsed (and the CSRF
    // door closed).
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/json; charset=latin1"),
        Some("application/graphql"),
        None,
    ] {
        let (s, body) = raw(
            &app,
            &token,
            ct,
            GQL,
            &format!("{{\"query\":\"{suspend}\"}}"),
        )
        .await;
        assert_eq!((s, code(&body)), (415, "UNSUPPORTED_MEDIA_TYPE"), "{ct:?}");
    }

    // Malformed JSON: 400 under both.
    for accept in [GQL, "application/json"] {
        let (s, body) = raw(
            &app,
            &token,
            Some("application/json"),
            accept,
            "{\"query\": ",
        )
        .await;
        assert_eq!((s, code(&body)), (400, "BAD_REQUEST"), "{accept}");
    }

    // Bad parameters, parse and validation errors, unknown operations, wrong
    // variable types: 400 without `data` under graphql-response+json, 200 with
    // `errors` under application/json.
    let bad_requests = [
        json!({ "qeury": "{ __typename }" }),
        json!({ "query": 42 }),
        json!({ "query": "{ __typename }", "variables": "x" }),
        json!({ "query": "{ __typename }", "operationName": 1 }),
        json!({ "query": "{ __typename }", "extensions": [] }),
        json!({ "query": "{" }),
        json!({ "query": "{ noSuchField }" }),
        json!({ "query": "query A { __typename }", "operationName": "B" }),
        json!({ "query": "query A { __typename } query B { __typename }" }),
        json!({ "query": "query($id: ID!) { organization(id: $id) { id } }", "variables": { "id": { "x": 1 } } }),
        json!({ "query": "query($id: ID!) { organization(id: $id) { id } }" }),
        json!({ "query": suspend.replace("SUSPENDED", "NOPE") }),
    ];
    for request in &bad_requests {
        let (s, _, body) = post(&app, &token, GQL, request.clone()).await;
        assert_eq!(s, 400, "{request} → {body}");
        assert!(body.get("data").is_none(), "{request} → {body}");
        assert!(body["errors"].is_array(), "{body}");
        let (s, _, body) = post(&app, &token, "application/json", request.clone()).await;
        assert_eq!(s, 200, "{request} → {body}");
        assert!(body["errors"].is_array(), "{request} → {body}");
    }

    // GET: queries run, mutations are 405 whatever the media type.
    let resp = app
        .client
        .get(app.url("/graphql?query=%7B%20viewer%20%7B%20subject%20%7D%20%7D"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["data"]["viewer"]["subject"], "admin-1");
    for accept in [GQL, "application/json"] {
        let resp = app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", suspend)])
            .bearer_auth(&token)
            .header(ACCEPT, accept)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 405, "{accept}");
        assert_eq!(resp.headers()["allow"], "POST");
    }
    let resp = app
        .client
        .put(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&q)
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), 405);

    // Too large a body: 413, read no further.
    let huge =
        json!({ "query": "{ __typename }", "variables": { "x": "a".repeat(2 * 1024 * 1024) } });
    let (s, _, _) = post(&app, &token, GQL, huge).await;
    assert_eq!(s, 413);

    // Nothing changed, and the server answers as before.
    assert_eq!(organization_status(&app).await, before);
    let resp = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_in_one_response_are_capped() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        c.limits.services.max_root_fields = 100;
        c.service_clients = vec!["ops-scripts".into()];
    })
    .await;
    let mut claims = app.issuer.claims("ops-scripts", &[]);
    claims["client_id"] = json!("ops-scripts");
    claims["scope"] = json!("backplane:read:customers");
    claims.as_object_mut().map(|c| c.remove("email"));
    let service = app.issuer.sign(claims);
    let fields: String = (0..80)
        .map(|i| format!("a{i}: organization(id: \"usr_{i}\") {{ id }} "))
        .collect();
    let (s, _, body) = post(
        &app,
        &service,
        GQL,
        json!({ "query": format!("{{ {fields} }}") }),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 51, "{body}");
    assert!(
        errors[50]["message"]
            .as_str()
            .is_some_and(|m| m.contains("30 more errors")),
        "{}",
        errors[50]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_over_http_conformance_audit_passes() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Dev, |c| c.oidc = None).await;
    let root = env!("CARGO_MANIFEST_DIR");
    assert!(
        std::path::Path::new(root)
            .join("tests/conformance/node_modules")
            .exists(),
        "run `npm ci --prefix tests/conformance` first (scripts/test does)"
    );
    let run = tokio::process::Command::new("node")
        .arg(format!("{root}/tests/conformance/audit.mjs"))
        .arg(app.url("/graphql"))
        .arg("--strict")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the audit ends within 2 minutes")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "conformance audit failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("0 MUST failed, 0 SHOULD not met"),
        "{stdout}"
    );
}
