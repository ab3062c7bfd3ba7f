//! The audit log's hash chain and `backplane audit verify`.

use backplane::store::audit::{NewAuditEvent, append_now};
use backplane::store::{Store, StoreOptions};
use sea_orm::{ConnectionTrait, Database};

use crate::helpers::{Backend, database};
use crate::on_both_databases;

fn event(n: i64) -> NewAuditEvent {
    NewAuditEvent {
        occurred_at: chrono::Utc::now(),
        actor_subject: format!("staff-{n}"),
        actor_roles: "support".into(),
        client_addr: Some("127.0.0.1".into()),
        request_id: Some(format!("req-{n}")),
        operation_type: "query".into(),
        operation_name: Some("Lookup".into()),
        document_hash: "ab".repeat(32),
        variables: "{}".into(),
        sensitive_fields: "[\"User.email\"]".into(),
        outcome: "ok".into(),
        duration_ms: n,
        details: None,
    }
}

/// Runs `backplane audit verify` on `url`: (success, output).
pub(crate) fn verify_cli(url: &str) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_backplane"))
        .args(["audit", "verify", "--database-url", url])
        .output()
        .expect("run backplane");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn audit_verify_detects_changes_removals_and_insertions(backend: Backend) {
    let db = database(backend).await;
    let store = Store::connect(&StoreOptions::new(db.url.clone()))
        .await
        .expect("store");
    for n in 1..=5 {
        append_now(&store, &[event(n)]).await.expect("append");
    }
    append_now(&store, &[event(6), event(7), event(8)])
        .await
        .expect("append a batch");
    let (ok, out) = verify_cli(&db.url);
    assert!(ok, "untouched log: {out}");
    assert!(out.contains("8 rows"), "{out}");

    let raw = Database::connect(db.url.as_str())
        .await
        .expect("raw connection");
    let ids: Vec<i64> = raw
        .query_all_raw(sea_orm::Statement::from_string(
            raw.get_database_backend(),
            "SELECT id FROM audit_events ORDER BY id".to_owned(),
        ))
        .await
        .expect("ids")
        .iter()
        .map(|r| r.try_get::<i64>("", "id").expect("id"))
        .collect();

    // An UPDATE of one field.
    raw.execute_unprepared(&format!(
        "UPDATE audit_events SET outcome = 'denied' WHERE id = {}",
        ids[2]
    ))
    .await
    .expect("tamper");
    let (ok, out) = verify_cli(&db.url);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("row {}", ids[2])), "{out}");
    raw.execute_unprepared(&format!(
        "UPDATE audit_events SET outcome = 'ok' WHERE id = {}",
        ids[2]
    ))
    .await
    .expect("restore");
    assert!(verify_cli(&db.url).0, "restored");

    // A DELETE: the row after it no longer follows.
    raw.execute_unprepared(&format!("DELETE FROM audit_events WHERE id = {}", ids[4]))
        .await
        .expect("delete");
    let (ok, out) = verify_cli(&db.url);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("row {}", ids[5])), "{out}");

    // A row inserted out of order (a copy of another row, given a new place).
    let db2 = database(backend).await;
    let store2 = Store::connect(&StoreOptions::new(db2.url.clone()))
        .await
        .expect("store");
    for n in 1..=4 {
        append_now(&store2, &[event(n)]).await.expect("append");
    }
    let raw2 = Database::connect(db2.url.as_str()).await.expect("raw");
    let copy_first = "INSERT INTO audit_events (occurred_at, actor_subject, actor_roles, client_addr, request_id, operation_type, operation_name, document_hash, variables, sensitive_fields, outcome, duration_ms, details, prev_hash, hash)
         SELECT occurred_at, actor_subject, actor_roles, client_addr, request_id, operation_type, operation_name, document_hash, variables, sensitive_fields, outcome, duration_ms, details, prev_hash, hash
         FROM audit_events ORDER BY id LIMIT 1";
    // A second row following the same row: the database refuses it.
    let refused = raw2.execute_unprepared(copy_first).await;
    assert!(refused.is_err(), "a fork of the chain was stored");
    // The first row moved to the end: the row that followed it no longer does.
    let first: i64 = raw2
        .query_one_raw(sea_orm::Statement::from_string(
            raw2.get_database_backend(),
            "SELECT min(id) AS id FROM audit_events".to_owned(),
        ))
        .await
        .expect("first")
        .expect("a row")
        .try_get("", "id")
        .expect("id");
    raw2.execute_unprepared(&format!(
        "CREATE TABLE moved AS SELECT * FROM audit_events WHERE id = {first}"
    ))
    .await
    .expect("copy out");
    raw2.execute_unprepared(&format!("DELETE FROM audit_events WHERE id = {first}"))
        .await
        .expect("take out");
    raw2.execute_unprepared(
        &copy_first.replace("FROM audit_events ORDER BY id", "FROM moved ORDER BY id"),
    )
    .await
    .expect("insert at the end");
    let (ok, out) = verify_cli(&db2.url);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("row {}", first + 1)), "{out}");
}
on_both_databases!(audit_verify_detects_changes_removals_and_insertions);

