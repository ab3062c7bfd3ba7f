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

/// Sends `token` and asserts a 401 whose message contains `reason`, with a
/// challenge, no data, and no echo of the token.
async fn assert_refused(app: &crate::helpers::TestApp, name: &str, token: &str, reason: &str) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": "{ organizations { nodes { id name } } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401, "{name}");
    let challenge = crate::helpers::www_authenticate(&resp);
    assert!(challenge.starts_with("Bearer"), "{name}: {challenge}");
    assert!(challenge.contains("invalid_token"), "{name}: {challenge}");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert!(body.get("data").is_none(), "{name}: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(reason),
        "{name}: {message:?} should say {reason:?}"
    );
    assert!(
        !body.to_string().contains(token),
        "{name}: the token is echoed"
    );
    assert!(
        !challenge.contains(token),
        "{name}: the token is in the challenge"
    );
}

#[tokio::test]
async fn forged_and_misused_tokens_are_refused_and_say_why() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let app = spawn_app(Backend::Sqlite).await;
    let claims = app.issuer.claims("mallory", &["admin"]);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());

    // alg: none, with and without a signature.
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    assert_refused(&app, "alg none", &none, "algorithm").await;

    // HS256 keyed with the issuer's public key (the classic confusion attack).
    let public_pem = {
        use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
        let key =
            rsa::RsaPrivateKey::from_pkcs8_pem(&crate::helpers::key_pem("rsa1")).expect("key");
        key.to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem")
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("key-1".into());
    let hmac = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .expect("sign");
    assert_refused(&app, "HMAC with the public key", &hmac, "algorithm").await;

    // Signed by a key the issuer does not publish, under a made-up kid.
    let unknown = app.issuer.sign_with("made-up", "rsa2", claims.clone());
    assert_refused(&app, "unknown key", &unknown, "unknown key").await;

    // Signed by another key under the issuer's kid: a bad signature.
    let forged = app.issuer.sign_with("key-1", "rsa2", claims.clone());
    assert_refused(&app, "bad signature", &forged, "signature").await;

    // Not valid yet (beyond the leeway).
    let mut early = claims.clone();
    early["nbf"] = json!(chrono::Utc::now().timestamp() + 600);
    let early = app.issuer.sign(early);
    assert_refused(&app, "not yet valid", &early, "not valid yet").await;

    // Expired, wrong audience, wrong issuer: each says which.
    let mut expired = claims.clone();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 600);
    assert_refused(&app, "expired", &app.issuer.sign(expired), "expired").await;
    let mut audience = claims.clone();
    audience["aud"] = json!("another-service");
    assert_refused(&app, "audience", &app.issuer.sign(audience), "audience").await;
    let mut issuer = claims.clone();
    issuer["iss"] = json!("https://login.evil.example");
    assert_refused(&app, "issuer", &app.issuer.sign(issuer), "issuer").await;

    // A customer API key, and a JWT with its payload swapped.
    assert_refused(
        &app,
        "customer API key",
        "sk_live_51Habcdefghijklmnopqrstuvwxyz",
        "not a JWT",
    )
    .await;
    let good = app.issuer.token("alice", &["support"]);
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[1] = &payload;
    let tampered = parts.join(".");
    assert_refused(&app, "tampered payload", &tampered, "signature").await;
}

#[tokio::test]
async fn keys_rotate_without_a_restart_and_unknown_kids_do_not_hammer_the_issuer() {
    let app = spawn_app(Backend::Sqlite).await;
    let old = app.issuer.token("alice", &["support"]);
    let (status, _) = app
        .graphql_as(Some(&old), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(status, 200);

    // The issuer rotates: key-2 signs, key-1 is withdrawn.
    app.issuer.publish(&[("key-2", "rsa2")]);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let new = app.issuer.token("alice", &["support"]);
    let (status, body) = app
        .graphql_as(Some(&new), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(status, 200, "a token of the new key: {body}");
    let (status, _) = app
        .graphql_as(Some(&old), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(status, 401, "a token of the withdrawn key");

    // A flood of made-up key ids: at most one fetch per refresh interval
    // (200 ms in tests, 10 s by default).
    let before = app.issuer.jwks_fetches();
    let started = std::time::Instant::now();
    let claims = app.issuer.claims("mallory", &["admin"]);
    for i in 0..40 {
        let token = app
            .issuer
            .sign_with(&format!("kid-{i}"), "rsa1", claims.clone());
        let (status, _) = app
            .graphql_as(Some(&token), "{ viewer { subject } }", json!({}))
            .await;
        assert_eq!(status, 401);
    }
    let fetched = app.issuer.jwks_fetches() - before;
    let allowed = (started.elapsed().as_millis() / 200) as usize + 1;
    assert!(
        fetched <= allowed,
        "40 unknown kids caused {fetched} key-set fetches in {:?}",
        started.elapsed()
    );
}
