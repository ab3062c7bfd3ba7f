//! The Router and its layers. Layers added last run first, so read the `.layer`
//! calls bottom-up for the request path: request id → trace → allowed networks
//! (which records every refusal of the layers within it in the audit log)
//! → in `dev`, loopback `Host` only → time limit → body limit → requests in flight (all but the health routes)
//! → route (authentication on `/graphql`). `serve` feeds it connections (TLS,
//! HTTP/1 timeouts, graceful shutdown).

mod auth;
pub mod error;
mod export;
mod fair_use;
pub mod graphql;
mod health;
mod loopback;
pub mod network;
mod ops;
mod overload;
mod playground;
pub mod serve;
pub mod session;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::middleware;
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::{Config, Mode};
use crate::graphql::BackplaneSchema;
use crate::identity::TokenVerifier;
use crate::store::Store;

/// What every handler may read: one shared value, so that the extractors and
/// layers that take it per request clone one pointer (cloning every field's
/// `Arc` cost a request a few percent of its CPU; see bench/analysis.md).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    pub schema: BackplaneSchema,
    /// What every operation passes before the schema executes it.
    pub gate: Arc<crate::graphql::gate::Gate>,
    pub store: Store,
    pub verifier: Option<Arc<dyn TokenVerifier>>,
    pub mode: Mode,
    pub directory: Arc<crate::identity::directory::StaffDirectory>,
    /// Most operations one batch request (a JSON array) may carry.
    pub max_batch: usize,
    /// How browser sessions are sealed.
    pub sessions: session::Sessions,
    /// Browser sign-in through the identity provider, when configured.
    pub sign_in: session::SignIn,
    /// The audit writer, for its queue depth in `/metrics`.
    pub audit: Option<crate::audit::AuditWriter>,
    /// The exports running.
    pub exports: Arc<crate::export::Slots>,
    /// Whether a CSV export may read plain rows (`export::rows`); off with
    /// compiled reads, so that every export goes through the executor.
    pub plain_exports: bool,
    /// The cursors of this server's lists (an export may start after one).
    pub cursors: crate::graphql::pagination::Cursors,
    /// Requests refused before the gate, on their way to the audit log.
    pub refusals: Arc<crate::audit::refusals::Refusals>,
    /// Which rights need a recent strong sign-in, and what counts as one.
    pub step_up: Arc<crate::identity::step_up::StepUpSettings>,
}

/// The request id header, set when the client sent none, echoed in the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState, config: &Config) -> Router {
    let refusals = state.refusals.clone();
    let graphql_routes = Router::new()
        .route("/graphql", get(graphql::handle).post(graphql::handle))
        .route("/export", axum::routing::post(export::handle))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));

    let mut auth_routes = Router::new()
        .route("/auth/login", get(session::login))
        .route("/auth/callback", get(session::callback))
        .route("/auth/logout", get(session::logout))
        .route("/auth/session", get(session::session));
    // The demo sign-in exists in `dev` only; `serve` has no such path at all.
    if state.mode == Mode::Dev {
        auth_routes = auth_routes.route(
            "/auth/dev",
            get(session::dev_page).post(session::dev_sign_in),
        );
    }

    Router::new()
        .merge(graphql_routes)
        .merge(auth_routes)
        .merge(playground::routes())
        .route("/metrics", get(ops::metrics))
        .route_layer(middleware::from_fn(ops::track))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        // Innermost of these layers: a refused request is not authenticated
        // first, a refused peer (network check) takes no permit, and a
        // timed-out request gives its permit back. The probes are not counted
        // (`overload::UNCOUNTED`).
        .layer(middleware::from_fn_with_state(
            overload::InFlight::new(config.max_concurrent_requests),
            overload::bound,
        ))
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            config.mode,
            loopback::dev_hosts_only,
        ))
        .layer(middleware::from_fn_with_state(
            network::Edge {
                policy: Arc::new(config.network.clone()),
                refusals: refusals.clone(),
            },
            network::enforce,
        ))
        .layer(middleware::from_fn(ops::catch_panic))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        // Outermost: every later layer and every log line sees the id.
        .layer(middleware::from_fn(ops::request_id))
}