async fn concurrent_appends_keep_one_chain(backend: Backend) {
    let db = database(backend).await;
    let a = Store::connect(&StoreOptions::new(db.url.clone()))
        .await
        .expect("a");
    let b = Store::connect(&StoreOptions::new(db.url.clone()))
        .await
        .expect("b");
    let mut tasks = Vec::new();
    for (i, store) in [a, b].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..25 {
                append_now(&store, &[event(i as i64 * 10_000 + n)])
                    .await
                    .expect("append");
            }
            // Large batches too: several multi-row INSERTs in one transaction.
            let batch: Vec<_> = (0..1_200)
                .map(|n| event(i as i64 * 10_000 + 100 + n))
                .collect();
            append_now(&store, &batch)
                .await
                .expect("append a large batch");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let (ok, out) = verify_cli(&db.url);
    assert!(ok, "{out}");
    assert!(out.contains("2450 rows"), "{out}");
}
on_both_databases!(concurrent_appends_keep_one_chain);

async fn reads_are_recorded_with_their_sensitive_fields(backend: Backend) {
    use serde_json::json;

    let app = crate::helpers::spawn_app(backend).await;
    let finance = app.issuer.token("finance-1", &["finance"]);
    let (status, body) = app
        .graphql_as(
            Some(&finance),
            "query CostReview($apiToken: String!, $n: Int) { organizationBySlug(slug: $apiToken) { id } organizations(first: $n) { nodes { name monthlyCostCents users(first: 1) { nodes { email } } } } }",
            json!({ "apiToken": "tok-very-secret", "n": 2 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");

    // A refused attempt is recorded too, naming what was asked for.
    let support = app.issuer.token("support-1", &["support"]);
    let (_, body) = app
        .graphql_as(
            Some(&support),
            "query Peek { organizations { nodes { internalFlags { vip } } } }",
            json!({}),
        )
        .await;
    assert!(body["data"].is_null());

    let data = app
        .query(
            "{ auditEvents(first: 50) { nodes { actorSubject actorRoles operationType operationName documentHash variables sensitiveFields outcome requestId clientAddr details } } }",
            json!({}),
        )
        .await;
    let events = data["auditEvents"]["nodes"]
        .as_array()
        .expect("events")
        .clone();
    let read = events
        .iter()
        .find(|e| e["actorSubject"] == "finance-1")
        .expect("the finance read is recorded");
    assert_eq!(read["operationName"], "CostReview");
    assert_eq!(read["operationType"], "QUERY");
    assert_eq!(read["outcome"], "OK");
    assert_eq!(read["actorRoles"], json!(["finance"]));
    let fields = read["sensitiveFields"].as_array().expect("fields");
    assert!(
        fields.contains(&json!("Organization.monthlyCostCents")),
        "{read}"
    );
    assert!(fields.contains(&json!("User.email")), "{read}");
    assert_eq!(read["documentHash"].as_str().map(str::len), Some(64));
    assert!(read["requestId"].is_string(), "{read}");
    assert_eq!(read["clientAddr"], "127.0.0.1");
    let variables = read["variables"].to_string();
    assert!(
        variables.contains("\"apiToken\":\"[hidden: 15 characters, HMAC-SHA256 ")
            && variables.contains("\"n\":2")
            && !variables.contains("tok-very-secret"),
        "{variables}"
    );

    let denied = events
        .iter()
        .find(|e| e["actorSubject"] == "support-1")
        .expect("the refused read is recorded");
    assert_eq!(denied["outcome"], "DENIED");
    assert_eq!(denied["operationName"], "Peek");
    assert!(
        denied["details"]
            .to_string()
            .contains("Organization.internalFlags"),
        "{denied}"
    );

    // The log is readable by the filter too.
    let data = app
        .query(
            r#"{ auditEvents(filter: {field: "Organization.monthlyCostCents"}) { nodes { actorSubject } } }"#,
            json!({}),
        )
        .await;
    assert!(
        data["auditEvents"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .any(|e| e["actorSubject"] == "finance-1")
    );
}
on_both_databases!(reads_are_recorded_with_their_sensitive_fields);

#[tokio::test]
async fn when_the_audit_log_cannot_be_written_the_answer_is_withheld() {
    use serde_json::json;

    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let token = app.issuer.token("finance-1", &["finance"]);
    let (status, body) = app
        .graphql_as(
            Some(&token),
            "{ organizations(first: 1) { nodes { monthlyCostCents } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(body["data"]["organizations"].is_object(), "{body}");

    // The database refuses audit rows from now on.
    let raw = Database::connect(app.database_url()).await.expect("raw");
    raw.execute_unprepared("ALTER TABLE audit_events RENAME TO audit_events_gone")
        .await
        .expect("rename");
    let (_, body) = app
        .graphql_as(
            Some(&token),
            "{ organizations(first: 1) { nodes { monthlyCostCents } } }",
            json!({}),
        )
        .await;
    assert!(body["data"].is_null(), "an unrecorded answer left: {body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    assert!(!body.to_string().contains("monthlyCostCents"));
}

/// Two Backplane servers behind a load balancer write to one PostgreSQL at once:
/// their events form one unbroken chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_write_one_chain() {
    use serde_json::json;

    let first = crate::helpers::spawn_app(Backend::Postgres).await;
    let second = crate::helpers::spawn_app_on(first.database_url(), &first.issuer).await;
    let token = first.issuer.token("finance-1", &["finance"]);
    let mut tasks = Vec::new();
    for (i, url) in [first.url("/graphql"), second.url("/graphql")]
        .into_iter()
        .enumerate()
    {
        let client = first.client.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..20 {
                let resp = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "query": format!("query Q{i}_{n} {{ organizations(first: 2) {{ nodes {{ monthlyCostCents }} }} }}") }))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(resp.status().as_u16(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let (ok, out) = verify_cli(first.database_url());
    assert!(ok, "{out}");
    assert!(
        out.contains("40 rows") || out.contains("41 rows") || out.contains("42 rows"),
        "{out}"
    );
}

/// Every field the policy audits is recorded when resolved, and only then.
async fn every_audited_field_is_recorded_when_resolved(backend: Backend) {
    use serde_json::json;

    let app = crate::helpers::spawn_app(backend).await;
    let admin = app.issuer.token("admin-audit", &["admin"]);
    // Every audited field of the catalog, each reached from a root list of
    // its own entity where there is one (generated: a new audited field is
    // asked for without editing this test).
    let all = format!(
        "query All {{ {} }}",
        crate::catalog::asking_for_each_audited_field()
    );
    let (status, body) = app.graphql_as(Some(&admin), &all, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    // Asked for under a parent that does not exist: nothing was read.
    let (_, body) = app
        .graphql_as(
            Some(&admin),
            r#"query Nothing { organizationBySlug(slug: "no-such-org") { monthlyCostCents users { nodes { email } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["organizationBySlug"], json!(null), "{body}");

    let data = app
        .query(
            "{ auditEvents(first: 50) { nodes { operationName sensitiveFields } } }",
            json!({}),
        )
        .await;
    let events = data["auditEvents"]["nodes"].as_array().expect("events");
    let fields = |name: &str| {
        let event = events
            .iter()
            .find(|e| e["operationName"] == name)
            .unwrap_or_else(|| panic!("{name} is recorded: {events:?}"));
        let mut fields: Vec<String> = event["sensitiveFields"]
            .as_array()
            .expect("fields")
            .iter()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
        fields.sort();
        fields
    };
    let mut audited: Vec<String> = backplane::catalog::audited_fields().collect();
    audited.sort();
    assert_eq!(fields("All"), audited);
    assert!(fields("Nothing").is_empty());
}
on_both_databases!(every_audited_field_is_recorded_when_resolved);

/// Once the audit writer has appended, the next read's event follows the head
/// it remembers in one statement (PostgreSQL); mutations appending their own
/// events in between move the head, the writer notices and reads it again, and
/// the chain stays one.
async fn reads_append_after_the_remembered_head_and_mutations_interleave(backend: Backend) {
    use serde_json::json;

    let app = std::sync::Arc::new(crate::helpers::spawn_app(backend).await);
    let read = "query Read { organizations(first: 1) { nodes { monthlyCostCents } } }";
    app.query(read, json!({})).await;
    let before = app.store.audit_statements_sent();
    app.query(read, json!({})).await;
    let one_read = app.store.audit_statements_sent() - before;
    match backend {
        Backend::Postgres => assert_eq!(one_read, 1, "one statement appends a read's event"),
        // SQLite: a transaction of its own (begin, head, insert, commit).
        Backend::Sqlite => assert!(one_read <= 4, "{one_read}"),
    }

    let mut tasks = Vec::new();
    for i in 0..2 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..15 {
                if (n + i) % 3 == 0 {
                    let reason = format!("chain test {i}-{n}");
                    app.query(
                        "mutation Flag($reason: String!) { bulkSetOrganizationFlag(input: {ids: [\"org_1\"], flag: VIP, value: true, reason: $reason}) { requested } }",
                        json!({ "reason": reason }),
                    )
                    .await;
                } else {
                    app.query(read, json!({})).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let (ok, out) = verify_cli(app.database_url());
    assert!(ok, "{out}");
    assert!(out.contains("32 rows"), "{out}");
    let metrics = app.metrics().await;
    let appends: &[&str] = match backend {
        Backend::Postgres => &["one_statement", "locked"],
        Backend::Sqlite => &["locked"],
    };
    for append in appends {
        let needle = format!("backplane_audit_batches_total{{append=\"{append}\"}}");
        assert!(metrics.contains(&needle), "{needle} in {metrics}");
    }
}
on_both_databases!(reads_append_after_the_remembered_head_and_mutations_interleave);

/// Every text column of every audit event, concatenated, that contains
/// `needle`.
pub(crate) async fn events_containing(app: &crate::helpers::TestApp, needle: &str) -> i64 {
    let db = Database::connect(app.database_url())
        .await
        .expect("raw connection");
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT count(*) AS n FROM audit_events e WHERE e::text LIKE $1"
                }
                _ => {
                    "SELECT count(*) AS n FROM audit_events WHERE (coalesce(actor_subject, '') || coalesce(actor_roles, '') || coalesce(client_addr, '') || coalesce(request_id, '') || coalesce(operation_type, '') || coalesce(operation_name, '') || coalesce(document_hash, '') || coalesce(variables, '') || coalesce(sensitive_fields, '') || coalesce(outcome, '') || coalesce(details, '')) LIKE ?"
                }
            },
            [sea_orm::Value::from(format!("%{needle}%"))],
        ))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index(0).expect("n")
}

/// No value a caller sends reaches the audit log in clear unless the catalog
/// records it, whatever the variable's name: names on no list (`pwd`, `otp`,
/// `passphrase`, `accessKey`, `zq`), text, a number where text is declared,
/// a secret where an enum is declared, an undeclared variable, a document
/// that does not parse, a mutation's idempotency key and message body.
/// Searched for as text in every column of the table; a search term, which
/// the catalog records, is found there.
async fn no_secret_reaches_the_audit_log_whatever_its_name(backend: Backend) {
    use serde_json::json;
    let app = crate::helpers::spawn_app(backend).await;
    let token = app.issuer.token("admin-1", &["admin"]);
    let cases: Vec<(&str, serde_json::Value)> = vec![
        (
            "query Q1($pwd: String, $otp: String) { users(first: 1, filter: {search: $pwd}) { totalCount } organizations(first: 1, filter: {search: $otp}) { totalCount } }",
            json!({ "pwd": "S3CRET-pwd", "otp": "S3CRET-otp" }),
        ),
        (
            "query Q2 { __typename }",
            json!({ "passphrase": "S3CRET-passphrase" }),
        ),
        (
            "query Q3($accessKey: String) { users(first: 1, filter: {search: $accessKey}) { totalCount } }",
            json!({ "accessKey": 987_654_321_123_u64 }),
        ),
        (
            "query Q4($zq: [UserStatus!]) { users(first: 1, filter: {status: $zq}) { totalCount } }",
            json!({ "zq": ["S3CRET-zq"] }),
        ),
        (
            "query Q5($pwd: String) { users(",
            json!({ "pwd": "S3CRET-unparsed" }),
        ),
        (
            "mutation Q6($input: ReplyToTicketInput!) { replyToTicket(input: $input) { message { id } } }",
            json!({ "input": { "ticketId": "tkt_999999", "body": "S3CRET-body", "idempotencyKey": "S3CRET-idem" } }),
        ),
        (
            "query Q7($f: UserFilter) { users(first: 1, filter: $f) { totalCount } }",
            json!({ "f": { "search": "visible-search-term" } }),
        ),
    ];
    for (query, variables) in &cases {
        app.graphql_as(Some(&token), query, variables.clone()).await;
    }
    // The events are written behind the answers: the last one is there once
    // the recorded search term is.
    for _ in 0..100 {
        if events_containing(&app, "visible-search-term").await > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        events_containing(&app, "visible-search-term").await,
        1,
        "the catalog records searches"
    );
    for secret in ["S3CRET", "987654321123"] {
        assert_eq!(
            events_containing(&app, secret).await,
            0,
            "{secret} reached the audit log"
        );
    }
    let events = app
        .query(
            "{ auditEvents(first: 20, filter: {actor: \"admin-1\"}) { nodes { operationName variables } } }",
            json!({}),
        )
        .await;
    let of = |name: &str| -> serde_json::Value {
        events["auditEvents"]["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|e| e["operationName"] == name))
            .map(|e| e["variables"].clone())
            .unwrap_or_else(|| panic!("no event for {name}: {events}"))
    };
    assert_eq!(of("Q2"), json!({}), "an undeclared variable is not kept");
    let q6 = of("Q6");
    assert_eq!(q6["input"]["ticketId"], "tkt_999999", "an ID is kept: {q6}");
    assert!(
        q6["input"]["body"]
            .as_str()
            .is_some_and(|b| b.starts_with("[hidden: 11 characters, HMAC-SHA256 ")),
        "{q6}"
    );
}
on_both_databases!(no_secret_reaches_the_audit_log_whatever_its_name);

/// Runs `backplane audit verify` on `url` against the checkpoints in `dir`
/// signed by `public_key`: (success, output).
fn verify_with_checkpoints(
    url: &str,
    dir: &std::path::Path,
    public_key: &std::path::Path,
) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_backplane"))
        .args(["audit", "verify", "--database-url", url, "--checkpoints"])
        .arg(dir)
        .arg("--public-key")
        .arg(public_key)
        .output()
        .expect("run backplane");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `backplane audit keygen --out PREFIX`: the private key readable by its
/// owner only.
fn keygen(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let prefix = dir.join("audit-key");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_backplane"))
        .args(["audit", "keygen", "--out"])
        .arg(&prefix)
        .output()
        .expect("run backplane");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = dir.join("audit-key.pub");
    assert!(
        std::fs::read_to_string(&public)
            .expect("public key")
            .contains("BEGIN PUBLIC KEY")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&prefix)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is its owner's alone");
    }
    // Never over an existing key.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_backplane"))
        .args(["audit", "keygen", "--out"])
        .arg(&prefix)
        .output()
        .expect("run backplane");
    assert!(!again.status.success());
    (prefix, public)
}

fn checkpoint_settings(
    key: &std::path::Path,
    dir: &std::path::Path,
    instance: &str,
) -> backplane::audit::checkpoint::Settings {
    backplane::audit::checkpoint::Settings {
        key_file: key.to_owned(),
        dir: Some(dir.to_owned()),
        instance: instance.to_owned(),
        every_events: 5,
        every: std::time::Duration::from_millis(300),
    }
}

/// A server that checkpoints into `dir` as `instance`, with `key`.
async fn checkpointing_app(
    backend: Backend,
    key: &std::path::Path,
    dir: &std::path::Path,
) -> crate::helpers::TestApp {
    crate::helpers::spawn_app_configured(backend, backplane::config::Mode::Serve, |c| {
        c.audit_checkpoints = Some(checkpoint_settings(key, dir, "one"));
    })
    .await
}

/// Reads as `app` until the chain holds `events` more rows, then waits for
/// a checkpoint of its head in `dir`; returns the head's id.
async fn checkpointed(
    app: &crate::helpers::TestApp,
    token: &str,
    dir: &std::path::Path,
    events: usize,
) -> i64 {
    for n in 0..events {
        let (status, _) = app
            .graphql_as(
                Some(token),
                &format!(
                    "query Read{n} {{ organizations(first: 1) {{ nodes {{ monthlyCostCents }} }} }}"
                ),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let head = backplane::store::audit::head(&app.store)
        .await
        .expect("head")
        .expect("rows")
        .0;
    for _ in 0..100 {
        let found = backplane::audit::checkpoint::read_dir(dir).unwrap_or_default();
        if found
            .iter()
            .any(|f| f.checkpoint.as_ref().is_ok_and(|c| c.sequence >= head))
        {
            return head;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no checkpoint of row {head} in {}", dir.display());
}

/// What only checkpoints outside the database catch: the newest rows
/// deleted, and a stretch rewritten with every hash after it recomputed
/// (the chain alone verifies in both cases); and a forged checkpoint.
async fn checkpoints_catch_what_the_chain_alone_cannot(backend: Backend) {
    use backplane::audit::checkpoint::{Checkpoint, Kind};
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(keys.path());

    // The newest rows deleted.
    let dir = tempfile::tempdir().expect("tempdir");
    let app = checkpointing_app(backend, &key, dir.path()).await;
    let token = app.issuer.token("finance-1", &["finance"]);
    let head = checkpointed(&app, &token, dir.path(), 12).await;
    let (ok, out) = verify_with_checkpoints(app.database_url(), dir.path(), &public);
    assert!(ok, "{out}");
    assert!(out.contains("checkpoints hold"), "{out}");
    let raw = Database::connect(app.database_url()).await.expect("raw");
    raw.execute_unprepared(&format!("DELETE FROM audit_events WHERE id > {}", head - 3))
        .await
        .expect("delete");
    let (ok, out) = verify_cli(app.database_url());
    assert!(ok, "the chain alone misses it: {out}");
    let (ok, out) = verify_with_checkpoints(app.database_url(), dir.path(), &public);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("at row {head}")) && out.contains("its newest rows were deleted"),
        "{out}"
    );

    // A forged checkpoint (a valid one, its row moved on).
    let found = backplane::audit::checkpoint::read_dir(dir.path()).expect("checkpoints");
    let real: Checkpoint = found[0].checkpoint.clone().expect("a checkpoint");
    let forged = Checkpoint {
        sequence: real.sequence + 1,
        ..real.clone()
    };
    let forged_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        forged_dir.path().join("mallory.ndjson"),
        format!("{}\n", serde_json::to_string(&forged).expect("json")),
    )
    .expect("write");
    let (ok, out) = verify_with_checkpoints(app.database_url(), forged_dir.path(), &public);
    assert!(!ok, "{out}");
    assert!(
        out.contains("mallory.ndjson line 1") && out.contains("not signed by this key"),
        "{out}"
    );
    assert_eq!(real.kind, Kind::Head);

    // A stretch rewritten, every hash after it computed again.
    let dir = tempfile::tempdir().expect("tempdir");
    let app = checkpointing_app(backend, &key, dir.path()).await;
    let token = app.issuer.token("finance-1", &["finance"]);
    let head = checkpointed(&app, &token, dir.path(), 12).await;
    let raw = Database::connect(app.database_url()).await.expect("raw");
    let rows = raw
        .query_all_raw(sea_orm::Statement::from_string(
            raw.get_database_backend(),
            "SELECT id, occurred_at, actor_subject, actor_roles, client_addr, request_id, operation_type, operation_name, document_hash, variables, sensitive_fields, outcome, duration_ms, details FROM audit_events ORDER BY id".to_owned(),
        ))
        .await
        .expect("rows");
    let mut prev = backplane::store::audit::GENESIS.to_owned();
    let rewrite_from = head - 6;
    for row in &rows {
        let id: i64 = row.try_get("", "id").expect("id");
        let mut event = NewAuditEvent {
            occurred_at: row.try_get("", "occurred_at").expect("at"),
            actor_subject: row.try_get("", "actor_subject").expect("subject"),
            actor_roles: row.try_get("", "actor_roles").expect("roles"),
            client_addr: row.try_get("", "client_addr").expect("addr"),
            request_id: row.try_get("", "request_id").expect("request"),
            operation_type: row.try_get("", "operation_type").expect("type"),
            operation_name: row.try_get("", "operation_name").expect("name"),
            document_hash: row.try_get("", "document_hash").expect("hash"),
            variables: row.try_get("", "variables").expect("variables"),
            sensitive_fields: row.try_get("", "sensitive_fields").expect("fields"),
            outcome: row.try_get("", "outcome").expect("outcome"),
            duration_ms: row.try_get("", "duration_ms").expect("duration"),
            details: row.try_get("", "details").expect("details"),
        };
        if id == rewrite_from {
            event.actor_subject = "somebody-else".into();
        }
        let hash = backplane::store::audit::row_hash(&prev, &event);
        if id >= rewrite_from {
            raw.execute_raw(sea_orm::Statement::from_sql_and_values(
                raw.get_database_backend(),
                match raw.get_database_backend() {
                    sea_orm::DbBackend::Postgres => "UPDATE audit_events SET actor_subject = $1, prev_hash = $2, hash = $3 WHERE id = $4",
                    _ => "UPDATE audit_events SET actor_subject = ?, prev_hash = ?, hash = ? WHERE id = ?",
                },
                [
                    event.actor_subject.clone().into(),
                    prev.clone().into(),
                    hash.clone().into(),
                    id.into(),
                ],
            ))
            .await
            .expect("rewrite");
        }
        prev = hash;
    }
    let (ok, out) = verify_cli(app.database_url());
    assert!(ok, "the chain alone misses it: {out}");
    let (ok, out) = verify_with_checkpoints(app.database_url(), dir.path(), &public);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("row {head} has another hash")),
        "{out}"
    );
}
on_both_databases!(checkpoints_catch_what_the_chain_alone_cannot);

/// Two instances on one PostgreSQL, each its own file of checkpoints of the
/// one chain: both hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_checkpoint_one_chain() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(keys.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let first = crate::helpers::spawn_app_configured(
        Backend::Postgres,
        backplane::config::Mode::Serve,
        |c| {
            c.audit_checkpoints = Some(checkpoint_settings(&key, dir.path(), "one"));
        },
    )
    .await;
    let second =
        crate::helpers::spawn_app_on_configured(first.database_url(), &first.issuer, |c| {
            c.audit_checkpoints = Some(checkpoint_settings(&key, dir.path(), "two"));
        })
        .await;
    let token = first.issuer.token("finance-1", &["finance"]);
    checkpointed(&first, &token, dir.path(), 8).await;
    checkpointed(&second, &token, dir.path(), 8).await;
    assert!(dir.path().join("one.ndjson").exists() && dir.path().join("two.ndjson").exists());
    let (ok, out) = verify_with_checkpoints(first.database_url(), dir.path(), &public);
    assert!(ok, "{out}");
}

/// `backplane audit prune --before`: the oldest events go, a signed
/// checkpoint of the prune is written, and the rest verifies, alone and
/// against the checkpoints; the oldest rows removed without a prune do not.
async fn a_pruned_log_still_verifies(backend: Backend) {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(keys.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let app = checkpointing_app(backend, &key, dir.path()).await;
    let token = app.issuer.token("finance-1", &["finance"]);
    checkpointed(&app, &token, dir.path(), 6).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cut = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    checkpointed(&app, &token, dir.path(), 6).await;
    let before = backplane::store::audit::head(&app.store)
        .await
        .expect("head");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_backplane"))
        .args([
            "audit",
            "prune",
            "--database-url",
            app.database_url(),
            "--before",
        ])
        .arg(cut.to_rfc3339())
        .arg("--audit-signing-key")
        .arg(&key)
        .arg("--audit-checkpoint-dir")
        .arg(dir.path())
        .output()
        .expect("run backplane");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("pruned "), "{text}");
    assert_eq!(
        backplane::store::audit::head(&app.store)
            .await
            .expect("head"),
        before,
        "the newest events stay"
    );
    let raw = Database::connect(app.database_url()).await.expect("raw");
    let old = raw
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            raw.get_database_backend(),
            match raw.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT count(*) AS n FROM audit_events WHERE occurred_at < $1"
                }
                _ => "SELECT count(*) AS n FROM audit_events WHERE occurred_at < ?",
            },
            [cut.into()],
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("n");
    assert_eq!(old, 0, "every event before the cut is gone");

    let (ok, out) = verify_cli(app.database_url());
    assert!(ok, "{out}");
    let (ok, out) = verify_with_checkpoints(app.database_url(), dir.path(), &public);
    assert!(ok, "{out}");

    // Without the prune's record, the chain's start is a removal.
    raw.execute_unprepared("DELETE FROM audit_prunes")
        .await
        .expect("delete");
    let (ok, out) = verify_cli(app.database_url());
    assert!(!ok, "{out}");
}
on_both_databases!(a_pruned_log_still_verifies);

/// `backplane audit export` writes a copy that `verify --from-file` checks as
/// it checks the database: whole or from a date, against the checkpoints; a
/// line changed in the copy is found.
async fn a_copy_of_the_log_verifies_against_the_checkpoints(backend: Backend) {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(keys.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let app = checkpointing_app(backend, &key, dir.path()).await;
    let token = app.issuer.token("finance-1", &["finance"]);
    checkpointed(&app, &token, dir.path(), 6).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cut = chrono::Utc::now();
    checkpointed(&app, &token, dir.path(), 6).await;
    let copies = tempfile::tempdir().expect("tempdir");
    let export = |name: &str, since: Option<String>| {
        let path = copies.path().join(name);
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_backplane"));
        command
            .args([
                "audit",
                "export",
                "--database-url",
                app.database_url(),
                "--out",
            ])
            .arg(&path);
        if let Some(since) = since {
            command.args(["--since", &since]);
        }
        let out = command.output().expect("run backplane");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    };
    let verify = |path: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_backplane"))
            .args(["audit", "verify", "--from-file"])
            .arg(path)
            .arg("--checkpoints")
            .arg(dir.path())
            .arg("--public-key")
            .arg(&public)
            .output()
            .expect("run backplane");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let whole = export("whole.ndjson", None);
    let (ok, out) = verify(&whole);
    assert!(ok, "{out}");
    assert!(out.contains("checkpoints hold"), "{out}");
    let recent = export("recent.ndjson", Some(cut.to_rfc3339()));
    let (ok, out) = verify(&recent);
    assert!(ok, "a copy from a date: {out}");
    assert!(
        std::fs::read_to_string(&recent)
            .expect("copy")
            .lines()
            .count()
            < std::fs::read_to_string(&whole)
                .expect("copy")
                .lines()
                .count()
    );

    let text = std::fs::read_to_string(&whole).expect("copy");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut event: serde_json::Value = serde_json::from_str(&lines[3]).expect("json");
    event["actor_subject"] = "somebody-else".into();
    lines[3] = event.to_string();
    std::fs::write(&whole, lines.join("\n") + "\n").expect("write");
    let (ok, out) = verify(&whole);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("broken at row {}", event["id"])),
        "{out}"
    );
}
on_both_databases!(a_copy_of_the_log_verifies_against_the_checkpoints);

