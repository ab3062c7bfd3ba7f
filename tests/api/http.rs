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

/// Sends `request` as written (Host and all) over a new connection and reads
/// the answer until the server closes it: status and body.
async fn raw_request(app: &TestApp, request: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("answered within 10 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_answers_loopback_host_names_only() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Dev, |c| c.oidc = None).await;
    let port = app.addr.port();
    let body = r#"{"query":"{ viewer { subject roles } }"}"#;
    let graphql = |host: &str| {
        format!(
            "POST /graphql HTTP/1.1\r\n{host}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let get =
        |path: &str, host: &str| format!("GET {path} HTTP/1.1\r\n{host}Connection: close\r\n\r\n");

    // A name that resolved to 127.0.0.1 for the browser (DNS rebinding), and
    // names that only look like loopback: refused on every route, probes too.
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        "2130706433".to_owned(),
        format!("[::ffff:7f00:1]x:{port}"),
        format!("localhost:{port}@evil.example"),
        String::new(),
    ] {
        let header = format!("Host: {host}\r\n");
        for request in [
            graphql(&header),
            get("/graphql?query=%7B__typename%7D", &header),
            get("/playground", &header),
            get("/auth/session", &header),
            get("/auth/dev", &header),
            get("/auth/login", &header),
            get("/healthz", &header),
            get("/readyz", &header),
            get("/metrics", &header),
        ] {
            let (status, body) = raw_request(&app, &request).await;
            assert_eq!(status, 403, "Host: {host}\n{request}\n{body}");
            assert_eq!(code(&body), "FORBIDDEN", "Host: {host}\n{body}");
            assert!(body.get("data").is_none(), "{body}");
        }
    }
    // No Host at all, or two of them.
    for headers in [
        String::new(),
        format!("Host: localhost:{port}\r\nHost: evil.example\r\n"),
    ] {
        let (status, body) = raw_request(&app, &graphql(&headers)).await;
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert_eq!(code(&body), "FORBIDDEN", "{body}");
    }
    // A request target naming another host is refused whatever Host says.
    let (status, body) = raw_request(
        &app,
        &format!("GET http://evil.example/healthz HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(code(&body), "FORBIDDEN", "{body}");

    // Loopback, by name or address, with or without the port.
    for host in [
        format!("localhost:{port}"),
        "localhost".to_owned(),
        "LocalHost".to_owned(),
        format!("playground.localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("127.1.2.3:{port}"),
        format!("[::1]:{port}"),
        "[::1]".to_owned(),
    ] {
        let header = format!("Host: {host}\r\n");
        let (status, body) = raw_request(&app, &graphql(&header)).await;
        assert_eq!(status, 200, "Host: {host}: {body}");
        assert_eq!(body["data"]["viewer"]["subject"], "demo-admin", "{body}");
        let (status, _) = raw_request(&app, &get("/healthz", &header)).await;
        assert_eq!(status, 200, "Host: {host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_refuses_cross_site_requests_that_would_act_as_the_demo_admin() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Dev, |c| c.oidc = None).await;
    let own = app.url("").trim_end_matches('/').to_owned();
    let status_of_org_1 = || async {
        let resp = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ organization(id: \"org_1\") { status } }" }))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        body["data"]["organization"]["status"].clone()
    };
    let before = status_of_org_1().await;
    let churn = r#"{"query":"mutation { bulkUpdateOrganizationStatus(input: { ids: [\"org_1\"], status: CHURNED, reason: \"cross-site\" }) { changed } }"}"#;
    let attempts: [(&str, &[(&str, &str)]); 7] = [
        (
            "origin",
            &[
                ("origin", "https://evil.example"),
                ("content-type", "application/json"),
            ],
        ),
        (
            "null origin",
            &[("origin", "null"), ("content-type", "application/json")],
        ),
        (
            "cross-site fetch",
            &[
                ("sec-fetch-site", "cross-site"),
                ("content-type", "application/json"),
            ],
        ),
        (
            "same-site fetch",
            &[
                ("sec-fetch-site", "same-site"),
                ("content-type", "application/json"),
            ],
        ),
        ("text body", &[("content-type", "text/plain")]),
        (
            "form",
            &[("content-type", "application/x-www-form-urlencoded")],
        ),
        ("no content type", &[]),
    ];
    for (what, headers) in attempts {
        let mut req = app.client.post(app.url("/graphql")).body(churn);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 403, "{what}");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(code(&body), "FORBIDDEN", "{what}: {body}");
        assert!(body.get("data").is_none(), "{what}: {body}");
    }
    // A cross-site GET reads nothing either.
    let resp = app
        .client
        .get(app.url("/graphql?query=%7Bviewer%7Bsubject%7D%7D"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 403);
    assert_eq!(status_of_org_1().await, before);

    // The playground's own requests, and a developer's curl, still work.
    for headers in [
        vec![("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "none")],
        vec![],
    ] {
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ viewer { subject } }" }));
        for (name, value) in &headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 200, "{headers:?}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["data"]["viewer"]["subject"], "demo-admin", "{body}");
    }
}
