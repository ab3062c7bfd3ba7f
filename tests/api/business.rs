//! Business operations: the single-record write path the admin panel, the
//! billing back office and the support tool share. Every rule's refusal with
//! its `extensions.field`, versions and conflicts, idempotent replays, the
//! wrong roles, and each record's history as each role sees it.

use std::collections::BTreeSet;

use backplane::catalog;
use backplane::policy::{self, GUARDED_FIELDS, Role};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::on_both_databases;

/// Calls `mutation` (a field of `Mutation` with one `input`) as `subject`
/// holding `roles`, selecting `selection` of its payload.
async fn call(
    app: &TestApp,
    subject: &str,
    roles: &[&str],
    mutation: &str,
    input_type: &str,
    selection: &str,
    input: Value,
) -> Value {
    let token = app.issuer.token(subject, roles);
    let query = format!(
        "mutation Op($input: {input_type}!) {{ {mutation}(input: $input) {{ {selection} }} }}"
    );
    let (status, body) = app
        .graphql_as(Some(&token), &query, json!({ "input": input }))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The one error of `body`: its code and `extensions.field`; panics on data.
fn refusal(body: &Value) -> (String, String) {
    assert!(
        body["data"].is_null()
            || body["data"]
                .as_object()
                .is_some_and(|d| d.values().all(Value::is_null)),
        "expected no data: {body}"
    );
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    let ext = &errors[0]["extensions"];
    (
        ext["code"].as_str().unwrap_or_default().to_owned(),
        ext["field"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The payload of a call that must have worked.
fn ok<'a>(body: &'a Value, mutation: &str) -> &'a Value {
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    &body["data"][mutation]
}

/// Ids and versions of the first `n` organizations in `status`.
async fn orgs(app: &TestApp, status: &str, n: usize) -> Vec<(String, i64)> {
    let data = app
        .query(
            "query($s: OrganizationStatus!, $n: Int) { organizations(first: $n, filter: {status: [$s]}) { nodes { id version } } }",
            json!({ "s": status, "n": n }),
        )
        .await;
    let nodes = data["organizations"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), n, "the seed has {n} {status} organizations");
    nodes
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap_or_default().to_owned(),
                o["version"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

async fn org(app: &TestApp, id: &str, selection: &str) -> Value {
    app.query(
        &format!("query($id: ID!) {{ organization(id: $id) {{ {selection} }} }}"),
        json!({ "id": id }),
    )
    .await["organization"]
        .clone()
}

/// An invoice in `status`: its id, version, issuedAt and amount.
async fn invoice_in(app: &TestApp, status: &str) -> Value {
    let data = app
        .query(
            "query($s: InvoiceStatus!) { invoices(first: 1, filter: {status: [$s]}) { nodes { id version issuedAt amountCents creditedCents status } } }",
            json!({ "s": status }),
        )
        .await;
    data["invoices"]["nodes"][0].clone()
}

async fn ticket_in(app: &TestApp, status: &str) -> Value {
    let data = app
        .query(
            "query($s: TicketStatus!) { tickets(first: 1, filter: {status: [$s]}) { nodes { id version status priority assignee { id } } } }",
            json!({ "s": status }),
        )
        .await;
    data["tickets"]["nodes"][0].clone()
}

const TRIAL_CHANGE: &str = "organization { id status version trialEndsAt trialExtensionDays } change { id operationName reason actorSubject fields { field before after } }";
const ORG_CHANGE: &str = "organization { id status version internalFlags { vip } trialEndsAt trialExtensionDays } change { id operationName reason actorSubject fields { field before after } }";

async fn organization_operations_follow_their_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let ops = ["ops"];
    let (id, version) = orgs(&app, "ACTIVE", 1).await.remove(0);
    let status = |input: Value| {
        call(
            &app,
            "ops-1",
            &ops,
            "setOrganizationStatus",
            "SetOrganizationStatusInput",
            ORG_CHANGE,
            input,
        )
    };

    // The happy path: the object, its raised version, the change.
    let body = status(json!({ "id": id, "status": "SUSPENDED", "reason": "fraud check", "expectedVersion": version })).await;
    let payload = ok(&body, "setOrganizationStatus");
    assert_eq!(payload["organization"]["status"], "SUSPENDED");
    assert_eq!(payload["organization"]["version"], version + 1);
    assert_eq!(payload["change"]["operationName"], "setOrganizationStatus");
    assert_eq!(payload["change"]["reason"], "fraud check");
    assert_eq!(payload["change"]["actorSubject"], "ops-1");
    assert_eq!(
        payload["change"]["fields"],
        json!([{ "field": "status", "before": "ACTIVE", "after": "SUSPENDED" }])
    );

    // Each rule's refusal names its input field, and changes nothing.
    for (input, code, field) in [
        (
            json!({ "id": id, "status": "ACTIVE", "reason": "  ", "expectedVersion": version + 1 }),
            "BAD_USER_INPUT",
            "reason",
        ),
        (
            json!({ "id": id, "status": "TRIAL", "reason": "x", "expectedVersion": version + 1 }),
            "BAD_USER_INPUT",
            "status",
        ),
        (
            json!({ "id": "org_99999999", "status": "ACTIVE", "reason": "x", "expectedVersion": 1 }),
            "NOT_FOUND",
            "id",
        ),
        (
            json!({ "id": "inv_1", "status": "ACTIVE", "reason": "x", "expectedVersion": 1 }),
            "BAD_USER_INPUT",
            "id",
        ),
    ] {
        let body = status(input.clone()).await;
        assert_eq!(
            refusal(&body),
            (code.to_owned(), field.to_owned()),
            "{input}: {body}"
        );
    }
    assert_eq!(
        org(&app, &id, "status version").await,
        json!({ "status": "SUSPENDED", "version": version + 1 })
    );
    // Each refusal is in the audit log, as a failed operation of its caller.
    let failed = app
        .query(
            r#"{ auditEvents(filter: {actor: "ops-1", outcome: ERROR}) { totalCount nodes { operationType operationName } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(failed["auditEvents"]["totalCount"], 4, "{failed}");
    assert_eq!(
        failed["auditEvents"]["nodes"][0]["operationType"],
        "MUTATION"
    );

    // A flag.
    let body = call(&app, "ops-1", &ops, "setOrganizationFlag", "SetOrganizationFlagInput", ORG_CHANGE,
        json!({ "id": id, "flag": "VIP", "value": true, "reason": "big deal", "expectedVersion": version + 1 })).await;
    let payload = ok(&body, "setOrganizationFlag");
    assert_eq!(payload["organization"]["internalFlags"]["vip"], true);
    assert_eq!(
        payload["change"]["fields"],
        json!([{ "field": "internalFlags.vip", "before": false, "after": true }])
    );
    let body = call(&app, "ops-1", &ops, "setOrganizationFlag", "SetOrganizationFlagInput", ORG_CHANGE,
        json!({ "id": id, "flag": "VIP", "value": false, "reason": "", "expectedVersion": version + 2 })).await;
    assert_eq!(refusal(&body), ("BAD_USER_INPUT".into(), "reason".into()));

    // A trial: 1–30 days at a time, 90 in all, TRIAL accounts only.
    let (trial, _) = orgs(&app, "TRIAL", 1).await.remove(0);
    let extend = |id: String, days: i64| {
        call(
            &app,
            "support-1",
            &["support"],
            "extendTrial",
            "ExtendTrialInput",
            TRIAL_CHANGE,
            json!({ "id": id, "days": days, "reason": "evaluating" }),
        )
    };
    let before = org(&app, &trial, "trialEndsAt").await["trialEndsAt"].clone();
    assert!(before.is_string(), "a seeded trial has an end: {before}");
    for (days, field) in [(0, "days"), (31, "days"), (-3, "days")] {
        let body = extend(trial.clone(), days).await;
        assert_eq!(
            refusal(&body),
            ("BAD_USER_INPUT".into(), field.into()),
            "{days}: {body}"
        );
    }
    let body = extend(trial.clone(), 30).await;
    let payload = ok(&body, "extendTrial");
    assert_eq!(payload["organization"]["trialExtensionDays"], 30);
    let fields = payload["change"]["fields"].as_array().expect("fields");
    assert_eq!(fields[0]["field"], "trialEndsAt");
    assert_eq!(fields[0]["before"], before);
    assert_eq!(fields[0]["after"], payload["organization"]["trialEndsAt"]);
    let end = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).expect("an instant")
    };
    assert_eq!((end(&fields[0]["after"]) - end(&before)).num_days(), 30);
    ok(&extend(trial.clone(), 30).await, "extendTrial");
    ok(&extend(trial.clone(), 30).await, "extendTrial");
    let body = extend(trial.clone(), 1).await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "days".into()),
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("90"),
        "{body}"
    );
    let body = extend(id.clone(), 5).await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "id".into()),
        "{body}"
    );
    assert_eq!(
        org(&app, &trial, "trialExtensionDays").await["trialExtensionDays"],
        90
    );
}
on_both_databases!(organization_operations_follow_their_rules);

