//! The role matrix of DESIGN.md, through introspection and queries: a field a
//! role may not read does not exist for it, and no response names it.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};

/// A field group, a probe query that reads it, and the names the group hides.
struct Group {
    name: &'static str,
    probe: &'static str,
    /// `(type, field)` pairs of the group.
    fields: &'static [(&'static str, &'static str)],
}

const GROUPS: &[Group] = &[
    Group {
        name: "customers",
        probe: "{ organizations(first: 2) { nodes { id name users(first: 1) { nodes { email } } } } }",
        fields: &[
            ("Query", "organizations"),
            ("Query", "organizationBySlug"),
            ("Query", "userByEmail"),
        ],
    },
    Group {
        name: "billing",
        probe: "{ invoices(first: 2) { nodes { number amountCents } } }",
        fields: &[
            ("Query", "invoices"),
            ("Organization", "invoices"),
            ("Organization", "subscription"),
        ],
    },
    Group {
        name: "cost data",
        probe: "{ organizations(first: 2) { nodes { monthlyCostCents grossMarginBps plan { unitCostCents } } } }",
        fields: &[
            ("Organization", "monthlyCostCents"),
            ("Organization", "grossMarginBps"),
            ("Plan", "unitCostCents"),
            ("Invoice", "processingFeeCents"),
        ],
    },
    Group {
        name: "internal flags",
        probe: "{ organizations(first: 2) { nodes { internalFlags { fraudReview vip churnRisk betaAccess } } } }",
        fields: &[("Organization", "internalFlags")],
    },
    Group {
        name: "audit log",
        probe: "{ auditEvents(first: 2) { nodes { id actorSubject } } }",
        fields: &[("Query", "auditEvents")],
    },
];

/// DESIGN.md's matrix: which groups each role reads (customers, billing, cost
/// data, internal flags, audit log).
const MATRIX: &[(&[&str], [bool; 5])] = &[
    (&["support"], [true, true, false, false, false]),
    (&["billing"], [true, true, false, false, false]),
    (&["finance"], [true, true, true, false, false]),
    (&["ops"], [true, false, false, true, false]),
    (&["admin"], [true, true, true, true, true]),
    (&["auditor"], [false, false, false, false, true]),
    (&[], [false, false, false, false, false]),
    (&["finance", "ops"], [true, true, true, true, false]),
];

const INTROSPECTION: &str =
    "{ __schema { types { name fields { name } inputFields { name } enumValues { name } } } }";

