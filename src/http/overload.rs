//! The bound on requests in flight (`BACKPLANE_MAX_CONCURRENT_REQUESTS`).
//!
//! A request past the bound is answered 503 with `Retry-After: 1` at once:
//! nothing queues, so a burst costs memory for the requests being served and
//! no more, and a client learns straight away to come back.
//!
//! The probes are not counted: `/healthz` and `/readyz` must tell "alive but
//! busy" from "dead" while the server is at its bound, and they cost next to
//! nothing (readyz pings the database once).
//!
//! This is the effect of tower's `ConcurrencyLimitLayer` behind a
//! `LoadShedLayer`, written as a `try_acquire` on one semaphore: one place
//! that says what is counted and what a refusal looks like, with no
//! `poll_ready` subtleties (axum clones a route's service for every request).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::error::HttpError;
use crate::graphql::error::Code;

/// Paths answered whatever the load.
pub const UNCOUNTED: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Requests in flight.
#[derive(Clone, Debug)]
pub struct InFlight {
    /// One permit per request being served, taken before the handler runs and
    /// given back when its response (headers and buffered body) is ready, or
    /// when the request is dropped (time limit, client gone). Never awaited:
    /// no permit means 503 now, so there is no queue to grow.
    permits: Arc<Semaphore>,
}

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }
}

/// Serves the request if a permit is free (or its path is uncounted), else
/// answers 503 with `Retry-After: 1` (a GraphQL-shaped error body, so clients
/// that only read `errors` still see why).
pub async fn bound(State(in_flight): State<InFlight>, req: Request, next: Next) -> Response {
    if UNCOUNTED.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let Ok(_permit) = in_flight.permits.clone().try_acquire_owned() else {
        // Logged at debug: under overload, a line per refused request would
        // add to the load it reports. The trace layer's span records the 503.
        tracing::debug!("request refused: too many requests in flight");
        let mut response = HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::LimitExceeded,
            "the server is busy; retry in a second",
        )
        .refusal(crate::audit::refusals::reason::BUSY)
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    next.run(req).await
}
