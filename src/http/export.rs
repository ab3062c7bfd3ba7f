//! `POST /export`: every node of one root list, streamed as CSV or NDJSON,
//! behind the same authentication, networks, limits and visibility as
//! `/graphql`, with one audit event per export.
//!
//! The document is admitted as a query is; then the plan (`export`) turns it
//! into the query of one keyset page, which runs page after page (compiled
//! on PostgreSQL) while the rows are written. A task writes the pages into a
//! channel of one page that the response body drains: a client that stops
//! reading stops the pages, and one that disconnects ends the task at its
//! next page. A failure midway ends the body with an error, so the client
//! sees a cut transfer, never a complete-looking file.
//!
//! The export starts only once its audit event has a place in the writer's
//! queue; the event, written when the export ends, says which fields it read,
//! the list's arguments, the rows and bytes sent, and whether it completed.

use std::sync::Arc;

use async_graphql::{Request as GqlRequest, ServerError, Variables};
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::HttpError;
use super::network::ClientAddr;
use crate::audit::{OperationAudit, Outcome};
use crate::export::{
    self, AFTER_VARIABLE, FIRST_VARIABLE, Format, LIST_KEY, PAGE_SIZE, Plan, Start,
};
use crate::graphql::error::Code;
use crate::identity::{Principal, PrincipalKind};

/// The answer to a request refused before the export started.
fn refused(status: StatusCode, code: Code, message: impl Into<String>) -> Response {
    HttpError::new(status, code, message).into_response()
}

