//! Hostile documents are refused before anything executes, and the server stays
//! up.

use serde_json::json;

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
