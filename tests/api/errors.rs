//! What an error tells a client: a stable `extensions.code` for a document
//! that does not parse and for one that does not validate, over `POST` and
//! `GET`, with the status GraphQL over HTTP gives each media type; and what
//! a failure of the store tells the operator: what happened, logged once.

use std::time::Duration;

use reqwest::header::ACCEPT;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

use crate::helpers::{Backend, SEED_ORGS, TestApp, spawn_app};
use crate::on_both_databases;

const GQL: &str = "application/graphql-response+json";

/// `POST`s `body` with `accept`; returns status and body.
async fn post(app: &TestApp, token: &str, accept: &str, body: &Value) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header(ACCEPT, accept)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `GET`s `query` (and `variables`, as JSON) with `accept`.
async fn get(
    app: &TestApp,
    token: &str,
    accept: &str,
    query: &str,
    variables: Option<&Value>,
) -> (u16, Value) {
    let mut params = vec![("query", query.to_owned())];
    if let Some(v) = variables {
        params.push(("variables", v.to_string()));
    }
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&params)
        .bearer_auth(token)
        .header(ACCEPT, accept)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Every way of sending `query`: POST and GET, under both media types. Each
/// answer must be a request error (no `data`, status 400 under
/// graphql-response+json and 200 under application/json) whose every error
/// carries `code`.
async fn assert_request_error(
    app: &TestApp,
    token: &str,
    query: &str,
    variables: Option<Value>,
    code: &str,
) {
    for (accept, expected_status) in [(GQL, 400), ("application/json", 200)] {
        let mut body = json!({ "query": query });
        if let Some(v) = &variables {
            body["variables"] = v.clone();
        }
        let answers = [
            ("POST", post(app, token, accept, &body).await),
            (
                "GET",
                get(app, token, accept, query, variables.as_ref()).await,
            ),
        ];
        for (method, (status, body)) in answers {
            let what = format!("{method} {accept} {query}");
            assert_eq!(status, expected_status, "{what}: {body}");
            assert!(body.get("data").is_none(), "{what}: {body}");
            let errors = body["errors"].as_array().expect("errors");
            assert!(!errors.is_empty(), "{what}: {body}");
            for error in errors {
                assert_eq!(error["extensions"]["code"], code, "{what}: {body}");
            }
        }
    }
}

async fn a_document_that_does_not_parse_is_graphql_parse_failed(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.issuer.token("errors-admin", &["admin"]);
    for query in [
        "{",
        "{ organizations(first: ) { nodes { id } } }",
        "query {}",
    ] {
        assert_request_error(&app, &token, query, None, "GRAPHQL_PARSE_FAILED").await;
    }
}
on_both_databases!(a_document_that_does_not_parse_is_graphql_parse_failed);

