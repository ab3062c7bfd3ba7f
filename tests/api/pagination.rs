//! Keyset pagination and the nested page admin UIs ask for.

use std::collections::HashSet;

use backplane::config::Mode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, SEED_ORGS, TestApp, spawn_app, spawn_app_configured, spawn_app_on_configured,
};
use crate::on_both_databases;

async fn paging_visits_every_organization_once(backend: Backend) {
    let app = spawn_app(backend).await;
    for order in ["CREATED_AT_ASC", "CREATED_AT_DESC", "NAME_ASC", "NAME_DESC"] {
        let mut seen = HashSet::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let data = app
                .query(
                    "query Page($after: String, $order: OrganizationOrder) {
                       organizations(first: 37, after: $after, orderBy: $order) {
                         totalCount pageInfo { hasNextPage endCursor } nodes { id name }
                       }
                     }",
                    json!({ "after": after, "order": order }),
                )
                .await;
            let conn = &data["organizations"];
            assert_eq!(conn["totalCount"], json!(SEED_ORGS));
            for node in conn["nodes"].as_array().expect("nodes") {
                assert!(
                    seen.insert(node["id"].as_str().expect("id").to_owned()),
                    "{order}: {node} twice"
                );
            }
            pages += 1;
            assert!(pages < 20, "paging does not end");
            if conn["pageInfo"]["hasNextPage"] == json!(true) {
                after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
            } else {
                break;
            }
        }
        assert_eq!(seen.len() as u64, SEED_ORGS, "{order}");
    }
}
on_both_databases!(paging_visits_every_organization_once);

async fn an_admin_list_page_comes_back_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    let data = app
        .query(
            "{ organizations(first: 25) {
                 nodes { id name slug status createdAt
                   plan { code name priceCents }
                   subscription { seats status plan { code } organization { id } }
                   users(first: 5) { totalCount nodes { id email name organization { id } } }
                   invoices(first: 3) { nodes { number amountCents currency status lines { nodes { amountCents } } } }
                 }
               } }",
            json!({}),
        )
        .await;
    let nodes = data["organizations"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 25);
    for org in nodes {
        assert!(org["plan"]["code"].is_string(), "{org}");
        assert_eq!(org["subscription"]["organization"]["id"], org["id"]);
        let users = org["users"]["nodes"].as_array().expect("users");
        assert!((3..=5).contains(&users.len()), "{org}");
        assert!(org["users"]["totalCount"].as_i64().unwrap_or(0) >= 3);
        for u in users {
            assert_eq!(u["organization"]["id"], org["id"]);
        }
        // Invoice lines add up to the invoice.
        for inv in org["invoices"]["nodes"].as_array().expect("invoices") {
            let sum: i64 = inv["lines"]["nodes"]
                .as_array()
                .expect("lines")
                .iter()
                .map(|l| l["amountCents"].as_i64().unwrap_or(0))
                .sum();
            assert_eq!(Some(sum), inv["amountCents"].as_i64(), "{inv}");
        }
    }
}
on_both_databases!(an_admin_list_page_comes_back_whole);

