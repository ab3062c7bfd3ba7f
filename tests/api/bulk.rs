//! Bulk mutations: validate everything, apply set-based in one transaction with
//! the audit event, answer item by item.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::on_both_databases;

const BULK: &str = "mutation Bulk($input: BulkOrganizationStatusInput!) {
  bulkUpdateOrganizationStatus(input: $input) { requested changed unchanged dryRun replayed failed { id reason } }
}";

/// Ids and statuses of `n` organizations in `status`.
async fn orgs_in(app: &TestApp, status: &str, n: usize) -> Vec<String> {
    let data = app
        .query(
            "query($s: OrganizationStatus!, $n: Int) { organizations(first: $n, filter: {status: [$s]}) { nodes { id } } }",
            json!({ "s": status, "n": n }),
        )
        .await;
    let ids: Vec<String> = data["organizations"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|o| o["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids.len(), n, "the seed has {n} {status} organizations");
    ids
}

async fn statuses(app: &TestApp, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        let data = app
            .query(
                "query($id: ID!) { organization(id: $id) { status } }",
                json!({ "id": id }),
            )
            .await;
        out.push(
            data["organization"]["status"]
                .as_str()
                .unwrap_or("-")
                .to_owned(),
        );
    }
    out
}

async fn bulk_as(app: &TestApp, roles: &[&str], input: Value) -> Value {
    let token = app.issuer.token("ops-1", roles);
    let (status, body) = app
        .graphql_as(Some(&token), BULK, json!({ "input": input }))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn dry_runs_and_modes_do_what_they_say(backend: Backend) {
    let app = spawn_app(backend).await;
    let active = orgs_in(&app, "ACTIVE", 4).await;
    // Each call's whole result, snapshotted together below (ids are the
    // seed's, the same on both databases).
    let mut results = serde_json::Map::new();
    let mut result = |name: &str, body: &Value| {
        results.insert(
            name.to_owned(),
            body["data"]["bulkUpdateOrganizationStatus"].clone(),
        );
    };

    // A dry run says what would change and changes nothing.
    let body = bulk_as(
        &app,
        &["ops"],
        json!({ "ids": active, "status": "SUSPENDED", "reason": "test", "dryRun": true }),
    )
    .await;
    result("dry_run", &body);
    assert_eq!(statuses(&app, &active).await, vec!["ACTIVE"; 4]);

    // All or nothing with two unknown ids: nothing changes, both are listed.
    let mut ids = active.clone();
    ids.push("org_999999".into());
    ids.push("inv_1".into());
    let body = bulk_as(
        &app,
        &["ops"],
        json!({ "ids": ids, "status": "SUSPENDED", "reason": "test" }),
    )
    .await;
    result("all_or_nothing_with_two_bad_ids", &body);
    assert_eq!(statuses(&app, &active).await, vec!["ACTIVE"; 4]);

    // Best effort: the rest changes.
    let body = bulk_as(
        &app,
        &["ops"],
        json!({ "ids": ids, "status": "SUSPENDED", "reason": "test", "mode": "BEST_EFFORT" }),
    )
    .await;
    result("best_effort_with_two_bad_ids", &body);
    assert_eq!(statuses(&app, &active).await, vec!["SUSPENDED"; 4]);

    // Again: unchanged; and a forbidden transition fails with its reason.
    let body = bulk_as(
        &app,
        &["ops"],
        json!({ "ids": active[..2], "status": "SUSPENDED", "reason": "test" }),
    )
    .await;
    result("again_unchanged", &body);
    let body = bulk_as(
        &app,
        &["ops"],
        json!({ "ids": active[..1], "status": "TRIAL", "reason": "test" }),
    )
    .await;
    result("forbidden_transition", &body);
    crate::snapshots::snapshot_exact("bulk_status_modes", &Value::Object(results));

    // Every call left its audit event with what it did.
    let data = app
        .query(r#"{ auditEvents(first: 20, filter: {operationName: "Bulk"}) { nodes { operationType outcome details } } }"#, json!({}))
        .await;
    let events = data["auditEvents"]["nodes"].as_array().expect("events");
    assert_eq!(events.len(), 5, "{data}");
    assert!(events.iter().all(|e| e["operationType"] == "MUTATION"));
    let applied: Vec<Value> = events
        .iter()
        .map(|e| e["details"].clone())
        .filter(|d| d["applied"] == true && d["changed"] == 4)
        .collect();
    assert_eq!(applied.len(), 1, "{data}");
    assert_eq!(applied[0]["changedIds"].as_array().map(Vec::len), Some(4));
}
on_both_databases!(dry_runs_and_modes_do_what_they_say);

async fn idempotent_replays_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let active = orgs_in(&app, "ACTIVE", 3).await;
    let input = json!({ "ids": active, "status": "SUSPENDED", "reason": "fraud wave", "idempotencyKey": "job-42" });
    let first = bulk_as(&app, &["ops"], input.clone()).await;
    assert_eq!(
        first["data"]["bulkUpdateOrganizationStatus"]["changed"], 3,
        "{first}"
    );

    // Someone reactivates one; the replay must not suspend it again.
    bulk_as(
        &app,
        &["ops"],
        json!({ "ids": [active[0]], "status": "ACTIVE", "reason": "false alarm" }),
    )
    .await;
    let replay = bulk_as(&app, &["ops"], input.clone()).await;
    let r = &replay["data"]["bulkUpdateOrganizationStatus"];
    assert_eq!(
        (r["changed"].as_i64(), r["replayed"].as_bool()),
        (Some(3), Some(true)),
        "{replay}"
    );
    assert_eq!(
        statuses(&app, &active).await,
        vec!["ACTIVE", "SUSPENDED", "SUSPENDED"]
    );

    // The same key with another input is refused.
    let mut other = input.clone();
    other["reason"] = json!("something else");
    let body = bulk_as(&app, &["ops"], other).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "CONFLICT",
        "{body}"
    );

    // Keys are per principal: another caller's key of the same name is its own.
    let token = app.issuer.token("ops-2", &["ops"]);
    let (_, body) = app
        .graphql_as(Some(&token), BULK, json!({ "input": input }))
        .await;
    assert_eq!(
        body["data"]["bulkUpdateOrganizationStatus"]["replayed"], false,
        "{body}"
    );
}
on_both_databases!(idempotent_replays_change_nothing);

async fn the_wrong_role_is_refused_and_the_refusal_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let active = orgs_in(&app, "ACTIVE", 2).await;
    for roles in [&["support"][..], &["finance"], &["auditor"], &[]] {
        let body = bulk_as(
            &app,
            roles,
            json!({ "ids": active, "status": "CHURNED", "reason": "x" }),
        )
        .await;
        assert!(body["data"].is_null(), "{roles:?}: {body}");
    }
    assert_eq!(statuses(&app, &active).await, vec!["ACTIVE"; 2]);
    let data = app
        .query(r#"{ auditEvents(first: 20, filter: {outcome: DENIED}) { nodes { actorRoles operationType details } } }"#, json!({}))
        .await;
    let denied = data["auditEvents"]["nodes"].as_array().expect("events");
    assert_eq!(denied.len(), 4, "{data}");
    assert!(
        denied.iter().all(|e| e["details"]
            .to_string()
            .to_lowercase()
            .contains("bulkorganizationstatus")
            || e["details"]
                .to_string()
                .contains("bulkUpdateOrganizationStatus")),
        "{data}"
    );
    // Each refused as a mutation that never existed would be.
    for roles in [&["support"][..], &["finance"], &["auditor"], &[]] {
        let token = app.issuer.token("ops-1", roles);
        crate::hidden_schema::same_as_never_existing(
            &app,
            &token,
            &format!("{roles:?}"),
            BULK,
            &[
                "bulkUpdateOrganizationStatus",
                "BulkOrganizationStatusInput",
            ],
        )
        .await;
    }
}
on_both_databases!(the_wrong_role_is_refused_and_the_refusal_audited);

async fn a_mutation_whose_audit_write_fails_changes_nothing(backend: Backend) {
    use sea_orm::{ConnectionTrait, Database};

    let app = spawn_app(backend).await;
    let active = orgs_in(&app, "ACTIVE", 3).await;
    let raw = Database::connect(app.database_url()).await.expect("raw");
    raw.execute_unprepared("ALTER TABLE audit_events RENAME TO audit_events_gone")
        .await
        .expect("rename");
    let body = bulk_as(
        &app,
        &["ops"],
        json!({ "ids": active, "status": "SUSPENDED", "reason": "x" }),
    )
    .await;
    assert!(
        body["data"].is_null() || body["data"]["bulkUpdateOrganizationStatus"].is_null(),
        "{body}"
    );
    raw.execute_unprepared("ALTER TABLE audit_events_gone RENAME TO audit_events")
        .await
        .expect("rename back");
    assert_eq!(statuses(&app, &active).await, vec!["ACTIVE"; 3]);
}
on_both_databases!(a_mutation_whose_audit_write_fails_changes_nothing);

#[tokio::test]
async fn bulk_size_is_bounded() {
    use backplane::config::Mode;

    let app = crate::helpers::spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        c.bulk.max_items = 5;
    })
    .await;
    let ids: Vec<String> = (1..=6).map(|i| format!("org_{i}")).collect();
    let body = bulk_as(
        &app,
        &["ops"],
        json!({ "ids": ids, "status": "SUSPENDED", "reason": "x" }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED",
        "{body}"
    );
    let body = bulk_as(
        &app,
        &["ops"],
        json!({ "ids": ["org_1"], "status": "SUSPENDED", "reason": "  " }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
}

#[tokio::test]
async fn batch_requests_work_within_their_bound() {
    use backplane::config::Mode;

    let app = crate::helpers::spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        c.max_batch = 3;
    })
    .await;
    let token = app.issuer.token("admin-1", &["admin"]);
    let op = json!({ "query": "{ viewer { subject } }" });
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!([op, op, op]))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body.as_array().map(Vec::len), Some(3), "{body}");
    assert_eq!(body[2]["data"]["viewer"]["subject"], "admin-1");

    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("accept", "application/graphql-response+json")
        .json(&json!([op, op, op, op]))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED",
        "{body}"
    );
}