const INVOICE_CHANGE: &str = "invoice { id status version paidAt paymentReference creditedCents } change { operationName fields { field before after } }";

async fn billing_operations_follow_their_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let billing = ["billing"];

    // Plan and seats.
    let (id, _) = orgs(&app, "ACTIVE", 1).await.remove(0);
    let sub = org(
        &app,
        &id,
        "users(first: 100) { nodes { status } } subscription { id seats version plan { code } }",
    )
    .await;
    let active = sub["users"]["nodes"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["status"] == "ACTIVE")
        .count() as i64;
    let v = sub["subscription"]["version"].as_i64().expect("version");
    let seats = sub["subscription"]["seats"].as_i64().expect("seats");
    let change = |input: Value| {
        call(
            &app,
            "billing-1",
            &billing,
            "changeSubscription",
            "ChangeSubscriptionInput",
            "subscription { seats version plan { code } } organization { id } change { fields { field before after } }",
            input,
        )
    };
    for (input, field) in [
        (
            json!({ "organizationId": id, "seats": 0, "reason": "x", "expectedVersion": v }),
            "seats",
        ),
        (
            json!({ "organizationId": id, "seats": active - 1, "reason": "x", "expectedVersion": v }),
            "seats",
        ),
        (
            json!({ "organizationId": id, "planCode": "platinum", "reason": "x", "expectedVersion": v }),
            "planCode",
        ),
        (
            json!({ "organizationId": id, "seats": seats + 1, "reason": "", "expectedVersion": v }),
            "reason",
        ),
    ] {
        let body = change(input.clone()).await;
        assert_eq!(
            refusal(&body),
            ("BAD_USER_INPUT".into(), field.into()),
            "{input}: {body}"
        );
    }
    let body = change(json!({ "organizationId": id, "planCode": "enterprise", "seats": seats + 5, "reason": "upsell", "expectedVersion": v })).await;
    let payload = ok(&body, "changeSubscription");
    assert_eq!(payload["subscription"]["seats"], seats + 5);
    assert_eq!(payload["subscription"]["version"], v + 1);
    assert_eq!(payload["subscription"]["plan"]["code"], "enterprise");
    assert_eq!(payload["organization"]["id"], id);
    let fields: Vec<&str> = payload["change"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert!(fields.contains(&"subscription.seats"), "{body}");
    let (churned, _) = orgs(&app, "CHURNED", 1).await.remove(0);
    let cv = org(&app, &churned, "subscription { version }").await["subscription"]["version"]
        .as_i64()
        .expect("version");
    let body = change(
        json!({ "organizationId": churned, "seats": 50, "reason": "x", "expectedVersion": cv }),
    )
    .await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "organizationId".into()),
        "{body}"
    );

    // Paying an invoice.
    let open = invoice_in(&app, "OPEN").await;
    let oid = open["id"].as_str().expect("id").to_owned();
    let ov = open["version"].as_i64().expect("version");
    let issued = chrono::DateTime::parse_from_rfc3339(open["issuedAt"].as_str().expect("issuedAt"))
        .expect("instant");
    let pay = |input: Value| {
        call(
            &app,
            "billing-1",
            &billing,
            "markInvoicePaid",
            "MarkInvoicePaidInput",
            INVOICE_CHANGE,
            input,
        )
    };
    let future = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let too_early = (issued - chrono::Duration::days(1)).to_rfc3339();
    for (input, field) in [
        (
            json!({ "id": oid, "paidAt": future, "paymentReference": "ch_1", "expectedVersion": ov }),
            "paidAt",
        ),
        (
            json!({ "id": oid, "paidAt": too_early, "paymentReference": "ch_1", "expectedVersion": ov }),
            "paidAt",
        ),
        (
            json!({ "id": oid, "paidAt": issued.to_rfc3339(), "paymentReference": " ", "expectedVersion": ov }),
            "paymentReference",
        ),
    ] {
        let body = pay(input.clone()).await;
        assert_eq!(
            refusal(&body),
            ("BAD_USER_INPUT".into(), field.into()),
            "{input}: {body}"
        );
    }
    let paid_at = (issued + chrono::Duration::hours(1)).to_rfc3339();
    let body = pay(
        json!({ "id": oid, "paidAt": paid_at, "paymentReference": "ch_42", "expectedVersion": ov }),
    )
    .await;
    let payload = ok(&body, "markInvoicePaid");
    assert_eq!(payload["invoice"]["status"], "PAID");
    assert_eq!(payload["invoice"]["paymentReference"], "ch_42");
    assert_eq!(payload["invoice"]["version"], ov + 1);
    let body = pay(json!({ "id": oid, "paidAt": paid_at, "paymentReference": "ch_43", "expectedVersion": ov + 1 })).await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "id".into()),
        "paid twice: {body}"
    );

    // Voiding: DRAFT or OPEN only.
    let void = |input: Value| {
        call(
            &app,
            "billing-1",
            &billing,
            "voidInvoice",
            "VoidInvoiceInput",
            INVOICE_CHANGE,
            input,
        )
    };
    let body = void(json!({ "id": oid, "reason": "mistake", "expectedVersion": ov + 1 })).await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "id".into()),
        "a paid invoice: {body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("credit note"),
        "{body}"
    );
    let other = invoice_in(&app, "OPEN").await;
    let body =
        void(json!({ "id": other["id"], "reason": "", "expectedVersion": other["version"] })).await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "reason".into()),
        "{body}"
    );
    let body = void(
        json!({ "id": other["id"], "reason": "duplicate", "expectedVersion": other["version"] }),
    )
    .await;
    assert_eq!(ok(&body, "voidInvoice")["invoice"]["status"], "VOID");

    // Credit notes: PAID only, together at most the amount.
    let amount = open["amountCents"].as_i64().expect("amount");
    let credit = |input: Value| {
        call(
            &app,
            "billing-1",
            &billing,
            "issueCreditNote",
            "IssueCreditNoteInput",
            "creditNote { id amountCents reason issuedBy invoice { id } } invoice { creditedCents version creditNotes { totalCount } } change { fields { field before after } }",
            input,
        )
    };
    for (input, field) in [
        (
            json!({ "invoiceId": oid, "amountCents": 0, "reason": "x" }),
            "amountCents",
        ),
        (
            json!({ "invoiceId": oid, "amountCents": amount + 1, "reason": "x" }),
            "amountCents",
        ),
        (
            json!({ "invoiceId": other["id"], "amountCents": 1, "reason": "x" }),
            "invoiceId",
        ),
        (
            json!({ "invoiceId": oid, "amountCents": 1, "reason": "" }),
            "reason",
        ),
    ] {
        let body = credit(input.clone()).await;
        assert_eq!(
            refusal(&body),
            ("BAD_USER_INPUT".into(), field.into()),
            "{input}: {body}"
        );
    }
    let body =
        credit(json!({ "invoiceId": oid, "amountCents": amount - 1, "reason": "goodwill" })).await;
    let payload = ok(&body, "issueCreditNote");
    assert_eq!(payload["creditNote"]["amountCents"], amount - 1);
    assert_eq!(payload["creditNote"]["issuedBy"], "billing-1");
    assert_eq!(payload["creditNote"]["invoice"]["id"], oid);
    assert_eq!(payload["invoice"]["creditedCents"], amount - 1);
    assert_eq!(payload["invoice"]["creditNotes"]["totalCount"], 1);
    let body = credit(json!({ "invoiceId": oid, "amountCents": 2, "reason": "more" })).await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "amountCents".into()),
        "{body}"
    );
    ok(
        &credit(json!({ "invoiceId": oid, "amountCents": 1, "reason": "the rest" })).await,
        "issueCreditNote",
    );
    let body =
        credit(json!({ "invoiceId": "inv_99999999", "amountCents": 1, "reason": "x" })).await;
    assert_eq!(
        refusal(&body),
        ("NOT_FOUND".into(), "invoiceId".into()),
        "{body}"
    );
}
on_both_databases!(billing_operations_follow_their_rules);

