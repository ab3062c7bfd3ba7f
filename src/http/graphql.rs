//! `/graphql` and `/playground`.

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::Extension;
use axum::extract::State;
use axum::response::{Html, IntoResponse};

use super::AppState;
use super::network::ClientAddr;
use crate::audit::RequestIdentity;
use crate::graphql::request_data;
use crate::identity::Principal;
use axum::http::HeaderMap;

/// Executes a GraphQL request (or a batch) as the authenticated principal.
pub async fn handle(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    request: GraphQLBatchRequest,
) -> axum::response::Response {
    let request = request.into_inner();
    if let async_graphql::BatchRequest::Batch(operations) = &request
        && operations.len() > state.max_batch
    {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "errors": [{
                    "message": format!(
                        "a batch may carry at most {} operations; this one has {}",
                        state.max_batch,
                        operations.len()
                    ),
                    "extensions": { "code": "LIMIT_EXCEEDED" }
                }]
            })),
        )
            .into_response();
    }
    let identity = RequestIdentity {
        subject: principal.subject.clone(),
        roles: principal
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(","),
        client_addr: client.map(|Extension(ClientAddr(ip))| ip.to_string()),
        request_id: headers
            .get(super::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let (principal, loader) = request_data(&state.store, principal);
    let request = request.data(principal).data(loader).data(identity);
    // Unconstrained: tokio's cooperative budget would make a ready future return
    // `Pending` at random points of a large level, and the batcher would see the
    // level quiet before every sibling had registered its key (see
    // `store::batch`). The task still yields whenever it waits on I/O.
    GraphQLResponse::from(tokio::task::unconstrained(state.schema.execute_batch(request)).await)
        .into_response()
}

/// GraphiQL.
pub async fn playground() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}