/// GraphQL errors (the gate's) as the response to a refused export.
fn errors(errors: Vec<ServerError>) -> Response {
    let body = serde_json::to_vec(&async_graphql::Response::from_errors(errors))
        .unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (StatusCode::BAD_REQUEST, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// What happened to an export, for its audit event.
struct Progress {
    rows: u64,
    bytes: u64,
    /// Why it stopped before the end, if it did.
    cut: Option<String>,
}

pub async fn handle(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let Some(format) = Format::negotiate(accept) else {
        return refused(
            StatusCode::NOT_ACCEPTABLE,
            Code::NotAcceptable,
            "an export is text/csv or application/x-ndjson: say which in Accept",
        );
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !super::graphql::is_json_utf8(content_type) {
        return refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::UnsupportedMediaType,
            "send the export's GraphQL request as application/json (UTF-8)",
        );
    }
    let request = match serde_json::from_slice::<Value>(&body)
        .map_err(|_| "the body is not valid JSON")
        .and_then(super::graphql::request_from_json)
    {
        Ok(request) => request,
        Err(message) => return refused(StatusCode::BAD_REQUEST, Code::BadRequest, message),
    };
    let slot = match state.exports.start(&principal.subject) {
        Ok(slot) => slot,
        Err(message) => {
            let mut response = refused(StatusCode::TOO_MANY_REQUESTS, Code::LimitExceeded, message);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
    };
    let request_id = headers
        .get(super::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let identity = super::graphql::identity_of(&principal, client, request_id);
    let operation = Arc::new(OperationAudit::begin(identity, &request));
    // The export's event has its place before anything is read.
    let reserved = match state.gate.audit().map(|w| w.reserve()) {
        Some(Ok(reserved)) => Some(reserved),
        Some(Err(_)) => {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                "the audit log cannot record an export now; try again shortly",
            );
        }
        None => None,
    };
    let record = move |operation: &OperationAudit, outcome: Outcome, details: Value| {
        let event = operation.event(outcome, Some(details));
        async move {
            if let Some(reserved) = reserved
                && let Err(err) = reserved.record(event).await
            {
                tracing::error!(error = %err, "an export's audit event could not be written");
            }
        }
    };

    let (principal, loader) = crate::graphql::request_data(&state.store, principal);
    let mut request = request.data(principal.clone()).data(loader.clone());
    let wanted = request.operation_name.clone();
    let variables = request.variables.clone();
    let (document, cost) = match state
        .gate
        .admit_export(&state.schema, &mut request, &principal, &operation)
        .await
    {
        Ok(admitted) => admitted,
        Err(errs) => {
            let outcome = if operation_denied(&errs) {
                Outcome::Denied
            } else {
                Outcome::Error
            };
            record(
                &operation,
                outcome,
                json!({ "export": { "refused": first_message(&errs) } }),
            )
            .await;
            return errors(errs);
        }
    };
    let plan = match export::plan(&document, wanted.as_deref(), format) {
        Ok(plan) => plan,
        Err(refusal) => {
            record(
                &operation,
                Outcome::Error,
                json!({ "export": { "refused": refusal.message } }),
            )
            .await;
            let error = async_graphql::Error::new(refusal.message.clone());
            let mut error = error.into_server_error(async_graphql::Pos::default());
            error.locations.clear();
            let ext = error.extensions.get_or_insert_with(Default::default);
            ext.set("code", Code::BadUserInput.as_str());
            ext.set("field", refusal.field);
            return errors(vec![error]);
        }
    };
    let after = match &plan.after {
        Start::Beginning => None,
        Start::Cursor(c) => Some(c.clone()),
        Start::Variable(name) => match variables.get(name.as_str()) {
            Some(async_graphql::Value::String(c)) => Some(c.clone()),
            _ => None,
        },
    };
    let max_rows = match principal.kind {
        PrincipalKind::Service => state.exports.settings().max_rows_services,
        _ => state.exports.settings().max_rows_people,
    };
    let pages = Pages {
        variables,
        principal: principal.clone(),
        loader,
        operation: operation.clone(),
        cost,
    };
    // The first page, with the list's size: over the limit, nothing starts.
    let first = match pages.run(&state, &plan.counted_query, after).await {
        Ok(data) => data,
        Err(errs) => {
            record(
                &operation,
                Outcome::Error,
                json!({ "export": { "refused": first_message(&errs) } }),
            )
            .await;
            return errors(errs);
        }
    };
    let total = first[LIST_KEY]["totalCount"].as_u64().unwrap_or(0);
    if total > max_rows {
        let message = format!(
            "the list has {total} rows; an export holds at most {max_rows} (BACKPLANE_EXPORT_MAX_ROWS): narrow the filter"
        );
        record(
            &operation,
            Outcome::Error,
            json!({ "export": { "refused": message, "list": plan.list } }),
        )
        .await;
        return refused(StatusCode::BAD_REQUEST, Code::LimitExceeded, message);
    }

    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let file = format!(
        "{}-{}.{}",
        plan.list,
        chrono::Utc::now().format("%Y-%m-%d"),
        format.extension()
    );
    let task_state = state.clone();
    tokio::spawn(tokio::task::unconstrained(async move {
        let _slot = slot;
        let mut progress = Progress {
            rows: 0,
            bytes: 0,
            cut: None,
        };
        let mut data = first;
        let mut header_written = false;
        loop {
            let mut chunk = String::new();
            if format == Format::Csv && !header_written {
                export::csv::push_header(
                    &mut chunk,
                    plan.columns
                        .iter()
                        .map(|c| c.join("."))
                        .collect::<Vec<_>>()
                        .iter()
                        .map(String::as_str),
                );
                header_written = true;
            }
            let list = &data[LIST_KEY];
            let nodes = list["nodes"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut over = false;
            for node in nodes {
                if progress.rows >= max_rows {
                    over = true;
                    break;
                }
                write_node(&mut chunk, format, &plan, node);
                progress.rows += 1;
            }
            progress.bytes += chunk.len() as u64;
            if sender.send(Ok(Bytes::from(chunk))).await.is_err() {
                progress.cut = Some("the client went away".into());
                break;
            }
            if over {
                progress.cut = Some(format!("the row limit ({max_rows}) was reached"));
                let _ = sender.send(Err(std::io::Error::other("row limit"))).await;
                break;
            }
            if list["pageInfo"]["hasNextPage"] != Value::Bool(true) {
                break;
            }
            let after = list["pageInfo"]["endCursor"].as_str().map(str::to_owned);
            data = match pages.run(&task_state, &plan.page_query, after).await {
                Ok(data) => data,
                Err(errs) => {
                    let message = first_message(&errs);
                    tracing::warn!(error = %message, rows = progress.rows, "an export failed midway; its transfer is cut");
                    progress.cut = Some(message);
                    let _ = sender
                        .send(Err(std::io::Error::other("export failed")))
                        .await;
                    break;
                }
            };
        }
        let outcome = if progress.cut.is_none() {
            Outcome::Ok
        } else {
            Outcome::Partial
        };
        let details = json!({ "export": {
            "list": plan.list,
            "format": format.extension(),
            "arguments": plan.arguments,
            "rows": progress.rows,
            "bytes": progress.bytes,
            "completed": progress.cut.is_none(),
            "cutShort": progress.cut,
        }});
        tracing::info!(
            list = plan.list,
            rows = progress.rows,
            bytes = progress.bytes,
            completed = progress.cut.is_none(),
            "export ended"
        );
        record(&operation, outcome, details).await;
    }));

    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What every page's request carries: the document's variables, and the
/// caller with its per-request loader.
struct Pages {
    variables: Variables,
    principal: Principal,
    loader: crate::graphql::RequestLoader,
    /// The export's one audit record (its fields read are noted there).
    operation: Arc<OperationAudit>,
    /// The cost of the caller's document, admitted once.
    cost: u64,
}

impl Pages {
    /// Runs the page of `query` after `after` through the gate.
    async fn run(
        &self,
        state: &AppState,
        query: &str,
        after: Option<String>,
    ) -> Result<Value, Vec<ServerError>> {
        state
            .gate
            .run_export_page(
                &state.schema,
                self.request(query, after),
                &self.principal,
                &self.operation,
                PAGE_SIZE,
                self.cost,
            )
            .await
    }

    /// The request of the page after `after` (the first when none).
    fn request(&self, query: &str, after: Option<String>) -> GqlRequest {
        let mut variables = self.variables.clone();
        variables.insert(
            async_graphql::Name::new(FIRST_VARIABLE),
            async_graphql::Value::from(PAGE_SIZE),
        );
        variables.insert(
            async_graphql::Name::new(AFTER_VARIABLE),
            after
                .map(async_graphql::Value::from)
                .unwrap_or(async_graphql::Value::Null),
        );
        GqlRequest::new(query)
            .variables(variables)
            .data(self.principal.clone())
            .data(self.loader.clone())
    }
}

/// One node as a line of the export.
fn write_node(out: &mut String, format: Format, plan: &Plan, node: &Value) {
    match format {
        Format::Csv => {
            export::csv::push_row(out, plan.columns.iter().map(|path| export::at(node, path)))
        }
        Format::Ndjson => {
            out.push_str(&node.to_string());
            out.push('\n');
        }
    }
}

fn first_message(errors: &[ServerError]) -> String {
    errors
        .first()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

/// Whether the refusal is the caller's visibility (a hidden name).
fn operation_denied(errors: &[ServerError]) -> bool {
    errors
        .iter()
        .any(|e| crate::graphql::error::Code::of(e) == Some(Code::GraphqlValidationFailed))
}