const TICKET_CHANGE: &str = "ticket { id status priority version assignee { id } } change { operationName reason fields { field before after } }";
const MESSAGE_CHANGE: &str = "message { id body internal authorStaff { subject } } ticket { id version } change { fields { field before after } }";

async fn ticket_operations_follow_their_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let support = ["support"];
    let open = ticket_in(&app, "OPEN").await;
    let tid = open["id"].as_str().expect("id").to_owned();
    let tv = open["version"].as_i64().expect("version");

    // A reply the customer sees, from the staff member signed in.
    let body = call(
        &app,
        "demo-support",
        &support,
        "replyToTicket",
        "ReplyToTicketInput",
        MESSAGE_CHANGE,
        json!({ "ticketId": tid, "body": "We are on it." }),
    )
    .await;
    let payload = ok(&body, "replyToTicket");
    assert_eq!(payload["message"]["internal"], false);
    assert_eq!(payload["message"]["body"], "We are on it.");
    assert_eq!(payload["message"]["authorStaff"]["subject"], "demo-support");
    assert_eq!(
        payload["ticket"]["version"], tv,
        "a message leaves the ticket's own fields"
    );
    assert_eq!(payload["change"]["fields"][0]["field"], "messages");
    assert_eq!(
        payload["change"]["fields"][0]["after"]["id"],
        payload["message"]["id"]
    );
    let body = call(
        &app,
        "demo-support",
        &support,
        "replyToTicket",
        "ReplyToTicketInput",
        MESSAGE_CHANGE,
        json!({ "ticketId": tid, "body": "   " }),
    )
    .await;
    assert_eq!(refusal(&body), ("BAD_USER_INPUT".into(), "body".into()));
    let closed = ticket_in(&app, "CLOSED").await;
    let cid = closed["id"].as_str().expect("id").to_owned();
    let body = call(
        &app,
        "demo-support",
        &support,
        "replyToTicket",
        "ReplyToTicketInput",
        MESSAGE_CHANGE,
        json!({ "ticketId": cid, "body": "hello?" }),
    )
    .await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "ticketId".into()),
        "{body}"
    );

    // An internal note.
    let body = call(
        &app,
        "demo-support",
        &support,
        "addInternalNote",
        "AddInternalNoteInput",
        MESSAGE_CHANGE,
        json!({ "ticketId": cid, "body": "Customer threatened to churn." }),
    )
    .await;
    let payload = ok(&body, "addInternalNote");
    assert_eq!(payload["message"]["internal"], true);
    assert_eq!(payload["change"]["fields"][0]["field"], "internalNotes");
    let messages = app
        .query("query($id: ID!) { ticket(id: $id) { messages(first: 100) { nodes { body internal } } } }", json!({ "id": cid }))
        .await;
    assert!(
        messages["ticket"]["messages"]["nodes"]
            .as_array()
            .expect("nodes")
            .contains(&json!({ "body": "Customer threatened to churn.", "internal": true }))
    );

    // Status, priority, assignee.
    let update = |input: Value| {
        call(
            &app,
            "demo-support",
            &support,
            "updateTicket",
            "UpdateTicketInput",
            TICKET_CHANGE,
            input,
        )
    };
    let body = update(json!({ "id": tid, "assigneeId": "stf_4", "expectedVersion": tv })).await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "assigneeId".into()),
        "billing cannot be assigned: {body}"
    );
    let body = update(json!({ "id": tid, "assigneeId": "stf_9999", "expectedVersion": tv })).await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "assigneeId".into()),
        "{body}"
    );
    let body = update(
        json!({ "id": tid, "assigneeId": "stf_3", "priority": "URGENT", "expectedVersion": tv }),
    )
    .await;
    let payload = ok(&body, "updateTicket");
    assert_eq!(payload["ticket"]["assignee"]["id"], "stf_3");
    assert_eq!(payload["ticket"]["priority"], "URGENT");
    assert_eq!(payload["ticket"]["version"], tv + 1);
    let changed: BTreeSet<&str> = payload["change"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert!(
        changed.contains("assignee") && changed.contains("priority"),
        "{body}"
    );
    let body = update(json!({ "id": tid, "assigneeId": null, "expectedVersion": tv + 1 })).await;
    assert_eq!(
        ok(&body, "updateTicket")["ticket"]["assignee"],
        Value::Null,
        "null unassigns"
    );
    let body = update(json!({ "id": tid, "priority": "LOW", "expectedVersion": tv + 2 })).await;
    assert_eq!(
        ok(&body, "updateTicket")["ticket"]["assignee"],
        Value::Null,
        "omitted keeps"
    );

    // Reopening a CLOSED ticket needs a reason.
    let cv = closed["version"].as_i64().expect("version");
    let body = update(json!({ "id": cid, "status": "OPEN", "expectedVersion": cv })).await;
    assert_eq!(
        refusal(&body),
        ("BAD_USER_INPUT".into(), "reason".into()),
        "{body}"
    );
    let body = update(json!({ "id": cid, "status": "OPEN", "reason": "customer wrote back", "expectedVersion": cv })).await;
    let payload = ok(&body, "updateTicket");
    assert_eq!(payload["ticket"]["status"], "OPEN");
    assert_eq!(payload["change"]["reason"], "customer wrote back");
}
on_both_databases!(ticket_operations_follow_their_rules);

