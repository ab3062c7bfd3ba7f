//! Whole answers as clients see them, as insta snapshots (`snapshots/`),
//! with ids, instants, cursors and request ids redacted: what a role's answer
//! holds, what each error body looks like. A change to any part of an answer
//! shows as a snapshot diff to review (`cargo insta review`, or
//! `INSTA_UPDATE=always` and `git diff`).

use backplane::policy::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};

/// The support desk's lookup, as the playground's example asks it.
const LOOKUP: &str = "query Lookup($slug: String!) {
  organizationBySlug(slug: $slug) {
    id name slug status region createdAt
    plan { code name priceCents }
    subscription { seats status }
    users(first: 3) { totalCount edges { cursor node { id email name orgRole status } } }
    tickets(first: 2) { totalCount nodes { id subject status priority internalNotes assignee { name } } }
  }
}";

/// Snapshots `value` under `name`, ids, instants, cursors and request ids
/// redacted (they differ between databases and runs).
pub fn snapshot(name: &str, value: &Value) {
    insta::with_settings!({ sort_maps => true, prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(name, value, {
            ".**.id" => "[id]",
            ".**.createdAt" => "[instant]",
            ".**.cursor" => "[cursor]",
            ".**.endCursor" => "[cursor]",
            ".**.requestId" => "[request id]",
        });
    });
}

/// Snapshots `value` under `name` as it is (for answers whose ids are the
/// seed's and whose instants are not in it).
pub fn snapshot_exact(name: &str, value: &Value) {
    insta::with_settings!({ sort_maps => true, prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(name, value);
    });
}

/// The first organization's slug (the seed is the same on both databases).
async fn first_slug(app: &crate::helpers::TestApp) -> String {
    let data = app
        .query("{ organizations(first: 1) { nodes { slug } } }", json!({}))
        .await;
    data["organizations"]["nodes"][0]["slug"]
        .as_str()
        .expect("a slug")
        .to_owned()
}

/// As support, billing and finance: the same lookup, each answer whole (the
/// cost and flag fields are not in these documents; what differs is what
/// each role's schema lets through).
async fn a_support_lookup_answers_the_same_whole_answer_on_both_databases(backend: Backend) {
    let app = spawn_app(backend).await;
    let slug = first_slug(&app).await;
    for role in [Role::Support, Role::Billing] {
        let token = app.issuer.token(&format!("snap-{role}"), &[role.as_str()]);
        let (status, body) = app
            .graphql_as(Some(&token), LOOKUP, json!({ "slug": slug }))
            .await;
        assert_eq!(status, 200);
        snapshot(&format!("lookup_as_{role}"), &body);
    }
}
crate::on_both_databases!(a_support_lookup_answers_the_same_whole_answer_on_both_databases);

/// `viewer` as each role: its roles and exactly the permissions the matrix
/// grants.
async fn viewer_tells_each_role_what_it_may_do(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut all = serde_json::Map::new();
    for role in Role::ALL {
        let token = app
            .issuer
            .token(&format!("viewer-{role}"), &[role.as_str()]);
        let (_, body) = app
            .graphql_as(
                Some(&token),
                "{ viewer { subject kind roles permissions } }",
                json!({}),
            )
            .await;
        all.insert(role.as_str().to_owned(), body);
    }
    snapshot("viewer_by_role", &Value::Object(all));
}
crate::on_both_databases!(viewer_tells_each_role_what_it_may_do);

/// Every kind of refusal a client meets, each body whole: a document that
/// does not parse, one that does not validate, a field the role may not see,
/// a page over the limit, a bad cursor, a bad id, no token.
async fn every_refusal_has_one_coded_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let support = app.issuer.token("snap-refusals", &["support"]);
    let cases = [
        ("parse", "{ organizations { nodes { id }", json!({})),
        (
            "validation",
            "{ organizations { nodes { nope } } }",
            json!({}),
        ),
        (
            "hidden_field",
            "{ organizations { nodes { monthlyCostCents } } }",
            json!({}),
        ),
        (
            "page_too_large",
            "{ organizations(first: 100000) { nodes { id } } }",
            json!({}),
        ),
        (
            "bad_cursor",
            "{ organizations(after: \"not-a-cursor\") { nodes { id } } }",
            json!({}),
        ),
        (
            "bad_id",
            "{ organization(id: \"inv_1\") { id } }",
            json!({}),
        ),
    ];
    let mut all = serde_json::Map::new();
    for (name, document, variables) in cases {
        let (status, body) = app.graphql_as(Some(&support), document, variables).await;
        all.insert(name.to_owned(), json!({ "status": status, "body": body }));
    }
    let (status, body) = app
        .graphql_as(None, "{ viewer { subject } }", json!({}))
        .await;
    all.insert(
        "no_token".to_owned(),
        json!({ "status": status, "body": body }),
    );
    snapshot("refusals", &Value::Object(all));
}
crate::on_both_databases!(every_refusal_has_one_coded_body);