async fn introspect(app: &TestApp, token: &str) -> (Value, String) {
    let (status, body) = app.graphql_as(Some(token), INTROSPECTION, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let text = body.to_string();
    (body, text)
}

fn has_field(schema: &Value, type_name: &str, field: &str) -> bool {
    schema["data"]["__schema"]["types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["name"] == type_name)
        .flat_map(|t| t["fields"].as_array().cloned().unwrap_or_default())
        .any(|f| f["name"] == field)
}

#[tokio::test]
async fn every_role_sees_exactly_its_field_groups() {
    let app = spawn_app(Backend::Sqlite).await;
    for (roles, allowed) in MATRIX {
        let token = app
            .issuer
            .token(&format!("staff-{}", roles.join("-")), roles);
        let (schema, schema_text) = introspect(&app, &token).await;
        for (group, allowed) in GROUPS.iter().zip(allowed) {
            let who = format!("{roles:?} / {}", group.name);
            // Introspection.
            for (type_name, field) in group.fields {
                let type_visible = *type_name == "Query" || allowed_customers(allowed_row(roles));
                let expect = *allowed && type_visible;
                assert_eq!(
                    has_field(&schema, type_name, field),
                    expect,
                    "{who}: {type_name}.{field} in introspection"
                );
                if !expect {
                    assert!(
                        !schema_text.contains(&format!("\"{field}\"")),
                        "{who}: introspection names {field}"
                    );
                }
            }
            // A query.
            let (status, body) = app.graphql_as(Some(&token), group.probe, json!({})).await;
            assert_eq!(status, 200, "{who}: {body}");
            if *allowed {
                assert!(body.get("errors").is_none(), "{who}: {body}");
                assert!(body["data"].is_object(), "{who}: {body}");
            } else {
                assert!(body["data"].is_null(), "{who}: data returned: {body}");
                let message = body["errors"][0]["message"].as_str().unwrap_or_default();
                // As for a field that never existed: the name the client
                // sent, no suggestion (tests/api/hidden_schema.rs compares
                // the two answers whole).
                assert!(message.starts_with("Unknown field \""), "{who}: {body}");
                assert!(!message.contains("Did you mean"), "{who}: {body}");
            }
        }
    }
}

fn allowed_row(roles: &[&str]) -> [bool; 5] {
    MATRIX
        .iter()
        .find(|(r, _)| *r == roles)
        .map(|(_, a)| *a)
        .unwrap_or_default()
}

fn allowed_customers(row: [bool; 5]) -> bool {
    row[0]
}

#[tokio::test]
async fn hidden_types_and_fields_stay_hidden_through_every_path() {
    let app = spawn_app(Backend::Sqlite).await;
    let support = app.issuer.token("support-1", &["support"]);
    for query in [
        // Through a fragment, an inline fragment, an alias, a variable type.
        "query { organizations { nodes { ...F } } } fragment F on Organization { monthlyCostCents }",
        "query { organizations { nodes { ... on Organization { internalFlags { vip } } } } }",
        "query { organizations { nodes { cost: monthlyCostCents } } }",
        "query { organizations { nodes { id } } } fragment G on InternalFlags { vip }",
        "query($f: AuditEventFilter) { viewer { subject } }",
    ] {
        let (status, body) = app.graphql_as(Some(&support), query, json!({})).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert!(body["data"].is_null(), "{query}: {body}");
        // Answered as if the names had never existed.
        crate::hidden_schema::same_as_never_existing(
            &app,
            &support,
            "support",
            query,
            &[
                "monthlyCostCents",
                "internalFlags",
                "InternalFlags",
                "AuditEventFilter",
            ],
        )
        .await;
    }
    // __type of a hidden type is null, as for a type that does not exist.
    let (_, body) = app
        .graphql_as(Some(&support), r#"{ a: __type(name: "InternalFlags") { name } b: __type(name: "NoSuchType") { name } }"#, json!({}))
        .await;
    assert_eq!(body["data"], json!({ "a": null, "b": null }), "{body}");

    // A misspelt field gets the same error as a hidden one.
    let (_, hidden) = app
        .graphql_as(
            Some(&support),
            "{ organizations { nodes { monthlyCostCents } } }",
            json!({}),
        )
        .await;
    let (_, misspelt) = app
        .graphql_as(
            Some(&support),
            "{ organizations { nodes { monthlyCostCentz } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        hidden["errors"][0]["message"],
        misspelt["errors"][0]["message"]
            .as_str()
            .map(|m| m.replace("monthlyCostCentz", "monthlyCostCents"))
            .unwrap_or_default()
    );
}

#[tokio::test]
async fn first_time_principals_join_the_staff_directory() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app
        .issuer
        .token("new-hire", &["support", "ops", "no-such-group"]);
    let (status, _) = app
        .graphql_as(Some(&token), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(status, 200);
    // Seen lately: no write on the next request.
    let (statements, (status, _)) = app
        .statements_during(app.graphql_as(Some(&token), "{ viewer { subject } }", json!({})))
        .await;
    assert_eq!((status, statements), (200, 0));
    let data = app
        .query(
            "{ staffMembers(first: 100) { nodes { subject email name roles lastSeenAt } } }",
            json!({}),
        )
        .await;
    let member = data["staffMembers"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|m| m["subject"] == "new-hire")
        .cloned()
        .expect("the new hire is in the directory");
    assert_eq!(member["email"], "new-hire@staff.example");
    assert_eq!(member["roles"], json!(["support", "ops"]));
    assert!(member["lastSeenAt"].is_string());
}

#[tokio::test]
async fn service_identities_get_what_their_scopes_grant() {
    let app = crate::helpers::spawn_app_configured(
        Backend::Sqlite,
        backplane::config::Mode::Serve,
        |c| {
            c.service_clients = vec!["billing-export=svc-billing-export".into()];
        },
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    let token = app.issuer.sign(json!({
        "iss": app.issuer.url,
        "aud": crate::helpers::AUDIENCE,
        "sub": "svc-billing-export",
        "client_id": "billing-export",
        "scope": "backplane:read:customers backplane:read:cost_data unrelated:scope",
        "iat": now,
        "exp": now + 600,
    }));
    let (status, body) = app
        .graphql_as(
            Some(&token),
            "{ viewer { subject kind roles permissions } organizations(first: 1) { nodes { monthlyCostCents } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["viewer"],
        json!({
            "subject": "svc-billing-export",
            "kind": "SERVICE",
            "roles": [],
            "permissions": ["read:customers", "read:cost_data"],
        })
    );
    assert!(body["data"]["organizations"]["nodes"][0]["monthlyCostCents"].is_number());
    // What the scopes do not grant does not exist for it.
    let (_, body) = app
        .graphql_as(
            Some(&token),
            "{ organizations(first: 1) { nodes { internalFlags { vip } } } }",
            json!({}),
        )
        .await;
    assert!(body["data"].is_null(), "{body}");
    crate::hidden_schema::same_as_never_existing(
        &app,
        &token,
        "service",
        "{ organizations(first: 1) { nodes { internalFlags { vip } } } }",
        &["internalFlags"],
    )
    .await;
    // Its events record the scopes it acted with beside its roles.
    let events = app
        .query(
            "{ auditEvents(first: 1, filter: {actor: \"svc-billing-export\"}) { nodes { actorRoles actorScopes } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        events["auditEvents"]["nodes"][0],
        json!({ "actorRoles": [], "actorScopes": ["read:customers", "read:cost_data"] }),
        "{events}"
    );
}

#[tokio::test]
async fn identity_provider_groups_map_to_roles() {
    use backplane::config::Mode;
    use backplane::policy::Role;

    let app = crate::helpers::spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        if let Some(oidc) = c.oidc.as_mut() {
            oidc.roles_claim = "realm_access.roles".into();
            oidc.role_map = [("eng-oncall".to_owned(), Role::Ops)].into_iter().collect();
        }
    })
    .await;
    let mut claims = app.issuer.claims("oncall-1", &[]);
    claims["realm_access"] = json!({ "roles": ["eng-oncall", "offline_access"] });
    let token = app.issuer.sign(claims);
    let (status, body) = app
        .graphql_as(Some(&token), "{ viewer { roles } }", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["viewer"]["roles"], json!(["ops"]));
}

/// DESIGN.md's write column: which mutations each role may run.
const WRITES: &[(&str, &str)] = &[
    (
        "bulkUpdateOrganizationStatus",
        r#"mutation { bulkUpdateOrganizationStatus(input: {ids: ["org_1"], status: SUSPENDED, reason: "access test", dryRun: true}) { requested } }"#,
    ),
    (
        "bulkSetOrganizationFlag",
        r#"mutation { bulkSetOrganizationFlag(input: {ids: ["org_1"], flag: VIP, value: true, reason: "access test", dryRun: true}) { requested } }"#,
    ),
    (
        "bulkAssignTickets",
        r#"mutation { bulkAssignTickets(input: {ids: ["tkt_1"], assigneeId: null, reason: "access test", dryRun: true}) { requested } }"#,
    ),
    (
        "bulkVoidInvoices",
        r#"mutation { bulkVoidInvoices(input: {ids: ["inv_1"], reason: "access test", dryRun: true}) { requested } }"#,
    ),
];

/// Per role: org status (ops), flags (ops), tickets (support), invoices (billing).
const WRITE_MATRIX: &[(&[&str], [bool; 4])] = &[
    (&["support"], [false, false, true, false]),
    (&["billing"], [false, false, false, true]),
    (&["finance"], [false, false, false, false]),
    (&["ops"], [true, true, false, false]),
    (&["admin"], [true, true, true, true]),
    (&["auditor"], [false, false, false, false]),
    (&[], [false, false, false, false]),
];

#[tokio::test]
async fn every_role_may_run_exactly_its_mutations() {
    let app = spawn_app(Backend::Sqlite).await;
    for (roles, allowed) in WRITE_MATRIX {
        let token = app
            .issuer
            .token(&format!("writer-{}", roles.join("-")), roles);
        let (_, schema) = app
            .graphql_as(
                Some(&token),
                "{ __schema { mutationType { fields { name } } } }",
                json!({}),
            )
            .await;
        let visible: Vec<String> = schema["data"]["__schema"]["mutationType"]["fields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        if !allowed.iter().any(|a| *a) {
            assert!(
                schema["data"]["__schema"]["mutationType"].is_null(),
                "{roles:?}: {schema}"
            );
        }
        for ((name, mutation), allowed) in WRITES.iter().zip(allowed) {
            let who = format!("{roles:?} / {name}");
            assert_eq!(
                visible.contains(&name.to_string()),
                *allowed,
                "{who}: introspection"
            );
            let (status, body) = app.graphql_as(Some(&token), mutation, json!({})).await;
            assert_eq!(status, 200, "{who}: {body}");
            if *allowed {
                assert!(body.get("errors").is_none(), "{who}: {body}");
                assert_eq!(body["data"][name]["requested"], 1, "{who}: {body}");
            } else {
                assert!(body["data"].is_null(), "{who}: {body}");
                crate::hidden_schema::same_as_never_existing(&app, &token, &who, mutation, &[name])
                    .await;
            }
        }
    }
}

/// The example script of the README, run for real: a client-credentials token
/// from the issuer, a read, and a bulk change (a dry run, then applied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_script_authenticates_and_runs_a_bulk_change() {
    let app = crate::helpers::spawn_app_configured(
        Backend::Sqlite,
        backplane::config::Mode::Serve,
        |c| {
            c.service_clients = vec!["script".into()];
        },
    )
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/script_token.sh");
    let run = |apply: bool| {
        std::process::Command::new("bash")
            .arg(script)
            .args(["org_1", "org_2"])
            .env("TOKEN_URL", format!("{}/token", app.issuer.url))
            .env("CLIENT_ID", "script")
            .env("CLIENT_SECRET", "script-secret")
            .env(
                "SCOPE",
                "backplane:read:customers backplane:bulk:organizations",
            )
            .env("BACKPLANE_URL", format!("http://{}", app.addr))
            .env("APPLY", if apply { "1" } else { "0" })
            .env("IDEMPOTENCY_KEY", "example-test")
            .output()
            .expect("run the example script")
    };
    let out = tokio::task::block_in_place(|| run(false));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"kind\":\"SERVICE\""), "{stdout}");
    assert!(stdout.contains("\"dryRun\":true"), "{stdout}");
    assert!(!stdout.contains("script-secret"), "the secret was printed");
    let out = tokio::task::block_in_place(|| run(true));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("\"dryRun\":false"), "{stdout}");
    assert!(stdout.contains("\"requested\":2"), "{stdout}");
}