/// A valid input of each single-record mutation, naming records that do not
/// exist: a caller with the right gets `NOT_FOUND`, so that a refusal as an
/// unknown field can only be the right missing.
fn sample_input(mutation: &str) -> Value {
    match mutation {
        "setOrganizationStatus" => {
            json!({ "id": "org_99999999", "status": "ACTIVE", "reason": "x", "expectedVersion": 1 })
        }
        "setOrganizationFlag" => {
            json!({ "id": "org_99999999", "flag": "VIP", "value": true, "reason": "x", "expectedVersion": 1 })
        }
        "extendTrial" => json!({ "id": "org_99999999", "days": 3, "reason": "x" }),
        "changeSubscription" => {
            json!({ "organizationId": "org_99999999", "seats": 3, "reason": "x", "expectedVersion": 1 })
        }
        "markInvoicePaid" => {
            json!({ "id": "inv_99999999", "paidAt": "2026-01-01T00:00:00Z", "paymentReference": "r", "expectedVersion": 1 })
        }
        "voidInvoice" => json!({ "id": "inv_99999999", "reason": "x", "expectedVersion": 1 }),
        "issueCreditNote" => {
            json!({ "invoiceId": "inv_99999999", "amountCents": 1, "reason": "x" })
        }
        "replyToTicket" | "addInternalNote" => json!({ "ticketId": "tkt_99999999", "body": "x" }),
        "updateTicket" => json!({ "id": "tkt_99999999", "priority": "LOW", "expectedVersion": 1 }),
        other => panic!("no sample input for {other}: add one"),
    }
}

/// The single-record mutations, from the policy's own table.
fn single_record_mutations() -> Vec<(&'static str, policy::Permission)> {
    GUARDED_FIELDS
        .iter()
        .filter(|(ty, field, _)| *ty == "Mutation" && !field.starts_with("bulk"))
        .map(|(_, field, p)| (*field, *p))
        .collect()
}

