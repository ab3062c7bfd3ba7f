//! Step-up authentication (RFC 9470): a person's rights that need a recent
//! strong sign-in (cost data, bulk changes and the audit log by default) are
//! refused whole, with 401 and the `insufficient_user_authentication`
//! challenge, until the token says so (`amr`/`acr`, `auth_time`); by bearer
//! token from the test issuer here, by browser session through the real
//! OpenID provider in `sign_in.rs`. Services are exempt; the schema still
//! shows the fields; `viewer` says what is pending; the refusal is audited.

use std::time::Duration;

use backplane::config::Mode;
use backplane::identity::step_up::StepUpSettings;
use backplane::policy::{Permission, Role, grants};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_configured};
use crate::on_both_databases;

/// What RFC 9470's challenge says with the default settings.
pub const DEFAULT_CHALLENGE: &str = "Bearer realm=\"backplane\", error=\"insufficient_user_authentication\", error_description=\"a recent multi-factor sign-in is required\", max_age=\"43200\"";

/// POSTs `body` to `/graphql` with `token`: status, `WWW-Authenticate`, body.
async fn post(app: &TestApp, token: &str, body: Value) -> (u16, String, Value) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let challenge = crate::helpers::www_authenticate(&resp);
    (status, challenge, resp.json().await.unwrap_or(Value::Null))
}

/// An operation that uses `permission`, and the status it leaves the
/// organization `org` in when it runs. Every right that needs a step-up by
/// default must have one here: a new one fails this test until it does.
fn operation_using(permission: Permission, org: &str) -> (String, Option<&'static str>) {
    match permission {
        Permission::ReadCostData => (
            format!("{{ organization(id: \"{org}\") {{ id monthlyCostCents }} }}"),
            None,
        ),
        Permission::ReadAuditLog => ("{ auditEvents(first: 1) { nodes { id } } }".into(), None),
        Permission::BulkOrganizations => (
            format!(
                "mutation {{ bulkUpdateOrganizationStatus(input: {{ ids: [\"{org}\"], status: SUSPENDED, reason: \"step-up test\" }}) {{ requested changed }} }}"
            ),
            Some("SUSPENDED"),
        ),
        other => panic!("no operation in this test uses {}: add one", other.as_str()),
    }
}

async fn first_org(app: &TestApp) -> (String, String) {
    let data = app
        .query(
            "{ organizations(first: 1, filter: { status: ACTIVE }) { nodes { id status } } }",
            json!({}),
        )
        .await;
    let org = &data["organizations"]["nodes"][0];
    (
        org["id"].as_str().expect("id").to_owned(),
        org["status"].as_str().expect("status").to_owned(),
    )
}

async fn status_of(app: &TestApp, org: &str) -> String {
    let data = app
        .query(
            "query ($id: ID!) { organization(id: $id) { status } }",
            json!({ "id": org }),
        )
        .await;
    data["organization"]["status"]
        .as_str()
        .expect("status")
        .to_owned()
}