/// A service token for `client` with `scopes` (space-separated, without the
/// `backplane:` prefix).
fn service_token(app: &TestApp, client: &str, scopes: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let scope: Vec<String> = scopes
        .split_whitespace()
        .map(|s| format!("backplane:{s}"))
        .collect();
    app.issuer.sign(json!({
        "iss": app.issuer.url,
        "aud": crate::helpers::AUDIENCE,
        "sub": client,
        "client_id": client,
        "scope": scope.join(" "),
        "iat": now,
        "exp": now + 600,
    }))
}

/// A right to write internal flags without the right to read them would tell
/// its holder the flags through a dry run's counts: it is not granted at all.
async fn a_flag_writer_that_may_not_read_flags_cannot_probe_them(backend: Backend) {
    let app = crate::helpers::spawn_app_configured(backend, backplane::config::Mode::Serve, |c| {
        c.service_clients = vec!["flag-writer".into(), "flag-keeper".into()];
    })
    .await;
    let probe = "mutation($ids: [ID!]!) { bulkSetOrganizationFlag(input: { ids: $ids, flag: VIP, value: true, reason: \"probe\", dryRun: true }) { requested changed unchanged } }";
    let ids = json!({ "ids": ["org_1", "org_2", "org_3", "org_4"] });

    let writer = service_token(&app, "flag-writer", "read:customers write:internal_flags");
    let (status, body) = app
        .graphql_as(Some(&writer), "{ viewer { permissions } }", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["viewer"]["permissions"],
        json!(["read:customers"])
    );
    let (_, refused) = app.graphql_as(Some(&writer), probe, ids.clone()).await;
    assert!(refused["data"].is_null(), "{refused}");
    assert!(refused.get("errors").is_some(), "{refused}");
    assert!(!refused.to_string().contains("unchanged"), "{refused}");
    // Refused exactly as a caller with no right to change anything is.
    let reader = service_token(&app, "flag-writer", "read:customers");
    let (_, none) = app.graphql_as(Some(&reader), probe, ids.clone()).await;
    assert_eq!(refused, none);

    // With the right to read flags too, the dry run answers.
    let keeper = service_token(
        &app,
        "flag-keeper",
        "read:customers read:internal_flags write:internal_flags",
    );
    let (status, body) = app.graphql_as(Some(&keeper), probe, ids).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["bulkSetOrganizationFlag"]["requested"], 4,
        "{body}"
    );
}
crate::on_both_databases!(a_flag_writer_that_may_not_read_flags_cannot_probe_them);