/// The events of `app`'s database whose `column` is `value`, oldest first,
/// with their `details` parsed.
pub(crate) async fn events_where(
    app: &crate::helpers::TestApp,
    column: backplane::store::entities::audit_event::Column,
    value: &str,
) -> Vec<(
    backplane::store::entities::audit_event::Model,
    serde_json::Value,
)> {
    use backplane::store::entities::audit_event;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let db = Database::connect(app.database_url())
        .await
        .expect("raw connection");
    let events = audit_event::Entity::find()
        .filter(column.eq(value))
        .order_by_asc(audit_event::Column::Id)
        .all(&db)
        .await
        .expect("read the audit log");
    db.close().await.ok();
    events
        .into_iter()
        .map(|e| {
            let details =
                serde_json::from_str(e.details.as_deref().unwrap_or("null")).expect("JSON");
            (e, details)
        })
        .collect()
}

/// The outcomes and details of the operation named `name`, oldest first.
async fn events_named(
    app: &crate::helpers::TestApp,
    name: &str,
) -> Vec<(String, serde_json::Value)> {
    use backplane::store::entities::audit_event::Column;
    events_where(app, Column::OperationName, name)
        .await
        .into_iter()
        .map(|(e, details)| (e.outcome, details))
        .collect()
}

/// Every field of a mutation document is in its events: a change that
/// committed names its sibling fields, and a later field's failure is an
/// event of its own, with its path and code; a document refused whole
/// names every field it asked for.
async fn every_field_of_a_mutation_document_is_in_its_events(backend: Backend) {
    use serde_json::json;
    let app = crate::helpers::spawn_app(backend).await;
    let data = app
        .query(
            "{ organizations(first: 1, filter: {status: ACTIVE}) { nodes { id version } } }",
            json!({}),
        )
        .await;
    let org = &data["organizations"]["nodes"][0];
    let (id, version) = (org["id"].clone(), org["version"].as_i64().expect("version"));
    let ops = app.issuer.token("ops-1", &["ops"]);
    let (status, body) = app
        .graphql_as(
            Some(&ops),
            "mutation Two($a: SetOrganizationFlagInput!, $b: SetOrganizationFlagInput!) {
               first: setOrganizationFlag(input: $a) { organization { id } }
               second: setOrganizationFlag(input: $b) { organization { id } }
             }",
            json!({
                "a": { "id": id, "flag": "VIP", "value": true, "reason": "big deal", "expectedVersion": version },
                "b": { "id": id, "flag": "VIP", "value": false, "reason": "", "expectedVersion": version + 1 },
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    let fields = json!(["first: setOrganizationFlag", "second: setOrganizationFlag"]);
    let events = events_named(&app, "Two").await;
    assert_eq!(events.len(), 2, "the change and the failure: {events:#?}");
    assert_eq!(events[0].0, "ok");
    assert_eq!(events[0].1["fields"], fields);
    assert_ne!(events[1].0, "ok");
    assert_eq!(events[1].1["fields"], fields);
    assert_eq!(
        events[1].1["failed"],
        json!([{ "path": "second", "code": "BAD_USER_INPUT" }]),
        "{events:#?}"
    );

    // Support may extend a trial but not set a flag: the document is
    // refused whole, and its event names both fields.
    let trial = app
        .query(
            "{ organizations(first: 1, filter: {status: TRIAL}) { nodes { id } } }",
            json!({}),
        )
        .await["organizations"]["nodes"][0]["id"]
        .clone();
    let support = app.issuer.token("support-1", &["support"]);
    let (status, body) = app
        .graphql_as(
            Some(&support),
            "mutation Both($t: ExtendTrialInput!, $f: SetOrganizationFlagInput!) {
               extendTrial(input: $t) { organization { id } }
               setOrganizationFlag(input: $f) { organization { id } }
             }",
            json!({
                "t": { "id": trial, "days": 5, "reason": "evaluating" },
                "f": { "id": id, "flag": "VIP", "value": false, "reason": "why not", "expectedVersion": version + 1 },
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"].is_null(), "{body}");
    let events = events_named(&app, "Both").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].0, "denied");
    assert_eq!(
        events[0].1["fields"],
        json!(["extendTrial", "setOrganizationFlag"])
    );
}
on_both_databases!(every_field_of_a_mutation_document_is_in_its_events);

/// At shutdown, after the last requests' events and the last refusals are
/// written, the instance signs the chain's head one last time: the
/// checkpoints cover every event, and the chain verifies against them.
async fn shutdown_writes_the_last_checkpoint_after_the_last_events(backend: Backend) {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, public) = keygen(keys.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app =
        crate::helpers::spawn_app_configured(backend, backplane::config::Mode::Serve, |c| {
            let mut settings = checkpoint_settings(&key, dir.path(), "leaving");
            // Neither count nor time comes due while the test runs.
            settings.every_events = 1_000_000;
            settings.every = std::time::Duration::from_secs(3600);
            c.audit_checkpoints = Some(settings);
            c.audit_fold = std::time::Duration::from_secs(3600);
        })
        .await;
    let token = app.issuer.token("auditor-1", &["auditor"]);
    for n in 0..3 {
        let (status, _) = app
            .graphql_as(
                Some(&token),
                &format!("query Last{n} {{ viewer {{ subject }} }}"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 200);
    }
    // Two refusals: the first recorded at once, the second held in its
    // fold until shutdown. The second is sent only once the first's event is
    // in the chain: sent together, both could be folded into that first
    // event, and nothing would be left for shutdown to write.
    let head_now = || async {
        backplane::store::audit::head(&app.store)
            .await
            .expect("head")
            .map_or(0, |h| h.0)
    };
    let after_reads = head_now().await;
    for n in 0..2 {
        let (status, _) = app
            .graphql_as(
                Some("not-a-token"),
                "{ viewer { subject } }",
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, 401);
        if n == 0 {
            let mut waited = 0;
            while head_now().await == after_reads {
                waited += 1;
                assert!(waited < 200, "the first refusal is recorded within 10 s");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    let newest = |dir: &std::path::Path| {
        backplane::audit::checkpoint::read_dir(dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|f| f.checkpoint.ok())
            .map(|c| c.sequence)
            .max()
    };
    let before = backplane::store::audit::head(&app.store)
        .await
        .expect("head")
        .expect("rows")
        .0;
    assert!(
        newest(dir.path()).is_none_or(|s| s < before),
        "no checkpoint is due yet"
    );
    app.stop().await;
    let head = backplane::store::audit::head(&app.store)
        .await
        .expect("head")
        .expect("rows")
        .0;
    assert!(head > before, "the held refusal was written at shutdown");
    assert_eq!(
        newest(dir.path()),
        Some(head),
        "the last checkpoint is of the head"
    );
    let (ok, text) = verify_with_checkpoints(app.database_url(), dir.path(), &public);
    assert!(ok, "{text}");
}
on_both_databases!(shutdown_writes_the_last_checkpoint_after_the_last_events);