async fn nested_pages_continue_per_parent(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app
        .query(
            "{ organizations(first: 3, filter: {status: ACTIVE}) { nodes { id users(first: 2) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } } } }",
            json!({}),
        )
        .await;
    for org in first["organizations"]["nodes"].as_array().expect("nodes") {
        let total = org["users"]["totalCount"].as_i64().expect("total");
        let mut ids: Vec<String> = org["users"]["nodes"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        let mut cursor = org["users"]["pageInfo"]["endCursor"].clone();
        let mut more = org["users"]["pageInfo"]["hasNextPage"] == json!(true);
        while more {
            let next = app
                .query(
                    "query($id: ID!, $after: String) { organization(id: $id) { users(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } } }",
                    json!({ "id": org["id"], "after": cursor }),
                )
                .await;
            let users = &next["organization"]["users"];
            assert_eq!(
                users["totalCount"],
                json!(total),
                "every page counts the whole list"
            );
            ids.extend(
                users["nodes"]
                    .as_array()
                    .expect("users")
                    .iter()
                    .map(|u| u["id"].as_str().unwrap_or_default().to_owned()),
            );
            cursor = users["pageInfo"]["endCursor"].clone();
            more = users["pageInfo"]["hasNextPage"] == json!(true);
        }
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len() as i64, total);
        assert_eq!(ids.len() as i64, total);
        // After the last row: an empty page, still counting the whole list.
        let past = app
            .query(
                "query($after: String) { organizations(first: 3, filter: {status: ACTIVE}) { nodes { id users(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } } } }",
                json!({ "after": cursor }),
            )
            .await;
        let mine = past["organizations"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|o| o["id"] == org["id"])
            .expect("the organization");
        assert_eq!(mine["users"]["totalCount"], json!(total));
        assert_eq!(mine["users"]["nodes"], json!([]));
        assert_eq!(mine["users"]["pageInfo"]["hasNextPage"], json!(false));
    }
}
on_both_databases!(nested_pages_continue_per_parent);

async fn filters_and_lookups_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let data = app
        .query(
            r#"{
                trial: organizations(filter: {status: TRIAL}) { totalCount nodes { status plan { code } } }
                many: organizations(filter: {status: [SUSPENDED, CHURNED]}) { totalCount nodes { status } }
                team: organizations(filter: {planCode: "team"}) { totalCount nodes { plan { code } } }
                search: organizations(filter: {search: "ACME"}) { nodes { name } }
                all: organizations { totalCount }
            }"#,
            json!({}),
        )
        .await;
    for org in data["trial"]["nodes"].as_array().expect("nodes") {
        assert_eq!(org["status"], "TRIAL");
        assert_eq!(org["plan"]["code"], "free");
    }
    for org in data["many"]["nodes"].as_array().expect("nodes") {
        assert!(org["status"] == "SUSPENDED" || org["status"] == "CHURNED");
    }
    for org in data["team"]["nodes"].as_array().expect("nodes") {
        assert_eq!(org["plan"]["code"], "team");
    }
    for org in data["search"]["nodes"].as_array().expect("nodes") {
        assert!(org["name"].as_str().unwrap_or_default().contains("Acme"));
    }
    let sum = data["trial"]["totalCount"].as_i64().unwrap_or(0)
        + data["many"]["totalCount"].as_i64().unwrap_or(0);
    assert!(sum > 0 && sum < data["all"]["totalCount"].as_i64().unwrap_or(0));

    // By slug and by email, and back.
    let org = &data["search"]["nodes"][0];
    let _ = org;
    let one = app
        .query("{ organizations(first: 1) { nodes { id slug users(first: 1) { nodes { id email } } } } }", json!({}))
        .await;
    let o = &one["organizations"]["nodes"][0];
    let found = app
        .query(
            "query($slug: String!, $email: String!) { organizationBySlug(slug: $slug) { id } userByEmail(email: $email) { id organization { slug } } }",
            json!({ "slug": o["slug"], "email": o["users"]["nodes"][0]["email"].as_str().unwrap_or_default().to_uppercase() }),
        )
        .await;
    assert_eq!(found["organizationBySlug"]["id"], o["id"]);
    assert_eq!(found["userByEmail"]["id"], o["users"]["nodes"][0]["id"]);
    assert_eq!(found["userByEmail"]["organization"]["slug"], o["slug"]);
}
on_both_databases!(filters_and_lookups_answer);