async fn a_document_that_does_not_validate_is_graphql_validation_failed(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.issuer.token("errors-admin", &["admin"]);
    let by_id = "query($id: ID!) { organization(id: $id) { id } }";
    let cases: [(&str, Option<Value>); 5] = [
        ("{ noSuchField }", None),
        ("{ organization(id: \"org_1\") { id noSuchField } }", None),
        // Two operations and none named to run.
        ("query A { __typename } query B { __typename }", None),
        // A required variable without a value, and one of the wrong type.
        (by_id, None),
        (by_id, Some(json!({ "id": { "x": 1 } }))),
    ];
    for (query, variables) in cases {
        assert_request_error(&app, &token, query, variables, "GRAPHQL_VALIDATION_FAILED").await;
    }
    // Once a document is known valid, a wrongly typed variable is the
    // executor's own finding: it carries the same code.
    let (status, body) = post(
        &app,
        &token,
        GQL,
        &json!({ "query": by_id, "variables": { "id": "org_1" } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["organization"]["id"], "org_1", "{body}");
    assert_request_error(
        &app,
        &token,
        by_id,
        Some(json!({ "id": { "x": 1 } })),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
}
on_both_databases!(a_document_that_does_not_validate_is_graphql_validation_failed);

/// One error of each kind, each answered with its code from the closed
/// set (and the field or argument where one is to blame); the message of a
/// parse error is one line.
async fn every_kind_of_error_has_its_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.issuer.token("errors-admin", &["admin"]);
    let one = |body: &Value| body["errors"][0].clone();

    // Parse: one line, where and what.
    let (_, body) = post(
        &app,
        &admin,
        "application/json",
        &json!({ "query": "{ organizations { nodes { id }" }),
    )
    .await;
    let e = one(&body);
    assert_eq!(e["extensions"]["code"], "GRAPHQL_PARSE_FAILED", "{body}");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains('\n') && message.starts_with("Syntax error at line 1, column "),
        "{message}"
    );

    // Validation: the unknown name the client sent is repeated, nothing else.
    let (_, body) = post(
        &app,
        &admin,
        "application/json",
        &json!({ "query": "{ organizations { nodes { idx } } }" }),
    )
    .await;
    let e = one(&body);
    assert_eq!(
        e["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{body}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("\"idx\" on type \"Organization\""),
        "{body}"
    );

    // Coercion of a variable, and of an argument's literal.
    let (_, body) = post(&app, &admin, "application/json", &json!({ "query": "query($n: Int) { organizations(first: $n) { totalCount } }", "variables": { "n": "ten" } })).await;
    assert_eq!(
        one(&body)["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED",
        "{body}"
    );
    let (_, body) = post(&app, &admin, "application/json", &json!({ "query": "{ organizations(filter: {createdAt: {from: \"soon\"}}) { totalCount } }" })).await;
    assert_eq!(one(&body)["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(one(&body)["path"], json!(["organizations"]), "{body}");

    // A value the resolver refuses: the argument named.
    let (_, body) = post(
        &app,
        &admin,
        "application/json",
        &json!({ "query": "{ organizations(first: 100000) { totalCount } }" }),
    )
    .await;
    assert_eq!(one(&body)["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(one(&body)["extensions"]["argument"], "first", "{body}");

    // A limit.
    let aliases: String = (0..40).map(|i| format!("a{i}: __typename ")).collect();
    let (_, body) = post(
        &app,
        &admin,
        "application/json",
        &json!({ "query": format!("{{ {aliases} }}") }),
    )
    .await;
    assert_eq!(one(&body)["extensions"]["code"], "LIMIT_EXCEEDED", "{body}");

    // Authentication: no token at all.
    let (status, body) = app.graphql_as(None, "{ __typename }", json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        one(&body)["extensions"]["code"],
        "UNAUTHENTICATED",
        "{body}"
    );

    // A business rule: an impossible status change.
    let (_, body) = post(&app, &admin, "application/json", &json!({
        "query": "query($s: [OrganizationStatus!]) { organizations(first: 1, filter: {status: $s}) { nodes { id version } } }",
        "variables": { "s": ["CHURNED"] } })).await;
    let churned = body["data"]["organizations"]["nodes"][0].clone();
    assert!(churned["id"].is_string(), "{body}");
    let (_, body) = post(&app, &admin, "application/json", &json!({
        "query": "mutation($id: ID!, $v: Int!) { setOrganizationStatus(input: {id: $id, status: SUSPENDED, reason: \"test\", expectedVersion: $v}) { organization { status } } }",
        "variables": { "id": churned["id"], "v": churned["version"] } })).await;
    assert_eq!(one(&body)["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(one(&body)["extensions"]["argument"], "status", "{body}");

    // Every one of them is from the closed set the README lists.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    for code in [
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "BAD_USER_INPUT",
        "LIMIT_EXCEEDED",
        "UNAUTHENTICATED",
    ] {
        assert!(
            readme.contains(&format!("| `{code}` |")),
            "README lists {code}"
        );
    }
}
on_both_databases!(every_kind_of_error_has_its_code);

/// A field hidden from the caller fails validation with the code, and the
/// whole answer, of a field that never existed.
async fn a_hidden_field_fails_validation_as_a_never_existing_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let support = app.issuer.token("errors-support", &["support"]);
    let document = "{ organizations(first: 1) { nodes { id monthlyCostCents } } }";
    crate::hidden_schema::same_as_never_existing(
        &app,
        &support,
        "support",
        document,
        &["monthlyCostCents"],
    )
    .await;
    assert_request_error(&app, &support, document, None, "GRAPHQL_VALIDATION_FAILED").await;
}
on_both_databases!(a_hidden_field_fails_validation_as_a_never_existing_one);

/// `backplane seed` on a database that has data changes nothing and fails,
/// saying the database is already seeded.
async fn seeding_a_seeded_database_fails_saying_it_is_seeded(backend: Backend) {
    let db = crate::helpers::database(backend).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_backplane"))
        .args(["seed", "--orgs", "3", "--database-url", &db.url])
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("seed ends within a minute")
        .expect("run backplane seed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the database is already seeded: it has {SEED_ORGS} organizations"
        )),
        "{stderr}"
    );
    let raw = Database::connect(db.url.as_str()).await.expect("connect");
    let count = raw
        .query_one_raw(Statement::from_string(
            raw.get_database_backend(),
            "SELECT COUNT(*) AS n FROM organizations",
        ))
        .await
        .expect("count")
        .and_then(|row| row.try_get::<i64>("", "n").ok());
    assert_eq!(count, Some(SEED_ORGS as i64));
    raw.close().await.ok();
}
on_both_databases!(seeding_a_seeded_database_fails_saying_it_is_seeded);

/// Twenty organizations' plans come from one statement; when it fails, each
/// of the twenty fields is an `INTERNAL` error naming the request, and the
/// server logs the failure once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_statement_shared_by_many_resolvers_is_logged_once() {
    let db = crate::helpers::database(Backend::Sqlite).await;
    let raw = Database::connect(db.url.as_str()).await.expect("connect");
    // The plans loader's statement joins `plans`: every batch of it fails.
    raw.execute_unprepared("ALTER TABLE plans RENAME TO plans_gone")
        .await
        .expect("rename plans");
    raw.close().await.ok();

    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("server.log");
    let port = crate::sign_in::free_port();
    let mut child = crate::helpers::backplane_process(&log_path)
        .args(["--log-format", "json", "dev"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &db.url])
        .env_remove("RUST_LOG")
        .spawn()
        .expect("start backplane dev");
    let server_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let (up, _, _) = crate::helpers::readyz_until(
        &client,
        &format!("{base}/readyz"),
        200,
        Duration::from_secs(30),
    )
    .await;
    assert!(up, "backplane dev did not get ready: {}", server_log());

    let resp = client
        .post(format!("{base}/graphql"))
        .header("x-request-id", "shared-failure-1")
        .json(&json!({ "query": "{ organizations(first: 20) { nodes { id plan { code } } } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 20, "{body}");
    for error in errors {
        assert_eq!(error["extensions"]["code"], "INTERNAL", "{body}");
        assert_eq!(
            error["extensions"]["requestId"], "shared-failure-1",
            "{body}"
        );
        assert_eq!(error["path"][3], "plan", "{body}");
    }
    assert_eq!(
        body["data"]["organizations"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(20),
        "{body}"
    );

    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("exits within a minute")
        .expect("wait");
    let log = server_log();
    let failures: Vec<&str> = log
        .lines()
        .filter(|line| {
            serde_json::from_str::<Value>(line)
                .is_ok_and(|l| l["message"] == "database statement failed")
        })
        .collect();
    assert_eq!(failures.len(), 1, "{log}");
}