async fn each_operation_refuses_the_roles_without_its_right_and_audits_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let mutations = single_record_mutations();
    assert_eq!(mutations.len(), 10, "{mutations:?}");
    let denied_before = app
        .query(
            r#"{ auditEvents(filter: {outcome: DENIED}) { totalCount } }"#,
            json!({}),
        )
        .await["auditEvents"]["totalCount"]
        .as_i64()
        .unwrap_or_default();
    let mut refused = 0;
    for (mutation, permission) in &mutations {
        let input_type = format!("{}{}Input", mutation[..1].to_uppercase(), &mutation[1..]);
        let query = format!(
            "mutation M($input: {input_type}!) {{ {mutation}(input: $input) {{ __typename }} }}"
        );
        let input = sample_input(mutation);
        // With the right, the input is valid and names nothing.
        let (_, body) = app
            .graphql_as(
                Some(&app.issuer.token("admin-1", &["admin"])),
                &query,
                json!({ "input": input }),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{mutation}: {body}"
        );
        for role in Role::ALL {
            if policy::grants(role).contains(permission) {
                continue;
            }
            let token = app.issuer.token("intruder-1", &[role.as_str()]);
            let (status, body) = app
                .graphql_as(Some(&token), &query, json!({ "input": input }))
                .await;
            assert_eq!(status, 200, "{body}");
            assert!(body["data"].is_null(), "{role} {mutation}: {body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
                "{role} {mutation}: {body}"
            );
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(!message.contains("Did you mean"), "{message}");
            refused += 1;
        }
    }
    let denied_after = app
        .query(
            r#"{ auditEvents(filter: {outcome: DENIED}) { totalCount } }"#,
            json!({}),
        )
        .await["auditEvents"]["totalCount"]
        .as_i64()
        .unwrap_or_default();
    assert_eq!(
        denied_after - denied_before,
        refused,
        "each refusal is audited"
    );

    // Roles whose union lacks the right change nothing either.
    let (id, version) = orgs(&app, "ACTIVE", 1).await.remove(0);
    let input =
        json!({ "id": id, "status": "SUSPENDED", "reason": "x", "expectedVersion": version });
    let body = call(
        &app,
        "ops-1",
        &["support", "billing"],
        "setOrganizationStatus",
        "SetOrganizationStatusInput",
        "change { id }",
        input,
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{body}"
    );
    assert_eq!(
        org(&app, &id, "status version").await,
        json!({ "status": "ACTIVE", "version": version })
    );
}
on_both_databases!(each_operation_refuses_the_roles_without_its_right_and_audits_it);

async fn a_stale_expected_version_changes_nothing_and_names_the_current_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, v) = orgs(&app, "ACTIVE", 1).await.remove(0);
    // A bulk change raises the version too.
    let token = app.issuer.token("ops-1", &["ops"]);
    let (_, body) = app
        .graphql_as(
            Some(&token),
            "mutation($input: BulkOrganizationStatusInput!) { bulkUpdateOrganizationStatus(input: $input) { changed } }",
            json!({ "input": { "ids": [id], "status": "SUSPENDED", "reason": "sweep" } }),
        )
        .await;
    assert_eq!(
        body["data"]["bulkUpdateOrganizationStatus"]["changed"], 1,
        "{body}"
    );
    assert_eq!(org(&app, &id, "version").await["version"], v + 1);

    let open = invoice_in(&app, "OPEN").await;
    let ticket = ticket_in(&app, "OPEN").await;
    let sub = org(&app, &id, "subscription { version }").await["subscription"]["version"]
        .as_i64()
        .expect("version");
    let cases = [
        (
            "ops",
            "setOrganizationStatus",
            "SetOrganizationStatusInput",
            json!({ "id": id, "status": "ACTIVE", "reason": "x", "expectedVersion": v }),
            v + 1,
        ),
        (
            "ops",
            "setOrganizationFlag",
            "SetOrganizationFlagInput",
            json!({ "id": id, "flag": "VIP", "value": true, "reason": "x", "expectedVersion": v }),
            v + 1,
        ),
        (
            "billing",
            "changeSubscription",
            "ChangeSubscriptionInput",
            json!({ "organizationId": id, "seats": 100, "reason": "x", "expectedVersion": sub + 7 }),
            sub,
        ),
        (
            "billing",
            "markInvoicePaid",
            "MarkInvoicePaidInput",
            json!({ "id": open["id"], "paidAt": open["issuedAt"], "paymentReference": "r", "expectedVersion": 0 }),
            open["version"].as_i64().expect("v"),
        ),
        (
            "billing",
            "voidInvoice",
            "VoidInvoiceInput",
            json!({ "id": open["id"], "reason": "x", "expectedVersion": 0 }),
            open["version"].as_i64().expect("v"),
        ),
        (
            "support",
            "updateTicket",
            "UpdateTicketInput",
            json!({ "id": ticket["id"], "priority": "HIGH", "expectedVersion": 0 }),
            ticket["version"].as_i64().expect("v"),
        ),
    ];
    for (role, mutation, input_type, input, current) in cases {
        let body = call(
            &app,
            "someone",
            &[role],
            mutation,
            input_type,
            "change { id }",
            input,
        )
        .await;
        assert_eq!(
            refusal(&body),
            ("CONFLICT".into(), "expectedVersion".into()),
            "{mutation}: {body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["currentVersion"], current,
            "{mutation}: {body}"
        );
    }
    assert_eq!(
        org(&app, &id, "status version internalFlags { vip }").await["version"],
        v + 1
    );
    assert_eq!(
        invoice_in(&app, "OPEN").await["id"],
        open["id"],
        "still OPEN"
    );
}
on_both_databases!(a_stale_expected_version_changes_nothing_and_names_the_current_one);