const BULK_IDS: &str = "mutation Bulk($input: BulkOrganizationStatusInput!) {
  bulkUpdateOrganizationStatus(input: $input) { requested changed unchanged replayed changedIds unchangedIds duplicateIds failed { id code reason } }
}";

async fn bulk_ids(app: &TestApp, input: Value) -> Value {
    let token = app.issuer.token("ops-1", &["ops"]);
    let (status, body) = app
        .graphql_as(Some(&token), BULK_IDS, json!({ "input": input }))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// What a client's cache needs: the ids of each outcome, failures with a
/// code; a repeated id counted once and reported once; the same ids in
/// another order are the same idempotent request; an empty list refused.
async fn a_bulk_result_names_the_ids_of_each_outcome(backend: Backend) {
    let app = spawn_app(backend).await;
    let active = orgs_in(&app, "ACTIVE", 2).await;
    let suspended = orgs_in(&app, "SUSPENDED", 1).await;
    let churned = orgs_in(&app, "CHURNED", 1).await;
    let ids = json!([
        active[0],
        active[1],
        suspended[0],
        active[0],
        "org_99999999",
        "usr_1",
        churned[0]
    ]);
    let body = bulk_ids(
        &app,
        json!({ "ids": ids, "status": "SUSPENDED", "reason": "cache test", "mode": "BEST_EFFORT", "idempotencyKey": "ids-1" }),
    )
    .await;
    let r = &body["data"]["bulkUpdateOrganizationStatus"];
    assert_eq!(r["requested"], 7, "{body}");
    assert_eq!(r["changedIds"], json!([active[0], active[1]]), "{body}");
    assert_eq!(r["changed"], 2, "{body}");
    assert_eq!(r["unchangedIds"], json!([suspended[0]]), "{body}");
    assert_eq!(r["duplicateIds"], json!([active[0]]), "{body}");
    let failed: Vec<(String, String)> = r["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or_default().to_owned(),
                f["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            ("org_99999999".to_owned(), "NOT_FOUND".to_owned()),
            ("usr_1".to_owned(), "NOT_AN_ID".to_owned()),
            (churned[0].clone(), "NOT_ALLOWED".to_owned()),
        ],
        "{body}"
    );
    assert_eq!(
        statuses(&app, &active).await,
        vec!["SUSPENDED", "SUSPENDED"]
    );

    // The same set in another order, with the same key: the first answer.
    let reordered = json!([
        churned[0],
        "usr_1",
        active[1],
        suspended[0],
        "org_99999999",
        active[0]
    ]);
    let replay = bulk_ids(
        &app,
        json!({ "ids": reordered, "status": "SUSPENDED", "reason": "cache test", "mode": "BEST_EFFORT", "idempotencyKey": "ids-1" }),
    )
    .await;
    let r = &replay["data"]["bulkUpdateOrganizationStatus"];
    assert_eq!(r["replayed"], true, "{replay}");
    assert_eq!(r["changedIds"], json!([active[0], active[1]]), "{replay}");

    // An empty list is refused with a message naming `ids`.
    let body = bulk_ids(
        &app,
        json!({ "ids": [], "status": "SUSPENDED", "reason": "nothing" }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    assert_eq!(body["errors"][0]["extensions"]["argument"], "ids", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at least one id"),
        "{body}"
    );
}
on_both_databases!(a_bulk_result_names_the_ids_of_each_outcome);
