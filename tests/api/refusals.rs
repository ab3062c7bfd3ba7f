//! Requests refused before the GraphQL gate leave audit events, folded by
//! source and reason (`audit::refusals`).

use backplane::config::Mode;
use backplane::store::entities::audit_event;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, counter, spawn_app_configured};
use crate::on_both_databases;

/// The refusal events of `app`'s database, oldest first, with their
/// `details.refused`.
async fn refusals(app: &TestApp) -> Vec<(audit_event::Model, Value)> {
    crate::audit::events_where(app, audit_event::Column::OperationType, "request")
        .await
        .into_iter()
        .map(|(e, details)| (e, details["refused"].clone()))
        .collect()
}

/// The events of `reason`, and their counts added up.
fn of_reason<'a>(
    events: &'a [(audit_event::Model, Value)],
    reason: &str,
) -> (Vec<&'a (audit_event::Model, Value)>, u64) {
    let found: Vec<_> = events
        .iter()
        .filter(|(_, r)| r["reason"] == reason)
        .collect();
    let total = found
        .iter()
        .map(|(_, r)| r["count"].as_u64().unwrap_or(0))
        .sum();
    (found, total)
}

/// The token of the test issuer with its payload changed: its signature
/// no longer holds.
fn forged(app: &TestApp, subject: &str) -> String {
    let good = app.issuer.token(subject, &["support"]);
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut claims = app.issuer.claims(subject, &["admin"]);
    claims["sub"] = json!(subject);
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        serde_json::to_vec(&claims).expect("claims"),
    );
    parts.join(".")
}

/// A thousand requests with forged tokens, eight at a time, leave at most
/// two events (the first at once, the rest folded until the interval ends,
/// here at shutdown) whose counts add up to a thousand; the forged
/// subject is not named (no signature vouches for it) and no token reaches
/// the log.
async fn a_flood_of_bad_tokens_leaves_a_bounded_number_of_events(backend: Backend) {
    let mut app = spawn_app_configured(backend, Mode::Serve, |c| {
        c.audit_fold = std::time::Duration::from_secs(3600);
    })
    .await;
    let token = forged(&app, "flood-forger");
    let before = counter(
        &app.metrics().await,
        "backplane_refusals_total",
        &["reason=\"bad_signature\""],
    );
    let url = app.url("/graphql");
    let sent = futures::stream::iter(0..1000)
        .map(|_| {
            let request = app
                .client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({ "query": "{ viewer { subject } }" }));
            async move { request.send().await.expect("send").status().as_u16() }
        })
        .buffer_unordered(8)
        .collect::<Vec<u16>>()
        .await;
    assert!(sent.iter().all(|s| *s == 401), "{sent:?}");
    let after = counter(
        &app.metrics().await,
        "backplane_refusals_total",
        &["reason=\"bad_signature\""],
    );
    assert!(after - before >= 1000.0, "{before} → {after}");

    app.stop().await;
    let events = refusals(&app).await;
    let (flood, total) = of_reason(&events, "bad_signature");
    assert_eq!(total, 1000, "{events:#?}");
    assert!(
        (1..=2).contains(&flood.len()),
        "a thousand refusals of one source for one reason within one interval are at most two events: {flood:#?}"
    );
    for (event, refused) in &flood {
        assert_eq!(event.client_addr.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            event.actor_subject, "",
            "a forged token's subject is not believed"
        );
        assert_eq!(event.outcome, "denied");
        assert_eq!(event.operation_name.as_deref(), Some("POST /graphql"));
        assert_eq!(refused["routes"], json!(["POST /graphql"]));
        assert_eq!(refused["status"], 401);
        assert_eq!(refused["message"], "the token's signature is invalid");
        assert!(event.request_id.is_some());
    }
    assert_eq!(
        crate::audit::events_containing(&app, "flood-forger").await,
        0,
        "nothing of the forged token is in the log"
    );
    let signature = token.rsplit('.').next().expect("signature");
    assert_eq!(
        crate::audit::events_containing(&app, &signature[..24]).await,
        0
    );
}
on_both_databases!(a_flood_of_bad_tokens_leaves_a_bounded_number_of_events);

