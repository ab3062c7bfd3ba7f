//! Only allowed networks reach Backplane; forwarded addresses count only from
//! trusted proxies.

use backplane::config::Mode;
use serde_json::json;

use crate::helpers::{Backend, spawn_app_configured};

fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter().map(|n| n.parse().expect("cidr")).collect()
}

#[tokio::test]
async fn peers_outside_the_allowed_networks_get_403_before_anything_is_parsed() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        c.network.allowed = nets(&["10.0.0.0/8"]);
    })
    .await;
    let token = app.issuer.token("admin-1", &["admin"]);
    for body in ["{ not json", r#"{"query":"{ viewer { subject } }"}"#] {
        let resp = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 403, "{body}");
    }
    // Without a trusted proxy, a forwarded address is not believed.
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "10.1.2.3")
        .json(&json!({ "query": "{ viewer { subject } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 403);
    let health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 403);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_decides() {
    let app = spawn_app_configured(Backend::Sqlite, Mode::Serve, |c| {
        c.network.allowed = nets(&["10.0.0.0/8"]);
        c.network.trusted_proxies = nets(&["127.0.0.1/32"]);
    })
    .await;
    let token = app.issuer.token("admin-1", &["admin"]);
    for (forwarded, expected) in [
        (Some("10.1.2.3"), 200),
        (Some("8.8.8.8"), 403),
        (Some("10.1.2.3, 8.8.8.8"), 403),
        (None, 403),
    ] {
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": "{ viewer { subject } }" }));
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), expected, "{forwarded:?}");
    }
}
