//! What operators see: request ids, `/metrics`, failures of the database.

use std::time::Duration;

use backplane::config::Mode;
use serde_json::json;

use crate::helpers::{Backend, TestApp, TestIssuer, spawn_app, spawn_app_configured};

async fn readyz(app: &TestApp) -> u16 {
    app.client
        .get(app.url("/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_identity_provider_is_retried_and_cached_keys_keep_working() {
    // An address nothing listens on yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let issuer_url = format!("http://{addr}");
    let app = spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        c.oidc = Some(backplane::identity::oidc::OidcSettings::new(
            issuer_url.clone(),
            crate::helpers::AUDIENCE,
        ));
    })
    .await;
    // Starts anyway, and says it is not ready.
    assert_eq!(readyz(&app).await, 503);
    let resp = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200);

    // The provider comes up: the retry with backoff finds it.
    let issuer = TestIssuer::start_on(&addr.to_string()).await;
    let mut ready = false;
    for _ in 0..100 {
        if readyz(&app).await == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "ready once the identity provider answers");
    let token = issuer.token("support-1", &["support"]);
    let (status, body) = app
        .graphql_as(Some(&token), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    // It goes away again: keys already loaded keep working.
    issuer.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let token = issuer.token("support-2", &["support"]);
    let (status, body) = app
        .graphql_as(Some(&token), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["viewer"]["subject"], "support-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_come_from_the_client_or_its_trace() {
    let app = spawn_app(Backend::Sqlite).await;
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-id-1")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.headers()["x-request-id"], "client-id-1");
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .expect("request");
    assert_eq!(
        resp.headers()["x-request-id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    // A hostile id is replaced, not echoed.
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\"<script>")
        .send()
        .await
        .expect("request");
    let id = resp.headers()["x-request-id"].to_str().expect("id");
    assert_eq!(id.len(), 36, "{id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_operations_statements_and_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.issuer.token("admin-1", &["admin"]);
    let (status, _) = app
        .graphql_as(
            Some(&token),
            "query MetricsProbe { organizations(first: 3) { nodes { users(first: 2) { nodes { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    app.graphql_as(Some(&token), "query MetricsBad { nope }", json!({}))
        .await;
    let text = app.metrics().await;
    for needle in [
        "backplane_graphql_operations_total{operation=\"MetricsProbe\",outcome=\"ok\"}",
        "backplane_graphql_operations_total{operation=\"MetricsBad\",outcome=\"refused\"}",
        "backplane_graphql_operation_duration_seconds_bucket{operation=\"MetricsProbe\"",
        "backplane_sql_statements_per_request_bucket",
        "backplane_graphql_errors_total{code=\"GRAPHQL_VALIDATION_FAILED\"}",
        "backplane_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"200\"}",
        "backplane_http_request_duration_seconds_bucket{route=\"/graphql\"",
        "backplane_db_pool_connections{state=\"open\"}",
        "backplane_audit_queue_depth",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

/// A collector on loopback that keeps what it is sent.
async fn fake_collector() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                if let Ok(mut k) = kept.lock() {
                    k.push(body.to_vec());
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind collector");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_go_to_an_otlp_collector() {
    let (collector, received) = fake_collector().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_backplane"))
        .args(["dev", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--database-url",
            &format!("sqlite://{}/traces.db", dir.path().display()),
        ])
        .args(["--seed-orgs", "3", "--otlp-endpoint", &collector])
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .spawn()
        .expect("start backplane");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let (up, _, _) = crate::helpers::readyz_until(
        &client,
        &format!("{base}/readyz"),
        200,
        Duration::from_secs(15),
    )
    .await;
    assert!(up, "backplane dev started");
    let resp = client
        .post(format!("{base}/graphql"))
        .header("x-request-id", "trace-me-42")
        .json(&json!({ "query": "{ viewer { subject } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    // SIGTERM: the server stops and flushes its spans before exiting.
    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("exits within a minute")
        .expect("wait");
    assert!(status.success(), "{status}");
    let bodies = received.lock().map(|b| b.clone()).unwrap_or_default();
    let all: Vec<u8> = bodies.concat();
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(!bodies.is_empty(), "the collector received spans");
    assert!(has(b"backplane"), "service name in the export");
    assert!(has(b"trace-me-42"), "the request id is a span attribute");
}
