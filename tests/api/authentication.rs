//! Every request to /graphql needs a valid bearer token from the configured issuer.

use serde_json::json;

use crate::helpers::{AUDIENCE, Backend, spawn_app};

#[tokio::test]
async fn requests_without_a_valid_token_get_401_and_no_data() {
    let app = spawn_app(Backend::Sqlite).await;
    let now = chrono::Utc::now().timestamp();
    let expired = app.issuer.sign(json!({
        "iss": app.issuer.url, "aud": AUDIENCE, "sub": "x", "roles": ["admin"],
        "iat": now - 7200, "exp": now - 3600,
    }));
    let wrong_audience = app.issuer.sign(json!({
        "iss": app.issuer.url, "aud": "someone-else", "sub": "x", "roles": ["admin"],
        "iat": now, "exp": now + 3600,
    }));
    let wrong_issuer = app.issuer.sign(json!({
        "iss": "https://evil.example", "aud": AUDIENCE, "sub": "x", "roles": ["admin"],
        "iat": now, "exp": now + 3600,
    }));
    let good = app.issuer.token("admin-1", &["admin"]);
    let mut tampered_parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    tampered_parts[1] = tampered_parts[1].chars().rev().collect();
    let tampered = tampered_parts.join(".");

    for (name, token) in [
        ("none", None),
        ("customer api key", Some("sk_live_51Habcdefghijklmnop")),
        ("garbage", Some("not.a.jwt")),
        ("expired", Some(expired.as_str())),
        ("wrong audience", Some(wrong_audience.as_str())),
        ("wrong issuer", Some(wrong_issuer.as_str())),
        ("tampered", Some(tampered.as_str())),
    ] {
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ organizations { nodes { id name } } }" }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), 401, "{name}");
        assert!(
            resp.headers().get("www-authenticate").is_some(),
            "{name}: no WWW-Authenticate"
        );
        let body: serde_json::Value = resp.json().await.expect("json");
        assert!(body.get("data").is_none(), "{name}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{name}"
        );
        if let Some(token) = token {
            assert!(
                !body.to_string().contains(token),
                "{name}: the token is echoed"
            );
        }
    }

    let (status, body) = app
        .graphql_as(Some(&good), "{ viewer { subject roles } }", json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["viewer"],
        json!({ "subject": "admin-1", "roles": ["admin"] })
    );
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    let health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let mut ready = 0;
    for _ in 0..50 {
        ready = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status()
            .as_u16();
        if ready == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 200);
}
