//! Keyset pagination and the nested page admin UIs ask for.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{Backend, SEED_ORGS, spawn_app};
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
            "{ organizations(first: 3, filter: {status: {is: ACTIVE}}) { nodes { id users(first: 2) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } } } }",
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
                "query($after: String) { organizations(first: 3, filter: {status: {is: ACTIVE}}) { nodes { id users(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } } } }",
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
                trial: organizations(filter: {status: {is: TRIAL}}) { totalCount nodes { status plan { code } } }
                many: organizations(filter: {status: {anyOf: [SUSPENDED, CHURNED]}}) { totalCount nodes { status } }
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
