//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// Alive: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database answers and, when configured, the identity provider's keys
/// are loaded. 503 otherwise, with what is missing.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    // Its own short limit: a database that does not answer is "down" now, not
    // after the pool's whole connection wait.
    let database = tokio::time::timeout(std::time::Duration::from_secs(1), state.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let identity = state.verifier.as_ref().is_none_or(|v| v.is_ready());
    let status = if database && identity {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if status == StatusCode::OK { "ready" } else { "unavailable" },
            "database": if database { "up" } else { "down" },
            "identityProvider": if state.verifier.is_none() { "not configured" } else if identity { "up" } else { "down" },
        })),
    )
}
