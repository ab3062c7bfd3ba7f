//! What an error tells a client: a stable `extensions.code` for a document
//! that does not parse and for one that does not validate, over `POST` and
//! `GET`, with the status GraphQL over HTTP gives each media type.

use reqwest::header::ACCEPT;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
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