async fn of_two_changes_from_one_version_exactly_one_wins(backend: Backend) {
    let app = spawn_app(backend).await;
    let ticket = ticket_in(&app, "OPEN").await;
    let v = ticket["version"].as_i64().expect("version");
    // Each asks for another priority than the ticket's: each is a change.
    let current = ticket["priority"].as_str().unwrap_or_default().to_owned();
    let priorities: Vec<&str> = ["LOW", "NORMAL", "HIGH", "URGENT"]
        .into_iter()
        .filter(|p| *p != current)
        .collect();
    let calls = priorities.iter().map(|p| {
        call(
            &app,
            "support-1",
            &["support"],
            "updateTicket",
            "UpdateTicketInput",
            "ticket { priority version }",
            json!({ "id": ticket["id"], "priority": p, "expectedVersion": v }),
        )
    });
    let answers = futures::future::join_all(calls).await;
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|b| b.get("errors").is_none())
        .collect();
    let lost: Vec<&Value> = answers
        .iter()
        .filter(|b| b.get("errors").is_some())
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert_eq!(
        winners[0]["data"]["updateTicket"]["ticket"]["version"],
        v + 1
    );
    for body in &lost {
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "CONFLICT",
            "{body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["currentVersion"],
            v + 1,
            "{body}"
        );
    }
    assert_eq!(lost.len(), priorities.len() - 1);
    let now = app
        .query(
            "query($id: ID!) { ticket(id: $id) { priority version history { totalCount } } }",
            json!({ "id": ticket["id"] }),
        )
        .await;
    assert_eq!(now["ticket"]["version"], v + 1);
    assert_eq!(
        now["ticket"]["priority"],
        winners[0]["data"]["updateTicket"]["ticket"]["priority"]
    );
    assert_eq!(
        now["ticket"]["history"]["totalCount"], 1,
        "one change, in the history once"
    );
}
on_both_databases!(of_two_changes_from_one_version_exactly_one_wins);

/// Runs `inputs` of `mutation` at once, as `role`; the answers in order.
async fn at_once(
    app: &TestApp,
    role: &str,
    mutation: &str,
    input_type: &str,
    inputs: Vec<Value>,
) -> Vec<Value> {
    let roles = [role];
    futures::future::join_all(inputs.into_iter().map(|input| {
        call(
            app,
            "racer-1",
            &roles,
            mutation,
            input_type,
            "change { id }",
            input,
        )
    }))
    .await
}

