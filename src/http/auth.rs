//! Authentication at the edge: a bearer token becomes a `Principal` in the request
//! extensions, or the request ends here with 401. An invalid token is an error,
//! never an anonymous request.
//!
//! What the browser adds by itself — a session cookie, or in `dev` nothing at
//! all, which acts as the demo administrator — is taken from Backplane's own
//! pages only (`session::cross_site_refusal`): a page of another site cannot
//! act with it.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::HttpError;
use super::{AppState, session};
use crate::audit::refusals::{self, Refused};
use crate::config::Mode;
use crate::graphql::error::Code;
use crate::identity::{IdentityError, Principal};

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().map(str::to_owned));
    let found = match header {
        // A bearer token wins over a cookie: developers bring their own.
        Some(header) => bearer(&state, header).await,
        None => match session::read(&state.sessions, req.headers()) {
            session::CookieSession::Active(principal) => {
                if let Some(reason) = session::cross_site_refusal(
                    &state.sessions,
                    session::Ambient::SessionCookie,
                    req.method(),
                    req.headers(),
                ) {
                    tracing::warn!(reason, "cookie request refused: not from our own pages");
                    // The cookie's seal vouches for whose session it is.
                    return with_subject(forbidden(reason), &principal.subject);
                }
                Ok(*principal)
            }
            session::CookieSession::Ended => Err((IdentityError::SessionEnded, None)),
            session::CookieSession::None => match state.mode {
                Mode::Dev => {
                    if let Some(reason) = session::cross_site_refusal(
                        &state.sessions,
                        session::Ambient::DevWithoutToken,
                        req.method(),
                        req.headers(),
                    ) {
                        tracing::warn!(
                            reason,
                            "token-less dev request refused: not from our own pages"
                        );
                        return forbidden(reason);
                    }
                    Ok(Principal::demo_admin())
                }
                Mode::Serve => Err((IdentityError::MissingToken, None)),
            },
        },
    };
    match found {
        Ok(mut principal) => {
            // What the person may not use until they step up, as of now.
            principal.step_up = state
                .step_up
                .standing(&principal, chrono::Utc::now().timestamp())
                .pending;
            state.directory.seen(&state.store, &principal).await;
            let subject = principal.subject.clone();
            req.extensions_mut().insert(principal);
            // A refusal further in (a request that is not GraphQL, an
            // export too many) is recorded with who sent it.
            with_subject(next.run(req).await, &subject)
        }
        Err((err, subject)) => {
            let mut response = refuse(&err);
            if let Some(refused) = response.extensions_mut().get_mut::<Refused>() {
                refused.subject = subject;
            }
            response
        }
    }
}

/// `response`'s refusal, if it is one, names `subject`, unless it already
/// names someone.
fn with_subject(mut response: Response, subject: &str) -> Response {
    if let Some(refused) = response.extensions_mut().get_mut::<Refused>()
        && refused.subject.is_none()
    {
        refused.subject = Some(subject.to_owned());
    }
    response
}

/// The principal of a bearer token, or why not, with its subject when the
/// token's signature held (see `TokenVerifier::signed_subject`).
async fn bearer(
    state: &AppState,
    header: Result<String, axum::http::header::ToStrError>,
) -> Result<Principal, (IdentityError, Option<String>)> {
    let value = header.map_err(|_| (IdentityError::NotBearer, None))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or((IdentityError::NotBearer, None))?;
    let verifier = state
        .verifier
        .as_ref()
        .ok_or((IdentityError::NotConfigured, None))?;
    verifier.verify(token).await.map_err(|err| {
        let subject = verifier.signed_subject(token, &err);
        (err, subject)
    })
}

/// 403 with a GraphQL error `FORBIDDEN` saying why: a cross-site request.
pub(super) fn forbidden(reason: &str) -> Response {
    HttpError::new(StatusCode::FORBIDDEN, Code::Forbidden, reason)
        .refusal(refusals::reason::CROSS_SITE)
        .into_response()
}

/// 401 with `WWW-Authenticate` (RFC 6750), or 503 when the issuer cannot be reached
/// to check the token. The body is a GraphQL error; the token is never echoed.
fn refuse(err: &IdentityError) -> Response {
    let (status, code) = match err {
        IdentityError::IssuerUnavailable => (StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable),
        _ => (StatusCode::UNAUTHORIZED, Code::Unauthenticated),
    };
    let message = err.to_string();
    tracing::info!(reason = %message, "request refused: not authenticated");
    let challenge = match err {
        IdentityError::MissingToken | IdentityError::SessionEnded => {
            "Bearer realm=\"backplane\"".to_owned()
        }
        _ => format!(
            "Bearer realm=\"backplane\", error=\"invalid_token\", error_description=\"{}\"",
            message.replace('"', "'")
        ),
    };
    let mut response = HttpError::new(status, code, message)
        .refusal(err.reason())
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