async fn bad_input_is_a_graphql_error_naming_the_argument(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.issuer.token("admin-1", &["admin"]);
    for (query, argument) in [
        (r#"{ organization(id: "inv_1") { id } }"#, "id"),
        (r#"{ organization(id: "nonsense") { id } }"#, "id"),
        (
            r#"{ organizations(after: "not-a-cursor") { nodes { id } } }"#,
            "after",
        ),
        (r#"{ organizations(first: 101) { nodes { id } } }"#, "first"),
        (r#"{ organizations(first: -1) { nodes { id } } }"#, "first"),
        (
            r#"{ users(filter: {organizationId: "usr_1"}) { nodes { id } } }"#,
            "filter.organizationId",
        ),
    ] {
        let (status, body) = app.graphql_as(Some(&token), query, json!({})).await;
        assert_eq!(status, 200, "{query}: {body}");
        let err = &body["errors"][0];
        assert_eq!(
            err["extensions"]["code"], "BAD_USER_INPUT",
            "{query}: {body}"
        );
        assert_eq!(err["extensions"]["argument"], argument, "{query}: {body}");
    }
    // A cursor of another order is refused too.
    let data = app
        .query(
            "{ organizations(first: 1, orderBy: NAME_ASC) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let cursor = data["organizations"]["pageInfo"]["endCursor"].clone();
    let (_, body) = app
        .graphql_as(
            Some(&token),
            "query($c: String) { organizations(after: $c, orderBy: CREATED_AT_ASC) { nodes { id } } }",
            json!({ "c": cursor }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );

    // Unknown ids are null, not errors.
    let data = app
        .query(
            r#"{ organization(id: "org_999999") { id } user(id: "usr_999999") { id } organizationBySlug(slug: "no-such") { id } userByEmail(email: "nobody@nowhere.example") { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data,
        json!({ "organization": null, "user": null, "organizationBySlug": null, "userByEmail": null })
    );
    let _: Value = data;
}
on_both_databases!(bad_input_is_a_graphql_error_naming_the_argument);

/// Users by email, the ordering whose sort value is personal data.
const USERS_BY_EMAIL: &str = "query UsersByEmail($first: Int!, $after: String) {
  users(first: $first, after: $after, orderBy: EMAIL_ASC) {
    pageInfo { hasNextPage endCursor } edges { cursor node { id email } } } }";

/// Compiled reads off and on (both databases compile them).
fn read_paths(_backend: Backend) -> &'static [bool] {
    &[false, true]
}

/// A page of users by email as `token`'s caller: status and body.
async fn users_by_email(
    app: &TestApp,
    token: &str,
    first: i32,
    after: Option<&str>,
) -> (u16, Value) {
    app.graphql_as(
        Some(token),
        USERS_BY_EMAIL,
        json!({ "first": first, "after": after }),
    )
    .await
}

/// The `users` connection of an answer that must have no errors.
fn users_of(status: u16, body: &Value) -> &Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    &body["data"]["users"]
}

fn ids_of(users: &Value) -> Vec<String> {
    users["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The refusal of a cursor: `BAD_USER_INPUT` naming `after`, saying nothing of
/// what the cursor holds.
fn assert_cursor_refused(status: u16, body: &Value, cursor: &str) {
    assert_eq!(status, 200, "{cursor}: {body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{cursor}: {body}");
    let err = &errors[0];
    assert_eq!(
        err["extensions"]["code"], "BAD_USER_INPUT",
        "{cursor}: {body}"
    );
    assert_eq!(err["extensions"]["field"], "after", "{cursor}: {body}");
    assert_eq!(err["extensions"]["argument"], "after", "{cursor}: {body}");
    assert_eq!(
        err["message"], "after: not a cursor of this list and order",
        "{cursor}: {body}"
    );
    assert_eq!(body["data"], Value::Null, "{cursor}: {body}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn a_cursor_of_an_email_ordering_holds_no_email_and_continues(backend: Backend) {
    for &compiled in read_paths(backend) {
        let app = spawn_app_configured(backend, Mode::Serve, |c| c.compile_reads = compiled).await;
        let token = app.issuer.token("support-1", &["support"]);
        // The first run of the document is the executor's; the next ones are
        // compiled when compiled reads are on.
        let (status, body) = users_by_email(&app, &token, 10, None).await;
        let whole = users_of(status, &body).clone();
        let whole_ids = ids_of(&whole);
        assert_eq!(whole_ids.len(), 10, "{whole}");

        let (statements, (status, body)) = app
            .statements_during(users_by_email(&app, &token, 5, None))
            .await;
        let first = users_of(status, &body).clone();
        if compiled {
            assert_eq!(statements, 1, "compiled: {first}");
        }
        let edges = first["edges"].as_array().expect("edges");
        let end = first["pageInfo"]["endCursor"].as_str().expect("endCursor");
        // Both read paths seal the same bytes: the executor's cursor of the
        // fifth row is the compiled one's.
        assert_eq!(whole["edges"][4]["cursor"], json!(end), "{whole} {first}");
        let emails: Vec<String> = edges
            .iter()
            .map(|e| e["node"]["email"].as_str().expect("email").to_owned())
            .collect();
        let mut cursors: Vec<&str> = edges
            .iter()
            .map(|e| e["cursor"].as_str().expect("cursor"))
            .collect();
        cursors.push(end);
        for cursor in cursors {
            let bytes = URL_SAFE_NO_PAD.decode(cursor).expect("URL-safe base64");
            for email in &emails {
                for form in [email.clone(), email.to_lowercase()] {
                    assert!(
                        !contains(&bytes, form.as_bytes()),
                        "the cursor {cursor} holds {form}"
                    );
                }
            }
        }

        let (statements, (status, body)) = app
            .statements_during(users_by_email(&app, &token, 5, Some(end)))
            .await;
        let next = users_of(status, &body);
        if compiled {
            assert_eq!(statements, 1, "compiled from a cursor: {next}");
        }
        let mut ids = ids_of(&first);
        ids.extend(ids_of(next));
        assert_eq!(ids, whole_ids, "compiled reads {compiled}");
    }
}
on_both_databases!(a_cursor_of_an_email_ordering_holds_no_email_and_continues);

async fn a_tampered_or_truncated_cursor_is_refused_naming_after(backend: Backend) {
    for &compiled in read_paths(backend) {
        let app = spawn_app_configured(backend, Mode::Serve, |c| c.compile_reads = compiled).await;
        let token = app.issuer.token("support-1", &["support"]);
        let (status, body) = users_by_email(&app, &token, 5, None).await;
        let end = users_of(status, &body)["pageInfo"]["endCursor"]
            .as_str()
            .expect("endCursor")
            .to_owned();
        let bytes = URL_SAFE_NO_PAD.decode(&end).expect("URL-safe base64");
        let mut broken = Vec::new();
        for i in [0, bytes.len() / 2, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            broken.push(URL_SAFE_NO_PAD.encode(b));
        }
        broken.push(URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]));
        broken.push(end[..end.len() / 2].to_owned());
        broken.push(format!("{end}A"));
        for cursor in &broken {
            // Twice: on the compiled server the second is the compiled path's,
            // which hands a cursor it cannot open to the executor.
            for _ in 0..2 {
                let (status, body) = users_by_email(&app, &token, 5, Some(cursor)).await;
                assert_cursor_refused(status, &body, cursor);
            }
        }
        let (status, body) = users_by_email(&app, &token, 5, Some(&end)).await;
        assert_eq!(ids_of(users_of(status, &body)).len(), 5, "{body}");
    }
}
on_both_databases!(a_tampered_or_truncated_cursor_is_refused_naming_after);

async fn a_cursor_sealed_with_another_key_is_refused(backend: Backend) {
    let key = |k: &str| Some(SecretString::from(k.repeat(40)));
    for &compiled in read_paths(backend) {
        let app = spawn_app_configured(backend, Mode::Serve, |c| {
            c.compile_reads = compiled;
            c.cursor_key = key("a");
        })
        .await;
        let instance = |cursor_key: Option<SecretString>| {
            spawn_app_on_configured(app.database_url(), &app.issuer, move |c| {
                c.compile_reads = compiled;
                c.cursor_key = cursor_key;
            })
        };
        let same_key = instance(key("a")).await;
        let other_key = instance(key("b")).await;
        let token = app.issuer.token("support-1", &["support"]);
        let (status, body) = users_by_email(&app, &token, 10, None).await;
        let whole = ids_of(users_of(status, &body));
        let (status, body) = users_by_email(&app, &token, 5, None).await;
        let end = users_of(status, &body)["pageInfo"]["endCursor"]
            .as_str()
            .expect("endCursor")
            .to_owned();
        for _ in 0..2 {
            // Another instance with the same key continues the list…
            let (status, body) = users_by_email(&same_key, &token, 5, Some(&end)).await;
            assert_eq!(ids_of(users_of(status, &body)), whole[5..], "{body}");
            // …one with another key refuses the cursor.
            let (status, body) = users_by_email(&other_key, &token, 5, Some(&end)).await;
            assert_cursor_refused(status, &body, &end);
        }
    }
}
on_both_databases!(a_cursor_sealed_with_another_key_is_refused);

/// Relay backwards: `last`/`before` pages walk a list from its end to its
/// start, each page in the list's own order, with `hasPreviousPage` and
/// `startCursor`; a cursor from a forward page serves as `before`; the rows
/// seen are the forward walk's, reversed.
async fn paging_backwards_visits_every_row_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let q =
        "query($last: Int, $before: String, $first: Int, $after: String, $o: SupportTicketOrder) {
       tickets(last: $last, before: $before, first: $first, after: $after, orderBy: $o) {
         totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { id }
       }
     }";
    for order in ["CREATED_AT_DESC", "PRIORITY_DESC"] {
        let mut forward = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..100 {
            let data = app
                .query(q, json!({ "first": 50, "after": after, "o": order }))
                .await;
            let conn = &data["tickets"];
            assert_eq!(
                conn["pageInfo"]["hasPreviousPage"],
                after.is_some(),
                "{order}"
            );
            forward.extend(
                conn["nodes"]
                    .as_array()
                    .expect("nodes")
                    .iter()
                    .map(|n| n["id"].clone()),
            );
            if conn["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        }
        let mut backward = Vec::new();
        let mut before: Option<String> = None;
        for _ in 0..100 {
            let data = app
                .query(q, json!({ "last": 37, "before": before, "o": order }))
                .await;
            let conn = &data["tickets"];
            assert_eq!(conn["pageInfo"]["hasNextPage"], before.is_some(), "{order}");
            let ids: Vec<Value> = conn["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .map(|n| n["id"].clone())
                .collect();
            backward.splice(0..0, ids);
            if conn["pageInfo"]["hasPreviousPage"] != true {
                break;
            }
            before = conn["pageInfo"]["startCursor"].as_str().map(str::to_owned);
        }
        assert_eq!(
            backward, forward,
            "{order}: the backward walk is the forward walk"
        );
        assert!(forward.len() > 37, "more than one page");
    }
    // Both directions at once are refused, naming `last`.
    app.assert_bad_input(
        "{ organizations(first: 2, last: 2) { totalCount } }",
        "last",
    )
    .await;
}
on_both_databases!(paging_backwards_visits_every_row_once);

/// `node(id:)`, generated from the catalog and the role matrix: every
/// entity with ids (and the audit log's events), as every role, answers the
/// record when the role may read its type and `null` otherwise, the same
/// answer as for a record that does not exist.
async fn node_answers_what_the_role_may_read(backend: Backend) {
    use backplane::catalog::{AUDIT_EVENT_PREFIX, ENTITIES, public_id};
    use backplane::policy::{Permission, Role, permissions_of};

    let app = spawn_app(backend).await;
    // An event of the audit log to find: the admin's first queries leave
    // some (written by the audit writer, soon after the answer).
    let mut event = None;
    for _ in 0..50 {
        let data = app
            .query("{ auditEvents(first: 1) { nodes { id } } }", json!({}))
            .await;
        if let Some(id) = data["auditEvents"]["nodes"][0]["id"].as_str() {
            event = Some(id.to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let event = event.expect("an audit event");
    assert!(event.starts_with(AUDIT_EVENT_PREFIX), "{event}");
    let kinds: Vec<(String, &str, Permission)> = ENTITIES
        .iter()
        .filter(|e| e.id_prefix.is_some())
        .map(|e| (public_id(e.name, 1), e.name, e.read))
        .chain([(event, "AuditEvent", Permission::ReadAuditLog)])
        .collect();
    let q = "query($id: ID!) { node(id: $id) { __typename id } }";
    let mut checked = 0;
    let mut tried = Vec::new();
    for (id, type_name, read) in &kinds {
        let admin = app.query(q, json!({ "id": id })).await;
        if admin["node"].is_null() {
            continue; // no first row of this kind in the seed
        }
        tried.push(*type_name);
        assert_eq!(admin["node"]["__typename"], *type_name, "{admin}");
        assert_eq!(admin["node"]["id"], id.as_str(), "{admin}");
        for role in Role::ALL {
            let token = app
                .issuer
                .token(&format!("node-{}", role.as_str()), &[role.as_str()]);
            let (status, body) = app.graphql_as(Some(&token), q, json!({ "id": id })).await;
            let what = format!("{type_name} as {}: {body}", role.as_str());
            assert_eq!(status, 200, "{what}");
            assert!(body.get("errors").is_none(), "{what}");
            if permissions_of(&[role].into()).contains(read) {
                assert_eq!(body["data"]["node"], admin["node"], "{what}");
            } else {
                assert_eq!(body["data"]["node"], Value::Null, "{what}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 7 * Role::ALL.len(), "{checked} cases");
    assert!(tried.contains(&"AuditEvent"), "{tried:?}");
    // A record that does not exist is null too; an id that is not ours
    // names the argument.
    let missing = app.query(q, json!({ "id": "org_99999999" })).await;
    assert_eq!(missing["node"], Value::Null);
    app.assert_bad_input("{ node(id: \"nope\") { id } }", "id")
        .await;
}
on_both_databases!(node_answers_what_the_role_may_read);

/// Nested lists page backwards too: an organization's users walked with
/// `last`/`before` are its forward walk, and every parent of the level
/// shares one statement.
async fn nested_lists_page_backwards(backend: Backend) {
    let app = spawn_app(backend).await;
    let q = "query($last: Int, $before: String, $first: Int, $after: String) {
       organizations(first: 3) { nodes { id users(last: $last, before: $before, first: $first, after: $after) {
         pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { id } } } }
     }";
    let walk = |data: &Value| -> Vec<Value> {
        data["organizations"]["nodes"][0]["users"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].clone())
            .collect()
    };
    let mut forward = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let data = app.query(q, json!({ "first": 2, "after": after })).await;
        forward.extend(walk(&data));
        let info = &data["organizations"]["nodes"][0]["users"]["pageInfo"];
        if info["hasNextPage"] != true {
            break;
        }
        after = info["endCursor"].as_str().map(str::to_owned);
    }
    let mut backward = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..100 {
        let (statements, data) = app
            .statements_during(app.query(q, json!({ "last": 2, "before": before })))
            .await;
        assert!(statements <= 2, "{statements} statements: the level is one");
        backward.splice(0..0, walk(&data));
        let info = &data["organizations"]["nodes"][0]["users"]["pageInfo"];
        if info["hasPreviousPage"] != true {
            break;
        }
        before = info["startCursor"].as_str().map(str::to_owned);
    }
    assert!(
        forward.len() > 2,
        "the first organization has more than a page of users"
    );
    assert_eq!(backward, forward);
}
on_both_databases!(nested_lists_page_backwards);
