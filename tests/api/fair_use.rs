//! Fair use: a caller past its cost budget per minute gets 429 with
//! `Retry-After` and the IETF `RateLimit` / `RateLimit-Policy` fields and
//! `LIMIT_EXCEEDED`, and is served again once the bucket has refilled; other
//! callers are served meanwhile; the probes are never limited; the refusals
//! are counted by kind and roles and folded in the audit log.

use std::time::Duration;

use backplane::config::Mode;
use backplane::graphql::budget::FairUse;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, counter, spawn_app_configured};
use crate::on_both_databases;

/// Status, the headers a client of the budget reads, and the body.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    policy: Option<String>,
    ratelimit: Option<String>,
    body: Value,
}

async fn post(app: &TestApp, token: &str, query: &str) -> Answer {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Answer {
        status: resp.status().as_u16(),
        retry_after: header("retry-after"),
        policy: header("ratelimit-policy"),
        ratelimit: header("ratelimit"),
        body: resp.json().await.unwrap_or(Value::Null),
    }
}

fn service_token(app: &TestApp, client: &str) -> String {
    let mut claims = app.issuer.claims(client, &[]);
    claims["client_id"] = json!(client);
    claims["scope"] = json!("backplane:read:customers");
    claims.as_object_mut().map(|c| c.remove("email"));
    app.issuer.sign(claims)
}

/// About 60 cost units (20 nodes of two fields, and the list).
const PAGE: &str = "{ organizations(first: 20) { nodes { id name } } }";

async fn a_caller_past_its_budget_waits_while_others_are_served(backend: Backend) {
    let app = spawn_app_configured(backend, Mode::Serve, |c| {
        c.service_clients = vec!["etl".into(), "etl-2".into()];
        // 40 units a second for a service: a page costs about one second.
        c.fair_use = FairUse {
            person_per_minute: Some(600),
            service_per_minute: Some(2_400),
        };
    })
    .await;
    let script = service_token(&app, "etl");
    let before = app.metrics().await;

    // Spend the minute: bounded, and well past 2,400 units.
    let mut refused = None;
    let mut served = 0;
    for _ in 0..200 {
        let answer = post(&app, &script, PAGE).await;
        match answer.status {
            200 => served += 1,
            429 => {
                refused = Some(answer);
                break;
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    let refused = refused.expect("the script is refused within 200 pages");
    // Still refused right away, before its Retry-After (held back, unread) …
    assert_eq!(post(&app, &script, PAGE).await.status, 429);
    assert!(
        (20..=80).contains(&served),
        "{served} pages before the refusal"
    );
    let retry_after: u64 = refused
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    assert_eq!(
        refused.policy.as_deref(),
        Some("\"service\";q=2400;w=60"),
        "RateLimit-Policy"
    );
    let ratelimit = refused.ratelimit.expect("RateLimit");
    let (remaining, reset) = ratelimit
        .strip_prefix("\"service\";r=")
        .and_then(|rest| rest.split_once(";t="))
        .unwrap_or_else(|| panic!("RateLimit: {ratelimit}"));
    let remaining: u32 = remaining.parse().expect("r");
    let reset: u64 = reset.parse().expect("t");
    let cost = refused.body["errors"][0]["extensions"]["cost"]
        .as_u64()
        .expect("extensions.cost");
    assert!(remaining < cost as u32, "{ratelimit} for a page of {cost}");
    assert!((50..=60).contains(&reset), "{ratelimit}");
    assert!(refused.body.get("data").is_none(), "{}", refused.body);
    let error = &refused.body["errors"][0];
    assert_eq!(error["extensions"]["code"], "LIMIT_EXCEEDED", "{error}");
    assert_eq!(error["extensions"]["limit"], "costPerMinute");
    assert_eq!(error["extensions"]["retryAfter"], retry_after);
    let after = app.metrics().await;
    let labels = ["kind=\"service\"", "roles=\"none\""];
    assert!(
        counter(&after, "backplane_fair_use_refused_total", &labels)
            >= counter(&before, "backplane_fair_use_refused_total", &labels) + 1.0
    );

    // Meanwhile: another script, a person, and the probes; and the script
    // is served once the bucket has refilled for a page.
    let other = post(&app, &service_token(&app, "etl-2"), PAGE).await;
    assert_eq!(other.status, 200, "{}", other.body);
    let person = app.issuer.token("alice", &["support"]);
    let alice = post(&app, &person, PAGE).await;
    assert_eq!(alice.status, 200, "{}", alice.body);
    for probe in ["/healthz", "/readyz"] {
        let resp = app.client.get(app.url(probe)).send().await.expect(probe);
        assert_eq!(resp.status(), 200, "{probe}");
    }
    // … and served once the bucket has refilled for a page.
    tokio::time::sleep(Duration::from_secs(retry_after + 1)).await;
    let again = post(&app, &script, PAGE).await;
    assert_eq!(again.status, 200, "{}", again.body);

    // A person has the person's policy; one operation above the budget is
    // charged the budget, so it runs once the bucket is full.
    let heavy = "{ organizations(first: 50) { nodes { id name slug status users(first: 10) { nodes { id email } } } } }";
    let bob = app.issuer.token("bob", &["support"]);
    assert_eq!(post(&app, &bob, heavy).await.status, 200);
    let refused = post(&app, &bob, PAGE).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.policy.as_deref(), Some("\"person\";q=600;w=60"));

    // The refusal is in the audit log as a refusal at the edge (folded).
    use backplane::store::entities::audit_event::Column;
    let mut recorded = false;
    for _ in 0..50 {
        let events = crate::audit::events_where(&app, Column::ActorSubject, "etl").await;
        recorded = events
            .iter()
            .any(|(_, d)| d["refused"]["reason"] == "over_budget" && d["refused"]["status"] == 429);
        if recorded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recorded, "no over_budget refusal of etl in the audit log");
}
on_both_databases!(a_caller_past_its_budget_waits_while_others_are_served);
