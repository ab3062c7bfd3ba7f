//! What operators need from every request: a request id (the client's
//! `x-request-id`, or the trace id of its W3C `traceparent`, or a new one), a
//! caught panic answered as a 500 that names that id, and metrics by route at
//! `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;

use super::error::HttpError;
use super::{AppState, REQUEST_ID};
use crate::graphql::error::Code;

/// A request id we accept from a client: short, and only characters that are
/// safe in logs and headers.
fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// The trace id of a `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`).
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (_version, trace, _parent) = (parts.next()?, parts.next()?, parts.next()?);
    (trace.len() == 32
        && trace.chars().all(|c| c.is_ascii_hexdigit())
        && trace != "00000000000000000000000000000000")
        .then_some(trace)
}

/// Sets `x-request-id` on the request (kept, derived from `traceparent`, or
/// made) and echoes it on the response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map(str::to_owned);
    let id = given
        .or_else(|| {
            req.headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .and_then(trace_id)
                .map(str::to_owned)
        })
        .unwrap_or_else(uuid_v4);
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    req.headers_mut().insert(REQUEST_ID, value.clone());
    let mut response = next.run(req).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

fn uuid_v4() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A panic while handling a request becomes a 500 that names the request id
/// (the log line with the panic carries it too); the server goes on.
pub async fn catch_panic(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(request_id = %id, panic = %what, "request handler panicked");
            metrics::counter!("backplane_http_panics_total").increment(1);
            HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::Internal,
                format!("internal error; request id {id}"),
            )
            .with_request_id(id)
            .into_response()
        }
    }
}

/// Requests by route, method and status, and their latency.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("backplane_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("backplane_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `/metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (open, idle) = state.store.pool_stats();
    metrics::gauge!("backplane_db_pool_connections", "state" => "open").set(open as f64);
    metrics::gauge!("backplane_db_pool_connections", "state" => "idle").set(idle as f64);
    if let Some(audit) = &state.audit {
        metrics::gauge!("backplane_audit_queue_depth").set(audit.queue_depth() as f64);
    }
    metrics::gauge!("backplane_sql_statements_sent").set(state.store.statements_sent() as f64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::handle().render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[test]
    fn request_ids_from_clients_and_traces() {
        assert!(acceptable("abc-123_x.y:z"));
        assert!(!acceptable("with space"));
        assert!(!acceptable(&"a".repeat(129)));
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id("00-zz-00f067aa0ba902b7-01"), None);
        assert_eq!(uuid_v4().len(), 36);
    }

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panic_is_a_500_with_the_request_id() {
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(axum::middleware::from_fn(catch_panic))
            .layer(axum::middleware::from_fn(request_id));
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/boom")
                    .header("x-request-id", "req-42")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[REQUEST_ID], "req-42");
        let body = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["errors"][0]["extensions"]["requestId"], "req-42");
        assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
    }
}
