//! Hostile documents are refused before anything executes, and the server stays
//! up.

use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_documents_are_refused_and_the_server_survives() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.issuer.token("admin-1", &["admin"]);

    let thousand_aliases: String = (0..1000).map(|i| format!("a{i}: __typename ")).collect();
    let mut fragments = String::from("{ viewer { ...F0 } }\n");
    for i in 0..40 {
        fragments.push_str(&format!(
            "fragment F{i} on Viewer {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    fragments.push_str("fragment F40 on Viewer { subject }\n");
    let deep_selection = format!(
        "{{ {}id{} }}",
        "organizations { nodes { users { nodes { organization { ".repeat(6),
        " } } } } }".repeat(6)
    );
    let deep_value = format!(
        "{{ organizations(filter: {{ search: {}\"x\"{} }}) {{ totalCount }} }}",
        "[".repeat(5000),
        "]".repeat(5000)
    );

    for (name, query, code) in [
        (
            "a thousand aliases",
            format!("{{ viewer {{ {thousand_aliases} }} }}"),
            Some("LIMIT_EXCEEDED"),
        ),
        ("exponential fragments", fragments, Some("LIMIT_EXCEEDED")),
        ("deep selection", deep_selection, None),
        ("deeply nested value", deep_value, None),
    ] {
        let (status, body) = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            app.graphql_as(Some(&token), &query, json!({})),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}: no answer"));
        assert_eq!(status, 200, "{name}: {body}");
        assert!(body["data"].is_null(), "{name}: executed: {body}");
        assert!(body["errors"][0]["message"].is_string(), "{name}: {body}");
        if let Some(code) = code {
            assert_eq!(
                body["errors"][0]["extensions"]["code"], code,
                "{name}: {body}"
            );
        }
    }
    // Still healthy, still answering.
    let (status, body) = app
        .graphql_as(Some(&token), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(
        (status, body["data"]["viewer"]["subject"].as_str()),
        (200, Some("admin-1"))
    );
}

/// Asks `query` as an admin and expects it refused by a limit before running.
async fn refused_by_a_limit(app: &crate::helpers::TestApp, what: &str, query: &str, vars: Value) {
    let token = app.issuer.token("limits-admin", &["admin"]);
    let (status, body) = app.graphql_as(Some(&token), query, vars).await;
    assert_eq!(status, 200, "{what}: {body}");
    assert!(body["data"].is_null(), "{what}: it ran: {body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED",
        "{what}: {body}"
    );
}

/// The executor runs an omitted variable at its declared default: the cost
/// limit measures that value, not the default page size.
async fn an_omitted_variable_is_measured_at_the_default_that_runs(backend: Backend) {
    let app = spawn_app(backend).await;
    let query = "query($n: Int = 100) { organizations(first: $n) { nodes { users(first: $n) { nodes { organization { invoices(first: $n) { nodes { id number } } } } } } } }";
    refused_by_a_limit(&app, "declared default", query, json!({})).await;
    // Given explicitly, the same values are refused too (as before).
    refused_by_a_limit(&app, "given", query, json!({ "n": 100 })).await;
    // A small default runs.
    let token = app.issuer.token("limits-admin", &["admin"]);
    let small = query.replace("= 100", "= 2");
    let (status, body) = app.graphql_as(Some(&token), &small, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["organizations"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}
crate::on_both_databases!(an_omitted_variable_is_measured_at_the_default_that_runs);

/// Root fields and aliases written inside fragments count where the
/// fragments are spread.
async fn fragments_do_not_hide_root_fields_or_aliases(backend: Backend) {
    let app = spawn_app(backend).await;
    let roots: String = (0..21)
        .map(|i| format!("r{i}: organizations(first: 1) {{ totalCount }} "))
        .collect();
    refused_by_a_limit(
        &app,
        "root fields in a fragment on Query",
        &format!("{{ ...R }} fragment R on Query {{ {roots} }}"),
        json!({}),
    )
    .await;
    refused_by_a_limit(
        &app,
        "root fields in an inline fragment",
        &format!("{{ ... on Query {{ {roots} }} }}"),
        json!({}),
    )
    .await;
    // Ten aliases in a fragment, spread under four aliased parents: 14 are
    // written, 44 run (the limit is 30).
    let aliases: String = (0..10).map(|i| format!("a{i}: name ")).collect();
    let query = format!(
        "{{ o1: organizations(first: 1) {{ nodes {{ ...A }} }} o2: organizations(first: 1) {{ nodes {{ ...A }} }} \
         o3: organizations(first: 1) {{ nodes {{ ...A }} }} o4: organizations(first: 1) {{ nodes {{ ...A }} }} }} \
         fragment A on Organization {{ {aliases} }}"
    );
    refused_by_a_limit(&app, "aliases spread many times", &query, json!({})).await;
}
crate::on_both_databases!(fragments_do_not_hide_root_fields_or_aliases);