/// Every right that needs a step-up, as every role that grants it, on both
/// read paths: refused with 401, the exact challenge and code, nothing run;
/// with a strong sign-in, answered.
async fn each_step_up_right_needs_a_strong_sign_in(backend: Backend) {
    for compiled in [true, false] {
        let app = spawn_app_configured(backend, Mode::Serve, |c| c.compile_reads = compiled).await;
        for permission in StepUpSettings::default().permissions {
            for role in Role::ALL
                .into_iter()
                .filter(|r| grants(*r).contains(&permission))
            {
                let (org, before) = first_org(&app).await;
                let (query, after) = operation_using(permission, &org);
                let weak = app.issuer.password_only("weak-1", &[role.as_str()]);
                let (status, challenge, body) = post(&app, &weak, json!({ "query": query })).await;
                let case = format!("{} as {role} (compiled: {compiled})", permission.as_str());
                assert_eq!(status, 401, "{case}: {body}");
                assert_eq!(challenge, DEFAULT_CHALLENGE, "{case}");
                assert!(body.get("data").is_none(), "{case}: {body}");
                let error = &body["errors"][0];
                assert_eq!(
                    error["extensions"]["code"], "INSUFFICIENT_AUTHENTICATION",
                    "{case}: {body}"
                );
                assert_eq!(
                    error["extensions"]["permission"],
                    permission.as_str(),
                    "{case}"
                );
                assert_eq!(error["extensions"]["maxAge"], 43200, "{case}");
                assert_eq!(status_of(&app, &org).await, before, "{case}: nothing ran");

                let strong = app.issuer.token("strong-1", &[role.as_str()]);
                let (status, _, body) = post(&app, &strong, json!({ "query": query })).await;
                assert_eq!(status, 200, "{case}: {body}");
                assert!(body.get("errors").is_none(), "{case}: {body}");
                if let Some(after) = after {
                    assert_eq!(status_of(&app, &org).await, after, "{case}: it ran");
                    app.query(
                        "mutation ($id: ID!, $s: OrganizationStatus!) { bulkUpdateOrganizationStatus(input: { ids: [$id], status: $s, reason: \"back\" }) { changed } }",
                        json!({ "id": org, "s": before }),
                    )
                    .await;
                }
            }
        }
        // Support holds none of these rights: a password is enough there.
        let support = app.issuer.password_only("weak-2", &["support"]);
        let (status, _, body) = post(
            &app,
            &support,
            json!({ "query": "{ organizations(first: 2) { nodes { name } } }" }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
}
on_both_databases!(each_step_up_right_needs_a_strong_sign_in);

/// A strong sign-in that is too old is refused; the challenge carries the
/// configured classes and age, in RFC 9470's form; a class alone counts.
async fn an_old_sign_in_is_refused_with_what_a_new_one_must_meet(backend: Backend) {
    let app = spawn_app_configured(backend, Mode::Serve, |c| {
        c.step_up.acr = vec!["urn:corp:mfa".into(), "gold".into()];
        c.step_up.max_age = Duration::from_secs(300);
    })
    .await;
    let now = chrono::Utc::now().timestamp();
    let query = json!({ "query": "{ organizations(first: 1) { nodes { monthlyCostCents } } }" });

    let mut old = app.issuer.claims("finance-old", &["finance"]);
    old["auth_time"] = json!(now - 301);
    let (status, challenge, body) = post(&app, &app.issuer.sign(old), query.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        challenge,
        "Bearer realm=\"backplane\", error=\"insufficient_user_authentication\", error_description=\"a recent multi-factor sign-in is required\", acr_values=\"urn:corp:mfa gold\", max_age=\"300\""
    );
    let extensions = &body["errors"][0]["extensions"];
    assert_eq!(extensions["acrValues"], json!(["urn:corp:mfa", "gold"]));
    assert_eq!(extensions["maxAge"], 300);

    // No `auth_time`: nothing says when, so never recent.
    let mut timeless = app.issuer.claims("finance-timeless", &["finance"]);
    timeless.as_object_mut().map(|c| c.remove("auth_time"));
    let (status, _, body) = post(&app, &app.issuer.sign(timeless), query.clone()).await;
    assert_eq!(status, 401, "{body}");

    // A configured class with a password counts (the provider vouches for it).
    let mut by_class = app.issuer.claims("finance-acr", &["finance"]);
    by_class["amr"] = json!(["pwd"]);
    by_class["acr"] = json!("gold");
    by_class["auth_time"] = json!(now - 200);
    let (status, _, body) = post(&app, &app.issuer.sign(by_class), query).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
}
on_both_databases!(an_old_sign_in_is_refused_with_what_a_new_one_must_meet);

/// A service identity is not a person: its scopes need no step-up. A
/// person who must step up still sees the fields, and `viewer` says what is
/// pending and how they signed in.
async fn services_are_exempt_and_people_see_what_is_pending(backend: Backend) {
    let app = spawn_app_configured(backend, Mode::Serve, |c| {
        c.service_clients = vec!["cost-reports".into()];
    })
    .await;
    let mut claims = app.issuer.claims("cost-reports", &[]);
    claims["client_id"] = json!("cost-reports");
    claims["scope"] = json!("backplane:read:customers backplane:read:cost_data");
    let object = claims.as_object_mut().expect("claims");
    for name in ["email", "amr", "auth_time"] {
        object.remove(name);
    }
    let service = app.issuer.sign(claims);
    let (status, _, body) = post(
        &app,
        &service,
        json!({ "query": "{ viewer { kind stepUpRequired } organizations(first: 1) { nodes { monthlyCostCents } } }" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["viewer"]["stepUpRequired"], json!([]));

    let weak = app.issuer.password_only("fiona", &["finance"]);
    let viewer = "{ viewer { permissions stepUpRequired authenticationMethods authenticatedAt } __type(name: \"Organization\") { fields { name } } }";
    let (status, _, body) = post(&app, &weak, json!({ "query": viewer })).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert!(
        data["viewer"]["permissions"]
            .as_array()
            .expect("permissions")
            .contains(&json!("read:cost_data")),
        "{body}"
    );
    assert_eq!(data["viewer"]["stepUpRequired"], json!(["read:cost_data"]));
    assert_eq!(data["viewer"]["authenticationMethods"], json!(["pwd"]));
    assert!(data["viewer"]["authenticatedAt"].is_string(), "{body}");
    let fields: Vec<&str> = data["__type"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(fields.contains(&"monthlyCostCents"), "{fields:?}");

    let strong = app.issuer.token("fiona", &["finance"]);
    let (_, _, body) = post(&app, &strong, json!({ "query": viewer })).await;
    assert_eq!(body["data"]["viewer"]["stepUpRequired"], json!([]));
    assert_eq!(
        body["data"]["viewer"]["authenticationMethods"],
        json!(["pwd", "otp"])
    );
}
on_both_databases!(services_are_exempt_and_people_see_what_is_pending);

/// A batch with one operation that needs a step-up is refused whole, before
/// any of it runs; the refusal is in the audit log, naming what was used; an
/// export of cost data is refused the same way.
async fn a_step_up_refusal_is_whole_and_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let (org, before) = first_org(&app).await;
    let version = app
        .query(
            "query ($id: ID!) { organization(id: $id) { version } }",
            json!({ "id": org }),
        )
        .await["organization"]["version"]
        .clone();
    let weak = app.issuer.password_only("ada-weak", &["admin"]);
    let batch = json!([
        { "query": "mutation ($id: ID!, $v: Int!) { setOrganizationStatus(input: { id: $id, status: SUSPENDED, reason: \"batch\", expectedVersion: $v }) { organization { status } } }", "variables": { "id": org, "v": version } },
        { "query": "query Log { auditEvents(first: 1) { nodes { id } } }" },
    ]);
    let (status, challenge, body) = post(&app, &weak, batch).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(challenge, DEFAULT_CHALLENGE);
    assert_eq!(
        body["errors"][0]["extensions"]["permission"], "read:audit_log",
        "{body}"
    );
    assert_eq!(status_of(&app, &org).await, before, "the batch did not run");

    // Read events go through the writer: wait for it (bounded).
    use backplane::store::entities::audit_event::Column;
    let mut events = Vec::new();
    for _ in 0..50 {
        events = crate::audit::events_where(&app, Column::ActorSubject, "ada-weak").await;
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(events.len(), 1, "{events:?}");
    let (event, details) = &events[0];
    assert_eq!(event.outcome, "denied");
    assert_eq!(event.operation_name.as_deref(), Some("Log"));
    assert_eq!(details["denied"], "Query.auditEvents", "{details}");

    let export = app
        .client
        .post(app.url("/export"))
        .bearer_auth(&weak)
        .header("accept", "application/x-ndjson")
        .json(&json!({ "query": "{ organizations { nodes { id monthlyCostCents } } }" }));
    assert_challenged(export).await;
}

/// Sends `request` and checks it is refused for a step-up: 401, the default
/// challenge, `INSUFFICIENT_AUTHENTICATION`.
async fn assert_challenged(request: reqwest::RequestBuilder) {
    let resp = request.send().await.expect("request");
    assert_eq!(resp.status(), 401);
    assert_eq!(crate::helpers::www_authenticate(&resp), DEFAULT_CHALLENGE);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INSUFFICIENT_AUTHENTICATION",
        "{body}"
    );
}
on_both_databases!(a_step_up_refusal_is_whole_and_audited);

/// A browser session through the real OpenID provider: a password-only
/// sign-in may use none of the rights that need a step-up (401, the
/// challenge, nothing run); `/auth/session` says so; the step-up sign-in
/// asks the provider for a new, recent sign-in (`prompt=login`, `max_age`),
/// and with a one-time code every one of them is answered.
async fn a_browser_session_steps_up_through_the_provider(backend: Backend) {
    use crate::sign_in::{
        app_with_sign_in, browser, graphql_with_cookie, resolve, session_of, sign_in, sign_in_from,
        start_provider,
    };
    let provider = start_provider().await;
    let app = app_with_sign_in(backend, &provider, |_| {}).await;
    let client = browser();
    sign_in(&app, &client, "ada").await;
    let session = session_of(&app, &client).await;
    assert_eq!(session["signedIn"], true, "{session}");
    assert_eq!(session["strongAuthentication"], false, "{session}");
    let rights = StepUpSettings::default().permissions;
    let names: Vec<&str> = rights.iter().map(|p| p.as_str()).collect();
    assert_eq!(session["stepUpRequired"], json!(names), "{session}");

    let status_of = |org: String| {
        let client = client.clone();
        let app = &app;
        async move {
            let query = format!("{{ organization(id: \"{org}\") {{ status }} }}");
            let (_, body) = graphql_with_cookie(app, &client, &query).await;
            body["data"]["organization"]["status"]
                .as_str()
                .expect("status")
                .to_owned()
        }
    };
    let (_, body) = graphql_with_cookie(
        &app,
        &client,
        "{ organizations(first: 1, filter: { status: ACTIVE }) { nodes { id } } }",
    )
    .await;
    let org = body["data"]["organizations"]["nodes"][0]["id"]
        .as_str()
        .expect("an active organization")
        .to_owned();
    for permission in &rights {
        let (query, _) = operation_using(*permission, &org);
        assert_challenged(
            client
                .post(app.url("/graphql"))
                .json(&json!({ "query": query })),
        )
        .await;
    }
    assert_eq!(status_of(org.clone()).await, "ACTIVE", "nothing ran");

    // The step-up sign-in asks for a new sign-in, at most 12 h old.
    let start = app.url("/auth/login?step_up=1&return_to=/playground");
    let resp = client.get(&start).send().await.expect("login");
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let authorize = resolve(
        &start,
        resp.headers()["location"].to_str().expect("location"),
    );
    let query: std::collections::HashMap<String, String> = reqwest::Url::parse(&authorize)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query.get("prompt").map(String::as_str), Some("login"));
    assert_eq!(query.get("max_age").map(String::as_str), Some("43200"));
    let landed = sign_in_from(&client, authorize, "ada", Some("123456")).await;
    assert_eq!(landed, app.url("/playground"));

    let session = session_of(&app, &client).await;
    assert_eq!(session["strongAuthentication"], true, "{session}");
    assert_eq!(session["stepUpRequired"], json!([]), "{session}");
    let until =
        chrono::DateTime::parse_from_rfc3339(session["strongUntil"].as_str().expect("strongUntil"))
            .expect("a time");
    let ahead = until.timestamp() - chrono::Utc::now().timestamp();
    assert!((43_000..=43_200).contains(&ahead), "{ahead}");
    for permission in &rights {
        let (query, after) = operation_using(*permission, &org);
        let (status, body) = graphql_with_cookie(&app, &client, &query).await;
        assert_eq!(status, 200, "{}: {body}", permission.as_str());
        assert!(
            body.get("errors").is_none(),
            "{}: {body}",
            permission.as_str()
        );
        if let Some(after) = after {
            assert_eq!(status_of(org.clone()).await, after, "it ran");
        }
    }
}
on_both_databases!(a_browser_session_steps_up_through_the_provider);