/// The answers that worked, and the codes of the others.
fn outcomes(answers: &[Value]) -> (usize, Vec<String>) {
    let won = answers.iter().filter(|b| b.get("errors").is_none()).count();
    let lost = answers
        .iter()
        .filter_map(|b| {
            b["errors"][0]["extensions"]["code"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    (won, lost)
}

async fn every_versioned_operation_lets_one_of_two_racing_changes_win(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, v) = orgs(&app, "ACTIVE", 1).await.remove(0);
    let sub = org(&app, &id, "subscription { version seats }").await["subscription"].clone();
    let (sv, seats) = (sub["version"].clone(), sub["seats"].as_i64().unwrap_or(1));
    let open = invoice_in(&app, "OPEN").await;
    let races = [
        (
            "ops",
            "setOrganizationStatus",
            "SetOrganizationStatusInput",
            vec![
                json!({ "id": id, "status": "SUSPENDED", "reason": "a", "expectedVersion": v }),
                json!({ "id": id, "status": "CHURNED", "reason": "b", "expectedVersion": v }),
            ],
        ),
        (
            "ops",
            "setOrganizationFlag",
            "SetOrganizationFlagInput",
            vec![
                json!({ "id": id, "flag": "VIP", "value": true, "reason": "a", "expectedVersion": v + 1 }),
                json!({ "id": id, "flag": "CHURN_RISK", "value": true, "reason": "b", "expectedVersion": v + 1 }),
            ],
        ),
        (
            "billing",
            "changeSubscription",
            "ChangeSubscriptionInput",
            vec![
                json!({ "organizationId": id, "seats": seats + 1, "reason": "a", "expectedVersion": sv }),
                json!({ "organizationId": id, "seats": seats + 2, "reason": "b", "expectedVersion": sv }),
            ],
        ),
        (
            "billing",
            "markInvoicePaid",
            "MarkInvoicePaidInput",
            vec![
                json!({ "id": open["id"], "paidAt": open["issuedAt"], "paymentReference": "a", "expectedVersion": open["version"] }),
                json!({ "id": open["id"], "paidAt": open["issuedAt"], "paymentReference": "b", "expectedVersion": open["version"] }),
            ],
        ),
    ];
    for (role, mutation, input_type, inputs) in races {
        let answers = at_once(&app, role, mutation, input_type, inputs).await;
        assert_eq!(
            outcomes(&answers),
            (1, vec!["CONFLICT".to_owned()]),
            "{mutation}: {answers:?}"
        );
    }
    let other = invoice_in(&app, "OPEN").await;
    let answers = at_once(
        &app,
        "billing",
        "voidInvoice",
        "VoidInvoiceInput",
        vec![
            json!({ "id": other["id"], "reason": "a", "expectedVersion": other["version"] }),
            json!({ "id": other["id"], "reason": "b", "expectedVersion": other["version"] }),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&answers),
        (1, vec!["CONFLICT".to_owned()]),
        "voidInvoice: {answers:?}"
    );

    // Without versions, the rules still hold under a race: two credit notes
    // of 60 % each on one invoice, and four trial extensions of 30 days.
    let amount = open["amountCents"].as_i64().expect("amount");
    let answers = at_once(
        &app,
        "billing",
        "issueCreditNote",
        "IssueCreditNoteInput",
        vec![
            json!({ "invoiceId": open["id"], "amountCents": amount * 6 / 10, "reason": "a" }),
            json!({ "invoiceId": open["id"], "amountCents": amount * 6 / 10, "reason": "b" }),
        ],
    )
    .await;
    assert_eq!(
        outcomes(&answers),
        (1, vec!["BAD_USER_INPUT".to_owned()]),
        "issueCreditNote: {answers:?}"
    );
    let (trial, _) = orgs(&app, "TRIAL", 1).await.remove(0);
    let answers = at_once(
        &app,
        "support",
        "extendTrial",
        "ExtendTrialInput",
        (0..4)
            .map(|i| json!({ "id": trial, "days": 30, "reason": format!("race {i}") }))
            .collect(),
    )
    .await;
    assert_eq!(
        outcomes(&answers),
        (3, vec!["BAD_USER_INPUT".to_owned()]),
        "extendTrial: {answers:?}"
    );
    assert_eq!(
        org(&app, &trial, "trialExtensionDays").await["trialExtensionDays"],
        90
    );
}
on_both_databases!(every_versioned_operation_lets_one_of_two_racing_changes_win);

async fn an_idempotent_replay_answers_the_first_result_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, v) = orgs(&app, "ACTIVE", 1).await.remove(0);
    let flag = |value: bool| {
        call(
            &app,
            "ops-1",
            &["ops"],
            "setOrganizationFlag",
            "SetOrganizationFlagInput",
            ORG_CHANGE,
            json!({ "id": id, "flag": "CHURN_RISK", "value": value, "reason": "model says so", "expectedVersion": v, "idempotencyKey": "job-7" }),
        )
    };
    let changes = || async {
        let text = app.metrics().await;
        text.lines()
            .find(|l| l.starts_with("backplane_changes_total{mutation=\"setOrganizationFlag\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let counted = changes().await;
    let first = flag(true).await;
    // Other tests change flags at the same time (metrics are the process's):
    // at least this change is counted.
    assert!(changes().await > counted, "a change is counted");
    let again = flag(true).await;
    assert_eq!(
        ok(&first, "setOrganizationFlag")["change"],
        ok(&again, "setOrganizationFlag")["change"]
    );
    assert_eq!(
        ok(&again, "setOrganizationFlag")["organization"]["version"],
        v + 1
    );
    let body = flag(false).await;
    assert_eq!(
        refusal(&body).0,
        "CONFLICT",
        "the same key with another input: {body}"
    );
    assert_eq!(
        org(&app, &id, "version history { totalCount }").await,
        json!({ "version": v + 1, "history": { "totalCount": 1 } })
    );

    let ticket = ticket_in(&app, "OPEN").await;
    let reply = || {
        call(
            &app,
            "support-1",
            &["support"],
            "replyToTicket",
            "ReplyToTicketInput",
            MESSAGE_CHANGE,
            json!({ "ticketId": ticket["id"], "body": "Done.", "idempotencyKey": "reply-1" }),
        )
    };
    let first = reply().await;
    let again = reply().await;
    assert_eq!(
        ok(&first, "replyToTicket")["message"]["id"],
        ok(&again, "replyToTicket")["message"]["id"]
    );
    let messages = app
        .query(
            "query($id: ID!) { ticket(id: $id) { messages(first: 100) { nodes { body } } } }",
            json!({ "id": ticket["id"] }),
        )
        .await;
    let done = messages["ticket"]["messages"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|m| m["body"] == "Done.")
        .count();
    assert_eq!(done, 1, "one message for two calls with one key");
}
on_both_databases!(an_idempotent_replay_answers_the_first_result_and_changes_nothing);

/// Whether `role` may read the field at `path` of `entity`, by the catalog.
fn may_read(role: Role, entity: &str, path: &str) -> bool {
    let held = policy::permissions_of(&BTreeSet::from([role]));
    catalog::path_needs(entity, path)
        .is_some_and(|needs| needs.iter().all(|n| n.met_by(|p| held.contains(&p))))
}

async fn the_history_lists_what_each_role_may_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let (id, v) = orgs(&app, "ACTIVE", 1).await.remove(0);
    let sub = org(&app, &id, "subscription { version seats }").await["subscription"].clone();
    // Four changes: a status, a flag, the seats, a bulk status.
    ok(
        &call(
            &app,
            "ops-1",
            &["ops"],
            "setOrganizationStatus",
            "SetOrganizationStatusInput",
            "change { id }",
            json!({ "id": id, "status": "SUSPENDED", "reason": "unpaid", "expectedVersion": v }),
        )
        .await,
        "setOrganizationStatus",
    );
    ok(&call(&app, "ops-1", &["ops"], "setOrganizationFlag", "SetOrganizationFlagInput", "change { id }",
        json!({ "id": id, "flag": "FRAUD_REVIEW", "value": true, "reason": "chargebacks", "expectedVersion": v + 1 })).await, "setOrganizationFlag");
    ok(&call(&app, "billing-1", &["billing"], "changeSubscription", "ChangeSubscriptionInput", "change { id }",
        json!({ "organizationId": id, "seats": sub["seats"].as_i64().unwrap_or(1) + 3, "reason": "more people", "expectedVersion": sub["version"] })).await, "changeSubscription");
    let token = app.issuer.token("ops-2", &["ops"]);
    let (_, body) = app
        .graphql_as(Some(&token), "mutation($input: BulkOrganizationStatusInput!) { bulkUpdateOrganizationStatus(input: $input) { changed } }",
            json!({ "input": { "ids": [id], "status": "ACTIVE", "reason": "paid up" } }))
        .await;
    assert_eq!(
        body["data"]["bulkUpdateOrganizationStatus"]["changed"], 1,
        "{body}"
    );

    // As admin: every change, newest first, with who, why and what.
    let all = app
        .query("query($id: ID!) { organization(id: $id) { history { totalCount nodes { operationName actorSubject reason fields { field before after } } } } }", json!({ "id": id }))
        .await["organization"]["history"]
        .clone();
    assert_eq!(all["totalCount"], 4, "{all}");
    let ops: Vec<&str> = all["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["operationName"].as_str())
        .collect();
    assert_eq!(
        ops,
        [
            "bulkUpdateOrganizationStatus",
            "changeSubscription",
            "setOrganizationFlag",
            "setOrganizationStatus"
        ]
    );
    assert_eq!(all["nodes"][0]["actorSubject"], "ops-2");
    assert_eq!(all["nodes"][0]["reason"], "paid up");
    assert_eq!(
        all["nodes"][0]["fields"],
        json!([{ "field": "status", "before": "SUSPENDED", "after": "ACTIVE" }])
    );
    assert_eq!(
        all["nodes"][2]["fields"],
        json!([{ "field": "internalFlags.fraudReview", "before": false, "after": true }])
    );

    // As each role: exactly the fields it may read (from the catalog), and
    // no change of which it may read none.
    let changes: Vec<(String, Vec<String>)> = all["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["operationName"].as_str().unwrap_or_default().to_owned(),
                n["fields"]
                    .as_array()
                    .expect("fields")
                    .iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_owned))
                    .collect(),
            )
        })
        .collect();
    for role in Role::ALL {
        let token = app.issuer.token("viewer-1", &[role.as_str()]);
        let (_, body) = app
            .graphql_as(Some(&token), "query($id: ID!) { organization(id: $id) { history { totalCount nodes { operationName fields { field } } } } }", json!({ "id": id }))
            .await;
        if !policy::grants(role).contains(&policy::Permission::ReadCustomers) {
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
                "{role}: {body}"
            );
            continue;
        }
        let expected: Vec<(String, Vec<String>)> = changes
            .iter()
            .map(|(op, fields)| {
                (
                    op.clone(),
                    fields
                        .iter()
                        .filter(|f| may_read(role, "Organization", f))
                        .cloned()
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, fields)| !fields.is_empty())
            .collect();
        let seen: Vec<(String, Vec<String>)> = body["data"]["organization"]["history"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                (
                    n["operationName"].as_str().unwrap_or_default().to_owned(),
                    n["fields"]
                        .as_array()
                        .expect("fields")
                        .iter()
                        .filter_map(|f| f["field"].as_str().map(str::to_owned))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(seen, expected, "{role}: {body}");
        assert_eq!(
            body["data"]["organization"]["history"]["totalCount"],
            expected.len(),
            "{role}"
        );
        if role == Role::Support {
            assert!(
                !body.to_string().contains("internalFlags"),
                "support never sees a flag change: {body}"
            );
            assert!(
                !body.to_string().contains("chargebacks"),
                "nor its reason: {body}"
            );
        }
    }

    // Pages: newest first, one at a time, to the end.
    let mut after: Option<String> = None;
    let mut paged = Vec::new();
    loop {
        let page = app
            .query("query($id: ID!, $after: String) { organization(id: $id) { history(first: 1, after: $after) { nodes { operationName } pageInfo { hasNextPage endCursor } } } }", json!({ "id": id, "after": after }))
            .await["organization"]["history"]
            .clone();
        paged.extend(
            page["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .filter_map(|n| n["operationName"].as_str().map(str::to_owned)),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        assert!(paged.len() <= 4, "{paged:?}");
    }
    assert_eq!(paged, ops);

    // The audit event of a change holds each field's before and after.
    let events = app
        .query(
            r#"{ auditEvents(first: 10, filter: {operationName: "Op"}) { nodes { details } } }"#,
            json!({}),
        )
        .await;
    let with_seats = events["auditEvents"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|e| &e["details"])
        .find(|d| d.to_string().contains("subscription.seats"))
        .expect("the subscription change's event");
    let details = with_seats.clone();
    assert_eq!(details["changes"][0]["fields"][0]["before"], sub["seats"]);

    // Invoices and tickets keep theirs too.
    let inv = invoice_in(&app, "OPEN").await;
    ok(
        &call(
            &app,
            "billing-1",
            &["billing"],
            "voidInvoice",
            "VoidInvoiceInput",
            "change { id }",
            json!({ "id": inv["id"], "reason": "sent twice", "expectedVersion": inv["version"] }),
        )
        .await,
        "voidInvoice",
    );
    let h = app.query("query($id: ID!) { invoice(id: $id) { history { nodes { operationName fields { field before after } } } } }", json!({ "id": inv["id"] })).await;
    assert_eq!(
        h["invoice"]["history"]["nodes"][0]["fields"],
        json!([{ "field": "status", "before": "OPEN", "after": "VOID" }])
    );
    let t = ticket_in(&app, "OPEN").await;
    ok(
        &call(
            &app,
            "support-1",
            &["support"],
            "addInternalNote",
            "AddInternalNoteInput",
            "change { id }",
            json!({ "ticketId": t["id"], "body": "watch this one" }),
        )
        .await,
        "addInternalNote",
    );
    let h = app.query("query($id: ID!) { ticket(id: $id) { history { nodes { operationName fields { field } } } } }", json!({ "id": t["id"] })).await;
    assert_eq!(
        h["ticket"]["history"]["nodes"][0]["operationName"],
        "addInternalNote"
    );
}
on_both_databases!(the_history_lists_what_each_role_may_read);

async fn histories_of_a_list_are_read_in_a_constant_number_of_statements(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids: Vec<String> = orgs(&app, "ACTIVE", 60)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let token = app.issuer.token("ops-1", &["ops"]);
    for (flag, value) in [("BETA_ACCESS", true), ("VIP", true), ("BETA_ACCESS", false)] {
        let (_, body) = app
            .graphql_as(Some(&token), "mutation($input: BulkOrganizationFlagInput!) { bulkSetOrganizationFlag(input: $input) { changed } }",
                json!({ "input": { "ids": ids, "flag": flag, "value": value, "reason": "beta wave" } }))
            .await;
        assert!(
            body["data"]["bulkSetOrganizationFlag"]["changed"]
                .as_i64()
                .unwrap_or_default()
                > 0,
            "{body}"
        );
    }
    let query = "query($n: Int) { organizations(first: $n, filter: {status: ACTIVE}) { nodes { id history(first: 2) { totalCount nodes { operationName fields { field after } } } } } }";
    app.query(query, json!({ "n": 1 })).await; // the first request also records its caller
    let (one, data) = app
        .statements_during(app.query(query, json!({ "n": 1 })))
        .await;
    assert_eq!(
        data["organizations"]["nodes"][0]["history"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{data}"
    );
    let (sixty, data) = app
        .statements_during(app.query(query, json!({ "n": 60 })))
        .await;
    let nodes = data["organizations"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 60);
    assert!(
        nodes
            .iter()
            .all(|n| n["history"]["totalCount"].as_i64().unwrap_or_default() >= 2),
        "{data}"
    );
    // The list, the pages of every history and their totals (reading the
    // events is one more, among the audit log's own statements).
    assert_eq!(one, 3, "{one}");
    assert_eq!(sixty, one, "60 histories cost what one does");
}
on_both_databases!(histories_of_a_list_are_read_in_a_constant_number_of_statements);
