//! Authentication at the edge: a bearer token becomes a `Principal` in the request
//! extensions, or the request ends here with 401. An invalid token is an error,
//! never an anonymous request.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::config::Mode;
use crate::identity::{IdentityError, Principal};

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().map(str::to_owned));
    match principal(&state, header).await {
        Ok(principal) => {
            state.directory.seen(&state.store, &principal).await;
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(err) => refuse(&err),
    }
}

async fn principal(
    state: &AppState,
    header: Option<Result<String, axum::http::header::ToStrError>>,
) -> Result<Principal, IdentityError> {
    let Some(header) = header else {
        return match state.mode {
            Mode::Dev => Ok(Principal::demo_admin()),
            Mode::Serve => Err(IdentityError::MissingToken),
        };
    };
    let value = header.map_err(|_| IdentityError::NotBearer)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(IdentityError::NotBearer)?;
    let verifier = state
        .verifier
        .as_ref()
        .ok_or(IdentityError::NotConfigured)?;
    verifier.verify(token).await
}

/// 401 with `WWW-Authenticate` (RFC 6750), or 503 when the issuer cannot be reached
/// to check the token. The body is a GraphQL error; the token is never echoed.
fn refuse(err: &IdentityError) -> Response {
    let (status, code) = match err {
        IdentityError::IssuerUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        _ => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
    };
    let message = err.to_string();
    tracing::info!(reason = %message, "request refused: not authenticated");
    let challenge = match err {
        IdentityError::MissingToken => "Bearer realm=\"backplane\"".to_owned(),
        _ => format!(
            "Bearer realm=\"backplane\", error=\"invalid_token\", error_description=\"{}\"",
            message.replace('"', "'")
        ),
    };
    let mut response = (
        status,
        axum::Json(json!({
            "errors": [{ "message": message, "extensions": { "code": code } }]
        })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED
        && let Ok(value) = HeaderValue::from_str(&challenge)
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
