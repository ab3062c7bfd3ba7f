//! `/playground`: GraphiQL, served from assets embedded at build time (see
//! `playground/README.md`), with no request to any other host.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::AppState;

/// The page's policy: everything from this server, nothing inline but styles.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
form-action 'self'; base-uri 'none'";

/// The page.
const INDEX: &[u8] = include_bytes!("../../playground/index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The embedded assets: name, media type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "react.production.min.js",
        JS,
        include_bytes!("../../playground/assets/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        JS,
        include_bytes!("../../playground/assets/react-dom.production.min.js"),
    ),
    (
        "graphiql.min.js",
        JS,
        include_bytes!("../../playground/assets/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        CSS,
        include_bytes!("../../playground/assets/graphiql.min.css"),
    ),
    (
        "playground.js",
        JS,
        include_bytes!("../../playground/assets/playground.js"),
    ),
    (
        "playground.css",
        CSS,
        include_bytes!("../../playground/assets/playground.css"),
    ),
    (
        "examples.json",
        "application/json",
        include_bytes!("../../playground/assets/examples.json"),
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/playground", get(index))
        .route("/playground/assets/{file}", get(asset))
}

fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    // Revalidate every time (cheap: the ETag answers 304), so a new page never
    // runs with an old script after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// A file, or 304 when the browser holds this very version.
fn serve(request: &HeaderMap, media: &'static str, bytes: &'static [u8]) -> Response {
    let tag = format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..20]);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, media)], bytes).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    with_headers(response)
}

async fn index(headers: HeaderMap) -> Response {
    serve(&headers, "text/html; charset=utf-8", INDEX)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, media, bytes)) => serve(&headers, media, bytes),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