/// Each kind of refusal before the gate is recorded with what is known: a
/// missing token, an expired token (whose signature held: its subject is
/// named), an oversized body, a request that is not GraphQL (sent with a
/// good token: its subject is named), a foreign network, and in `dev` a
/// cross-site form and a foreign host name.
async fn every_refusal_before_the_gate_is_recorded(backend: Backend) {
    let mut app = spawn_app_configured(backend, Mode::Serve, |c| {
        c.max_body_bytes = 4096;
    })
    .await;
    let client = &app.client;
    let graphql = app.url("/graphql");
    let query = json!({ "query": "{ viewer { subject } }" });

    let none = client
        .post(&graphql)
        .json(&query)
        .send()
        .await
        .expect("send");
    assert_eq!(none.status(), 401);

    let mut expired = app.issuer.claims("refused-late", &["support"]);
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 600);
    let expired = app.issuer.sign(expired);
    let late = client
        .post(&graphql)
        .bearer_auth(&expired)
        .json(&query)
        .send()
        .await
        .expect("send");
    assert_eq!(late.status(), 401);

    let good = app.issuer.token("refused-sloppy", &["support"]);
    let big = json!({ "query": format!("{{ viewer {{ subject }} }} #{}", "x".repeat(8192)) });
    let large = client
        .post(&graphql)
        .bearer_auth(&good)
        .json(&big)
        .send()
        .await
        .expect("send");
    assert_eq!(large.status(), 413);

    let not_graphql = client
        .post(&graphql)
        .bearer_auth(&good)
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .body("{\"query\": 7}")
        .send()
        .await
        .expect("send");
    assert_eq!(not_graphql.status(), 400);

    // The same database, served to allowed networks that leave out loopback.
    let mut foreign =
        crate::helpers::spawn_app_on_configured(app.database_url(), &app.issuer, |c| {
            c.network.allowed = vec!["10.0.0.0/8".parse().expect("net")];
        })
        .await;
    let outside = foreign
        .client
        .post(foreign.url("/graphql"))
        .bearer_auth(&good)
        .json(&query)
        .send()
        .await
        .expect("send");
    assert_eq!(outside.status(), 403);
    foreign.stop().await;
    app.stop().await;

    let events = refusals(&app).await;
    let one = |reason: &str| {
        let (found, total) = of_reason(&events, reason);
        assert_eq!((found.len(), total), (1, 1), "{reason}: {events:#?}");
        found[0].clone()
    };
    let (event, refused) = one("missing_token");
    assert_eq!(event.actor_subject, "");
    assert_eq!(refused["status"], 401);
    assert_eq!(event.client_addr.as_deref(), Some("127.0.0.1"));

    let (event, refused) = one("expired_token");
    assert_eq!(event.actor_subject, "refused-late", "the signature held");
    assert_eq!(refused["message"], "the token has expired");

    let (event, refused) = one("body_too_large");
    assert_eq!(refused["status"], 413);
    assert_eq!(event.operation_name.as_deref(), Some("POST /graphql"));
    assert_eq!(
        crate::audit::events_containing(&app, "xxxxxxxx").await,
        0,
        "nothing of the body is recorded"
    );

    let (event, refused) = one("malformed_request");
    assert_eq!(event.actor_subject, "refused-sloppy");
    assert_eq!(refused["message"], "`query` must be a string");

    let (event, refused) = one("foreign_network");
    assert_eq!(event.actor_subject, "", "the token was never read");
    assert_eq!(refused["status"], 403);
    assert_eq!(event.client_addr.as_deref(), Some("127.0.0.1"));

    // In `dev`: a form posted from another site, and a foreign host name.
    let mut dev = spawn_app_configured(backend, Mode::Dev, |c| {
        c.public_url = Some("http://127.0.0.1:9".into());
        c.browser = Some(backplane::identity::browser::BrowserClientSettings {
            client_id: "backplane".into(),
            client_secret: None,
            redirect_uri: "http://127.0.0.1:9/auth/callback".into(),
        });
    })
    .await;
    // A sign-in the provider (or whoever forged the redirect) says failed:
    // recorded in fixed words, nothing of the redirect's text.
    let failed =
        dev.client
            .get(dev.url(
                "/auth/callback?error=access_denied&error_description=planted-words-in-the-log",
            ))
            .send()
            .await
            .expect("send");
    assert_eq!(failed.status(), 400);
    let form = dev
        .client
        .post(dev.url("/graphql"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=%7Bviewer%7Bsubject%7D%7D")
        .send()
        .await
        .expect("send");
    assert_eq!(form.status(), 403);
    let host = dev
        .client
        .get(dev.url("/graphql?query=%7Bviewer%7Bsubject%7D%7D"))
        .header("host", "backplane.evil.example")
        .send()
        .await
        .expect("send");
    assert_eq!(host.status(), 403);
    dev.stop().await;
    let events = refusals(&dev).await;
    let (found, total) = of_reason(&events, "cross_site");
    assert_eq!((found.len(), total), (1, 1), "{events:#?}");
    let (found, total) = of_reason(&events, "foreign_host");
    assert_eq!((found.len(), total), (1, 1), "{events:#?}");
    assert_eq!(found[0].0.operation_name.as_deref(), Some("GET /graphql"));
    let (found, total) = of_reason(&events, "sign_in_refused");
    assert_eq!((found.len(), total), (1, 1), "{events:#?}");
    assert_eq!(
        found[0].0.operation_name.as_deref(),
        Some("GET /auth/callback")
    );
    assert_eq!(
        crate::audit::events_containing(&dev, "planted-words").await,
        0
    );
}
on_both_databases!(every_refusal_before_the_gate_is_recorded);

/// Refusals are recorded as they come, not only at shutdown: the first of
/// a fold at once, the rest when its interval ends; the events take their
/// place in the chain, which still verifies.
async fn folds_are_written_as_their_intervals_end(backend: Backend) {
    let app = spawn_app_configured(backend, Mode::Serve, |c| {
        c.audit_fold = std::time::Duration::from_secs(1);
    })
    .await;
    let url = app.url("/graphql");
    for _ in 0..5 {
        let status = app
            .client
            .post(&url)
            .json(&json!({ "query": "{ viewer { subject } }" }))
            .send()
            .await
            .expect("send")
            .status();
        assert_eq!(status, 401);
    }
    let mut total = 0;
    for _ in 0..100 {
        let events = refusals(&app).await;
        total = of_reason(&events, "missing_token").1;
        if total == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        total, 5,
        "the five refusals are recorded within the interval"
    );
    let (ok, text) = crate::audit::verify_cli(app.database_url());
    assert!(ok, "{text}");
}
on_both_databases!(folds_are_written_as_their_intervals_end);
