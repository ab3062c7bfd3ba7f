//! `/playground`: GraphiQL, served from assets embedded at build time (see
//! `playground/README.md`), with no request to any other host.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

/// The page's policy: everything from this server, nothing inline but styles.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
form-action 'self'; base-uri 'none'";

/// The page.
const INDEX: &[u8] =
    b"<!doctype html><title>Backplane</title><p>The playground assets are being prepared.</p>";

/// The embedded assets: name, media type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/playground", get(index))
        .route("/playground/assets/{file}", get(asset))
}

fn with_headers(mut response: Response, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

async fn index() -> Response {
    with_headers(
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response(),
        "no-cache",
    )
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, media, bytes)) => with_headers(
            ([(header::CONTENT_TYPE, *media)], *bytes).into_response(),
            "public, max-age=3600",
        ),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
