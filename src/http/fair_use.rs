//! How the gate's refusals that HTTP has a word for are written: a missing
//! step-up (401 with RFC 9470's challenge) and a caller over its budget per
//! minute (429 with `Retry-After` and the IETF `RateLimit` fields).

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::audit::refusals::{Refused, reason};
use crate::graphql::budget::Exhausted;

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): the quota and
/// its window.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: what remains of the quota, and when it resets.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Makes `response` a step-up challenge: 401 with `WWW-Authenticate`.
pub fn step_up(response: &mut Response, challenge: &str) {
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
}

/// Makes `response` a refusal over budget: 429, `Retry-After`, `RateLimit`,
/// `RateLimit-Policy`, and the mark that has the edge record it in the
/// audit log (folded: a script hammering past its budget writes one event a
/// minute, not one per request).
pub fn over_budget(response: &mut Response, exhausted: &Exhausted) {
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from(exhausted.retry_after),
    );
    for (name, value) in [
        (RATELIMIT_POLICY, exhausted.standing.policy_field()),
        (RATELIMIT, exhausted.standing.field()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response.extensions_mut().insert(Refused::new(
        reason::OVER_BUDGET,
        "over the caller's cost budget per minute",
    ));
}
