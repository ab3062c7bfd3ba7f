//! `POST /export`: every node of one root list, streamed as CSV or NDJSON,
//! behind the same gate as a query, with one audit event per export.

use std::time::Duration;

use backplane::config::Mode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, counter, spawn_app, spawn_app_configured};
use crate::on_both_databases;

/// POSTs an export as `roles`; status, content type and body.
async fn export(
    app: &TestApp,
    roles: &[&str],
    accept: &str,
    query: &str,
    variables: Value,
) -> (u16, String, String) {
    let token = app.issuer.token("exporter-1", roles);
    let resp = app
        .client
        .post(app.url("/export"))
        .bearer_auth(token)
        .header("accept", accept)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, resp.text().await.unwrap_or_default())
}

const USERS: &str = "query ExportUsers($s: [UserStatus!]) { users(filter: {status: $s}, orderBy: EMAIL_ASC) { nodes { id email name status organization { slug plan { code } } } } }";
const USERS_PAGE: &str = "query($s: [UserStatus!], $after: String) { users(first: 100, after: $after, filter: {status: $s}, orderBy: EMAIL_ASC) { nodes { id email name status organization { slug plan { code } } } pageInfo { hasNextPage endCursor } } }";

/// Every node of the users query, paged through `/graphql`.
async fn paged_users(app: &TestApp) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..200 {
        let data = app
            .query(USERS_PAGE, json!({ "s": ["ACTIVE"], "after": after }))
            .await;
        nodes.extend(
            data["users"]["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .cloned(),
        );
        if data["users"]["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = data["users"]["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
    panic!("more than 200 pages");
}

async fn the_export_event(app: &TestApp, operation: &str) -> Value {
    for _ in 0..100 {
        let data = app
            .query(
                "query($o: [String!]) { auditEvents(first: 5, filter: {operationName: $o}) { nodes { outcome sensitiveFields details } } }",
                json!({ "o": operation }),
            )
            .await;
        if let Some(event) = data["auditEvents"]["nodes"]
            .as_array()
            .and_then(|n| n.first())
        {
            return event.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no audit event for {operation}");
}

async fn an_export_is_every_row_of_the_list_in_its_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let paged = paged_users(&app).await;
    assert!(
        paged.len() > 1_000,
        "more than one export page: {}",
        paged.len()
    );

    let (status, content_type, body) = export(
        &app,
        &["admin"],
        "application/x-ndjson",
        USERS,
        json!({ "s": ["ACTIVE"] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines, paged, "NDJSON: row for row what paging gives");

    let (status, content_type, body) = export(
        &app,
        &["admin"],
        "text/csv",
        USERS,
        json!({ "s": ["ACTIVE"] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let rows: Vec<&str> = body.split("\r\n").filter(|r| !r.is_empty()).collect();
    assert_eq!(
        rows[0],
        "id,email,name,status,organization.slug,organization.plan.code"
    );
    assert_eq!(rows.len(), paged.len() + 1);
    let first = &paged[0];
    assert_eq!(
        rows[1],
        format!(
            "{},{},{},{},{},{}",
            first["id"].as_str().unwrap_or_default(),
            first["email"].as_str().unwrap_or_default(),
            first["name"].as_str().unwrap_or_default(),
            first["status"].as_str().unwrap_or_default(),
            first["organization"]["slug"].as_str().unwrap_or_default(),
            first["organization"]["plan"]["code"]
                .as_str()
                .unwrap_or_default(),
        )
    );

    // One event for the export: what it read, how much, that it completed.
    let event = the_export_event(&app, "ExportUsers").await;
    assert_eq!(event["outcome"], "OK", "{event}");
    let details: Value = event["details"].clone();
    let counts = &details["export"];
    assert_eq!(counts["rows"], paged.len(), "{details}");
    assert_eq!(counts["completed"], true);
    assert!(
        counts["arguments"]
            .as_str()
            .unwrap_or_default()
            .contains("status"),
        "{details}"
    );
    assert!(
        event["sensitiveFields"]
            .as_array()
            .expect("fields")
            .contains(&json!("User.email")),
        "{event}"
    );
    let exports = app
        .query(
            r#"{ auditEvents(filter: {operationName: "ExportUsers"}) { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        exports["auditEvents"]["totalCount"], 2,
        "one event per export"
    );
}
on_both_databases!(an_export_is_every_row_of_the_list_in_its_order);

async fn an_export_is_refused_as_a_query_would_be(backend: Backend) {
    let app = spawn_app(backend).await;
    // Support may not read cost data: the same answer as the query gets.
    let query = "query Costs { organizations { nodes { id monthlyCostCents } } }";
    let (status, _, body) = export(&app, &["support"], "text/csv", query, json!({})).await;
    assert_eq!(status, 400, "{body}");
    let exported: Value = serde_json::from_str(&body).expect("JSON");
    let token = app.issuer.token("exporter-1", &["support"]);
    let (_, queried) = app.graphql_as(Some(&token), query, json!({})).await;
    assert_eq!(
        exported["errors"], queried["errors"],
        "the export's refusal is the query's"
    );
    assert_eq!(
        exported["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert!(!body.contains("Did you mean"), "{body}");
    let event = the_export_event(&app, "Costs").await;
    assert_eq!(event["outcome"], "DENIED", "{event}");

    for (query, field, says) in [
        (
            "{ users(first: 10) { nodes { email } } }",
            "first",
            "leave `first` out",
        ),
        (
            "{ organizations { nodes { id users { nodes { email } } } } }",
            "query",
            "is a list",
        ),
        (
            "{ organization(id: \"org_1\") { id } }",
            "query",
            "not a list",
        ),
    ] {
        let (status, _, body) = export(&app, &["admin"], "text/csv", query, json!({})).await;
        assert_eq!(status, 400, "{query}: {body}");
        let body: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{query}: {body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{query}: {body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{query}: {body}"
        );
    }
    let (status, _, body) = export(&app, &["admin"], "application/json", USERS, json!({})).await;
    assert_eq!(status, 406, "{body}");
}
on_both_databases!(an_export_is_refused_as_a_query_would_be);

async fn csv_cells_are_quoted_and_formulas_neutralised(backend: Backend) {
    let app = spawn_app(backend).await;
    let data = app
        .query("{ invoices(first: 2, filter: {status: [OPEN]}) { nodes { id version issuedAt organization { id } } } }", json!({}))
        .await;
    let invoice = data["invoices"]["nodes"][0].clone();
    let token = app.issuer.token("billing-1", &["billing"]);
    let (_, body) = app
        .graphql_as(
            Some(&token),
            "mutation($input: MarkInvoicePaidInput!) { markInvoicePaid(input: $input) { invoice { id } } }",
            json!({ "input": { "id": invoice["id"], "paidAt": invoice["issuedAt"], "paymentReference": "=HYPERLINK(\"http://evil\",\"x\"), paid", "expectedVersion": invoice["version"] } }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let (status, _, csv) = export(
        &app,
        &["admin"],
        "text/csv",
        "query($o: [ID!]) { invoices(filter: {organizationId: $o, status: [PAID]}) { nodes { id paymentReference amountCents } } }",
        json!({ "o": invoice["organization"]["id"] }),
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    let row = csv
        .split("\r\n")
        .find(|r| r.starts_with(&format!("{},", invoice["id"].as_str().unwrap_or_default())))
        .unwrap_or_else(|| panic!("the invoice's row: {csv}"));
    assert!(
        row.contains(",\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\"), paid\","),
        "quoted, quotes doubled, the formula neutralised: {row}"
    );
}
on_both_databases!(csv_cells_are_quoted_and_formulas_neutralised);

async fn a_client_that_goes_away_stops_the_export_and_its_event_says_so(backend: Backend) {
    let app = spawn_app(backend).await;
    // Rows of several KiB each (every user with 100 colleagues): far more than
    // the sockets hold.
    let query = "query ExportWide { users { nodes { email organization { users(first: 100) { nodes { email name } } } } } }";
    let token = app.issuer.token("exporter-1", &["admin"]);
    let mut resp = app
        .client
        .post(app.url("/export"))
        .bearer_auth(token)
        .header("accept", "application/x-ndjson")
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let chunk = resp.chunk().await.expect("a chunk").expect("some bytes");
    assert!(!chunk.is_empty());
    drop(resp);
    let event = the_export_event(&app, "ExportWide").await;
    assert_eq!(event["outcome"], "PARTIAL", "{event}");
    let details: Value = event["details"].clone();
    assert_eq!(details["export"]["completed"], false, "{details}");
    assert_eq!(
        details["export"]["cutShort"], "the client went away",
        "{details}"
    );
    let total = app.query("{ users { totalCount } }", json!({})).await["users"]["totalCount"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        details["export"]["rows"].as_u64().unwrap_or(u64::MAX) < total,
        "{details}"
    );
}
on_both_databases!(a_client_that_goes_away_stops_the_export_and_its_event_says_so);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_over_the_row_limit_does_not_start() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        c.export.max_rows_people = 10;
    })
    .await;
    let (status, _, body) = export(&app, &["admin"], "text/csv", USERS, json!({})).await;
    assert_eq!(status, 400, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED",
        "{body}"
    );
    let (status, _, _) = export(
        &app,
        &["admin"],
        "text/csv",
        "{ users(filter: {search: \"zzzz-nobody\"}) { nodes { email } } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "a short list exports");
}

/// Every column a CSV export of `entity` can hold for `granted`: its
/// readable column fields, and through its readable to-one relations and
/// embedded objects (two levels) theirs, each object with `__typename`.
fn every_column(
    entity: &'static backplane::catalog::Entity,
    granted: &std::collections::BTreeSet<backplane::policy::Permission>,
    depth: usize,
) -> Vec<String> {
    use backplane::catalog::{self, Source};
    let mut out = vec!["__typename".to_owned()];
    for field in entity.fields() {
        if !catalog::needs_of(entity, field).met_by(|p| granted.contains(&p)) {
            continue;
        }
        match field.source {
            Source::Column { .. } => out.push(field.name.to_owned()),
            Source::Embedded(_) | Source::ToOne { .. } if depth < 2 => {
                let target = field.target().expect("a target");
                let inner = every_column(target, granted, depth + 1);
                out.push(format!("{} {{ {} }}", field.name, inner.join(" ")));
            }
            _ => {}
        }
    }
    out
}

/// As every role and pair, a CSV export of every list over every column the
/// role may read (generated from the catalog), and as an admin in each of its
/// orders, is read as plain rows, in one statement for its count and one per
/// chunk (of 97 rows here, so that chunks continue after text, instants and
/// ids), and is byte for byte the CSV the pages of its query give through
/// the executor.
async fn a_csv_export_read_as_rows_is_the_executors_csv_byte_for_byte(backend: Backend) {
    use backplane::catalog::{self, Lookup};
    let reference = spawn_app_configured(backend, Mode::Serve, |c| {
        c.compile_reads = false;
    })
    .await;
    let plain =
        crate::helpers::spawn_app_on_configured(reference.database_url(), &reference.issuer, |c| {
            c.export.chunk_rows = CHUNK;
            // Longer lists are read as long ones (on PostgreSQL, their joins
            // hashed on a connection of their own): both ways are compared.
            c.export.wide_rows = 500;
        })
        .await;
    const CHUNK: u64 = 97;
    let mut compared = 0;
    for roles in crate::catalog::role_sets() {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let granted = crate::catalog::granted(&roles);
        let token = reference
            .issuer
            .token(&format!("rows-{}", names.join("-")), &names);
        // The staff directory notes a person on first sight (one statement).
        plain
            .graphql_as(Some(&token), "{ __typename }", json!({}))
            .await;
        for root in catalog::ROOTS {
            if !matches!(root.lookup, Lookup::List { .. })
                || !catalog::root_needs(root.name).is_some_and(|p| granted.contains(&p))
            {
                continue;
            }
            let entity = catalog::entity(root.entity).expect("an entity");
            let columns = every_column(entity, &granted, 0);
            let mut orders = vec!["after: null".to_owned()];
            if names == ["admin"] {
                orders.extend(
                    entity
                        .orderings
                        .iter()
                        .map(|(value, _)| format!("orderBy: {value}")),
                );
            }
            for arguments in orders {
                let query = format!(
                    "{{ {}({arguments}) {{ nodes {{ {} }} }} }}",
                    root.name,
                    columns.join(" ")
                );
                let run = |app: &TestApp| {
                    let request = app
                        .client
                        .post(app.url("/export"))
                        .bearer_auth(token.clone())
                        .header("accept", "text/csv")
                        .json(&json!({ "query": query }));
                    async move {
                        // The previous export's slot is given back when its
                        // task ends, which may be just after its client read
                        // the last byte: a 429 then says "try again shortly".
                        for _ in 0..50 {
                            let resp = request
                                .try_clone()
                                .expect("a body in memory")
                                .send()
                                .await
                                .expect("request");
                            let status = resp.status().as_u16();
                            if status != 429 {
                                return (status, resp.text().await.unwrap_or_default());
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                        panic!("the previous exports' slots were never given back");
                    }
                };
                let (status, expected) = run(&reference).await;
                assert_eq!(status, 200, "{names:?}: {query}: {expected}");
                let (statements, (status, answer)) = plain.statements_during(run(&plain)).await;
                assert_eq!(status, 200, "{names:?}: {query}: {answer}");
                let rows = expected.matches("\r\n").count() - 1;
                if answer != expected {
                    let differ = answer
                        .split("\r\n")
                        .zip(expected.split("\r\n"))
                        .find(|(a, b)| a != b);
                    panic!("{names:?}: {query}: rows and pages differ: {differ:?}");
                }
                assert!(rows > 0, "{names:?}: {query}: no rows");
                assert_eq!(
                    statements,
                    2 + rows as u64 / CHUNK,
                    "{names:?}: {query}: {rows} rows were not read as plain rows (a count and a statement per chunk)"
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 4 * 6, "{compared} compared");
}
on_both_databases!(a_csv_export_read_as_rows_is_the_executors_csv_byte_for_byte);

/// An export may start after a cursor of its list: CSV (plain rows) and
/// NDJSON (pages) give the rows paging gives after the same cursor.
async fn an_export_starts_after_the_cursor_it_is_given(backend: Backend) {
    let app = spawn_app(backend).await;
    let paged = paged_users(&app).await;
    let first = app
        .query(USERS_PAGE, json!({ "s": ["ACTIVE"], "after": null }))
        .await;
    let cursor = first["users"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let rest = &paged[100..];
    let query = "query($s: [UserStatus!], $c: String) { users(filter: {status: $s}, orderBy: EMAIL_ASC, after: $c) { nodes { id email } } }";
    let (status, _, body) = export(
        &app,
        &["admin"],
        "application/x-ndjson",
        query,
        json!({ "s": ["ACTIVE"], "c": cursor }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON")["id"].clone())
        .collect();
    let expected: Vec<Value> = rest.iter().map(|n| n["id"].clone()).collect();
    assert_eq!(ids, expected, "NDJSON after the cursor");
    let before = app.metrics().await;
    let (status, _, csv) = export(
        &app,
        &["admin"],
        "text/csv",
        query,
        json!({ "s": ["ACTIVE"], "c": cursor }),
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    // The export is counted once it ended (its task ends after the body).
    let done = |text: &str| {
        counter(
            text,
            "backplane_exports_total",
            &["list=\"users\"", "format=\"csv\"", "completed=\"true\""],
        )
    };
    let mut after = app.metrics().await;
    for _ in 0..50 {
        if done(&after) > done(&before) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = app.metrics().await;
    }
    assert!(done(&after) > done(&before), "the export is counted");
    let rows = |text: &str| counter(text, "backplane_export_rows_total", &["list=\"users\""]);
    // Other tests export users in this process too: at least ours.
    assert!(
        rows(&after) - rows(&before) >= rest.len() as f64,
        "rows counted: {} then {}",
        rows(&before),
        rows(&after)
    );
    let ids: Vec<&str> = csv
        .split("\r\n")
        .skip(1)
        .filter(|r| !r.is_empty())
        .map(|r| r.split(',').next().unwrap_or_default())
        .collect();
    let expected: Vec<&str> = rest
        .iter()
        .map(|n| n["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, expected, "CSV after the cursor");
    // A cursor of another order is refused as the query refuses it.
    let (status, _, body) = export(
        &app,
        &["admin"],
        "text/csv",
        "query($c: String) { users(orderBy: CREATED_AT_DESC, after: $c) { nodes { id } } }",
        json!({ "c": cursor }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["field"], "after", "{body}");
}
on_both_databases!(an_export_starts_after_the_cursor_it_is_given);

/// An export holds its audit event's place in the writer's queue from its
/// start: while one does (a queue of one), another is refused before it reads
/// anything, and starts once the first has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_whose_event_cannot_be_recorded_does_not_start() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        c.audit_queue = 1;
    })
    .await;
    let token = app.issuer.token("exporter-1", &["admin"]);
    let query = "query ExportWide { users { nodes { email organization { users(first: 100) { nodes { email name } } } } } }";
    let mut running = app
        .client
        .post(app.url("/export"))
        .bearer_auth(&token)
        .header("accept", "application/x-ndjson")
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request");
    assert_eq!(running.status().as_u16(), 200);
    running.chunk().await.expect("a chunk").expect("some bytes");

    let (status, content_type, body) = export(&app, &["admin"], "text/csv", USERS, json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(content_type, "application/json");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );

    drop(running);
    // The first export's event is written when it notices the client left.
    let mut status = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        (status, _, _) = export(&app, &["admin"], "text/csv", USERS, json!({})).await;
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "the export starts once the queue has room");
}

/// A client that stops reading holds its export (and what it reads) for
/// `stall` only: then the export is cut, its event says why, and what the
/// client reads afterwards ends in a cut transfer, never a complete-looking
/// file. (NDJSON: rows of several KiB, far more than the sockets hold; a CSV
/// of the test seed fits in them. Both formats run the same loop.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_has_its_export_cut() {
    let app = spawn_app_configured(Backend::Postgres, Mode::Serve, |c| {
        c.export.stall = Duration::from_secs(1);
    })
    .await;
    let token = app.issuer.token("exporter-1", &["admin"]);
    // Each row the organization's users three times over: tens of MiB in all.
    let colleagues = (0..3)
        .map(|i| {
            format!("u{i}: users(first: 100) {{ nodes {{ id email name status createdAt lastSeenAt }} }}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let query = format!(
        "query Stalled {{ users {{ nodes {{ email organization {{ {colleagues} }} }} }} }}"
    );
    let mut resp = app
        .client
        .post(app.url("/export"))
        .bearer_auth(&token)
        .header("accept", "application/x-ndjson")
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.headers());
    resp.chunk().await.expect("a chunk").expect("some bytes");
    // Not reading: the export waits, then gives up.
    let event = the_export_event(&app, "Stalled").await;
    let details: Value = event["details"].clone();
    assert_eq!(event["outcome"], "PARTIAL", "{event}");
    assert_eq!(
        details["export"]["cutShort"], "the client stopped reading for 1 s",
        "{details}"
    );
    // What the sockets held arrives, then the transfer is cut.
    let mut ended = None;
    for _ in 0..1_000_000 {
        match resp.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => {
                ended = Some("complete");
                break;
            }
            Err(_) => {
                ended = Some("cut");
                break;
            }
        }
    }
    assert_eq!(ended, Some("cut"), "the transfer ends cut");
}
