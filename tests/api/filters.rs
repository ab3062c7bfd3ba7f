//! One filter shape for every list: sets (an empty one matches nothing),
//! references (`null`: none), text, spans of time; and the orders a queue
//! or a table needs.

use serde_json::{Value, json};

use crate::helpers::{Backend, SEED_ORGS, TestApp, spawn_app};
use crate::on_both_databases;

/// Every root list with a filter: (field, filter type), from the schema.
async fn filtered_lists(app: &TestApp) -> Vec<(String, String)> {
    let data = app
        .query(
            r#"{ __type(name: "Query") { fields { name args { name type { name kind ofType { name } } } } } }"#,
            json!({}),
        )
        .await;
    let mut lists = Vec::new();
    for field in data["__type"]["fields"].as_array().expect("fields") {
        for arg in field["args"].as_array().expect("args") {
            if arg["name"] == "filter" {
                let ty = arg["type"]["name"].as_str().expect("a named input type");
                lists.push((
                    field["name"].as_str().expect("name").to_owned(),
                    ty.to_owned(),
                ));
            }
        }
    }
    lists
}

/// The input fields of `ty` that take a list, with their item type.
async fn list_fields(app: &TestApp, ty: &str) -> Vec<String> {
    let data = app
        .query(
            "query($t: String!) { __type(name: $t) { inputFields { name type { kind ofType { kind } } } } }",
            json!({ "t": ty }),
        )
        .await;
    data["__type"]["inputFields"]
        .as_array()
        .expect("input fields")
        .iter()
        .filter(|f| f["type"]["kind"] == "LIST" || f["type"]["ofType"]["kind"] == "LIST")
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn total(app: &TestApp, list: &str, filter: Value) -> i64 {
    let (status, body) = app
        .graphql_as(
            Some(&app.issuer.token("admin-1", &["admin"])),
            &format!(
                "query($f: {}) {{ {list}(filter: $f) {{ totalCount }} }}",
                filter_type(list)
            ),
            json!({ "f": filter }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{list} {body}");
    body["data"][list]["totalCount"]
        .as_i64()
        .expect("totalCount")
}

fn filter_type(list: &str) -> &'static str {
    match list {
        "organizations" => "OrganizationFilter",
        "users" => "UserFilter",
        "invoices" => "InvoiceFilter",
        "tickets" => "SupportTicketFilter",
        "staffMembers" => "StaffMemberFilter",
        "auditEvents" => "AuditEventFilter",
        other => panic!("no filter type known for {other}"),
    }
}

/// Generated from the schema: every list field of every list's filter,
/// given an empty list, matches nothing, where the list itself is not
/// empty. (Before, `status: []` matched every row: a script filtering by a
/// computed set that came out empty changed or exported everything.)
async fn an_empty_set_matches_nothing_in_every_filter(backend: Backend) {
    let app = spawn_app(backend).await;
    let lists = filtered_lists(&app).await;
    assert!(lists.len() >= 6, "{lists:?}");
    let mut checked = 0;
    for (list, ty) in &lists {
        assert_eq!(filter_type(list), ty, "{list}");
        let all = total(&app, list, json!({})).await;
        assert!(
            all > 0,
            "{list} is empty in the seed: the test would prove nothing"
        );
        for field in list_fields(&app, ty).await {
            assert_eq!(
                total(&app, list, json!({ field.as_str(): [] })).await,
                0,
                "{list}(filter: {{{field}: []}})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} list fields");
}
on_both_databases!(an_empty_set_matches_nothing_in_every_filter);

async fn null_asks_for_tickets_without_an_assignee(backend: Backend) {
    let app = spawn_app(backend).await;
    let q = "query($f: SupportTicketFilter) { tickets(first: 100, filter: $f) { totalCount nodes { assignee { id } } } }";
    let all = app.query(q, json!({ "f": {} })).await["tickets"]["totalCount"]
        .as_i64()
        .expect("count");
    let unassigned = app.query(q, json!({ "f": { "assigneeId": null } })).await;
    let nodes = unassigned["tickets"]["nodes"].as_array().expect("nodes");
    assert!(!nodes.is_empty(), "the seed has unassigned tickets");
    assert!(
        nodes.iter().all(|n| n["assignee"].is_null()),
        "{unassigned}"
    );
    // The assigned ones, by id, and the unassigned ones make up the list.
    let staff = app
        .query("{ staffMembers(first: 100) { nodes { id } } }", json!({}))
        .await;
    let ids: Vec<Value> = staff["staffMembers"]["nodes"]
        .as_array()
        .expect("staff")
        .iter()
        .map(|n| n["id"].clone())
        .collect();
    let assigned =
        app.query(q, json!({ "f": { "assigneeId": ids } })).await["tickets"]["totalCount"]
            .as_i64()
            .expect("count");
    assert_eq!(
        assigned + unassigned["tickets"]["totalCount"].as_i64().expect("count"),
        all
    );
    // A reference of the wrong kind names the filter's field.
    app.assert_bad_input(
        r#"{ tickets(filter: {assigneeId: ["org_1"]}) { totalCount } }"#,
        "filter.assigneeId",
    )
    .await;
}
on_both_databases!(null_asks_for_tickets_without_an_assignee);

/// A queue sorted by priority, most urgent first, pages through every
/// ticket once with its cursors.
async fn tickets_page_by_priority(backend: Backend) {
    let app = spawn_app(backend).await;
    let rank = |p: &str| {
        ["LOW", "NORMAL", "HIGH", "URGENT"]
            .iter()
            .position(|x| *x == p)
    };
    for (order, descending) in [("PRIORITY_DESC", true), ("PRIORITY_ASC", false)] {
        let mut after: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        let mut last: Option<usize> = None;
        let mut total = 0;
        for _ in 0..100 {
            let data = app
                .query(
                    "query($a: String, $o: SupportTicketOrder) { tickets(first: 23, after: $a, orderBy: $o) { totalCount pageInfo { hasNextPage endCursor } nodes { id priority } } }",
                    json!({ "a": after, "o": order }),
                )
                .await;
            let conn = &data["tickets"];
            total = conn["totalCount"].as_i64().expect("count");
            for node in conn["nodes"].as_array().expect("nodes") {
                assert!(
                    seen.insert(node["id"].clone().to_string()),
                    "{order}: {node} twice"
                );
                let r = rank(node["priority"].as_str().expect("priority")).expect("a priority");
                if let Some(l) = last {
                    assert!(
                        if descending { r <= l } else { r >= l },
                        "{order}: {node} after rank {l}"
                    );
                }
                last = Some(r);
            }
            if conn["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        }
        assert_eq!(seen.len() as i64, total, "{order}");
        assert!(total > 23, "more than one page");
    }
}
on_both_databases!(tickets_page_by_priority);

/// A span of time takes a date alone; the same operators on every list.
async fn spans_take_dates_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        total(
            &app,
            "organizations",
            json!({ "createdAt": { "from": "2000-01-01" } })
        )
        .await as u64,
        SEED_ORGS
    );
    assert_eq!(
        total(
            &app,
            "organizations",
            json!({ "createdAt": { "before": "2000-01-01" } })
        )
        .await,
        0
    );
    assert_eq!(
        total(
            &app,
            "invoices",
            json!({ "issuedAt": { "from": "2100-01-01T00:00:00+02:00" } })
        )
        .await,
        0
    );
    let (_, body) = app
        .graphql_as(
            Some(&app.issuer.token("admin-1", &["admin"])),
            r#"{ organizations(filter: {createdAt: {from: "yesterday"}}) { totalCount } }"#,
            json!({}),
        )
        .await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`yesterday` is not an instant"), "{body}");
}
on_both_databases!(spans_take_dates_alone);
