//! `/graphql`: GraphQL over HTTP as its specification says.
//!
//! - `POST` with `Content-Type: application/json` (UTF-8) carries one request or
//!   a batch (a JSON array); any other body type — none, `text/plain`, forms —
//!   is refused with 415 before anything is parsed, which also closes the door
//!   to cross-site form posts.
//! - `GET` carries a query in the URL (`query`, `operationName`, `variables`,
//!   `extensions`); a mutation over `GET` is refused with 405.
//! - `Accept` picks the answer's media type: `application/graphql-response+json`
//!   (a request that cannot run — bad JSON, bad parameters, a document that
//!   does not parse or validate, a limit — is a 4xx without `data`) or
//!   `application/json` (always 200, as deployed clients expect; the default
//!   when `Accept` is missing or `*/*`). Nothing acceptable: 406.
//!
//! The stock `async_graphql_axum` service answers one media type whatever the
//! `Accept` header says and runs mutations over `GET`; this handler does not.

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, Request as GqlRequest, Variables};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::AppState;
use super::error::{HttpError, error_entry};
use super::network::ClientAddr;
use crate::audit::RequestIdentity;
use crate::graphql::error::Code;
use crate::graphql::gate::{Answer, Refusal};
use crate::graphql::request_data;
use crate::identity::Principal;

/// The media type of GraphQL responses (GraphQL over HTTP).
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Most errors one response carries; the rest are summed up in a last one.
pub const MAX_ERRORS: usize = 50;

/// The media type an answer is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: request errors are 4xx.
    GraphqlResponse,
    /// `application/json`: always 200.
    Json,
}

impl Media {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        })
    }

    /// Picks from an `Accept` header; `None` when nothing we write is accepted.
    pub fn negotiate(accept: Option<&str>) -> Option<Media> {
        let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
            return Some(Media::Json);
        };
        let mut best: Option<(f32, Media)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let kind = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let media = match kind.as_str() {
                GRAPHQL_RESPONSE_JSON => Media::GraphqlResponse,
                "application/json" | "application/*" | "*/*" => Media::Json,
                _ => continue,
            };
            if q <= 0.0 {
                continue;
            }
            // The first listed wins a tie, except that the precise GraphQL type
            // beats a wildcard of equal weight.
            let better = match best {
                None => true,
                Some((bq, bm)) => {
                    q > bq
                        || (q == bq
                            && media == Media::GraphqlResponse
                            && bm == Media::Json
                            && kind != "application/json")
                }
            };
            if better {
                best = Some((q, media));
            }
        }
        best.map(|(_, m)| m)
    }
}

/// An answer before any GraphQL ran: a status and one error.
fn refusal(media: Media, error: HttpError) -> Response {
    // Under `application/json` a request error is still a 200 with `errors`,
    // except where HTTP itself has the word (method, media types).
    let error = match (media, error.status()) {
        (Media::Json, StatusCode::BAD_REQUEST) => error.with_status(StatusCode::OK),
        _ => error,
    };
    error_response(media, error)
}

/// One error with exactly its status, in `media`: a request refused before
/// the gate, as not a GraphQL request (recorded as such).
fn error_response(media: Media, error: HttpError) -> Response {
    error
        .refusal(crate::audit::refusals::reason::MALFORMED_REQUEST)
        .into_response_as(media.content_type())
}

fn write(media: Media, status: StatusCode, body: &Value) -> Response {
    write_bytes(
        media,
        status,
        serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()),
    )
}

fn write_bytes(media: Media, status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    response
}

/// Why a request's parameters are not a GraphQL request.
fn bad_parameters(media: Media, message: &str) -> Response {
    refusal(
        media,
        HttpError::new(StatusCode::BAD_REQUEST, Code::BadRequest, message),
    )
}

/// Reads one request's parameters from a JSON object.
pub(crate) fn request_from_json(value: Value) -> Result<GqlRequest, &'static str> {
    let Value::Object(mut fields) = value else {
        return Err("a GraphQL request is a JSON object");
    };
    let query = match fields.remove("query") {
        Some(Value::String(q)) => q,
        Some(_) => return Err("`query` must be a string"),
        None => return Err("`query` is required"),
    };
    let mut request = GqlRequest::new(query);
    match fields.remove("operationName") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err("`operationName` must be a string or null"),
    }
    match fields.remove("variables") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Object(_)) => request = request.variables(Variables::from_json(v)),
        Some(_) => return Err("`variables` must be an object or null"),
    }
    match fields.remove("extensions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                if let Ok(value) = async_graphql::Value::from_json(value) {
                    request.extensions.insert(key, value);
                }
            }
        }
        Some(_) => return Err("`extensions` must be an object or null"),
    }
    Ok(request)
}

/// Reads a request from a URL's query string (`GET`).
fn request_from_uri(uri: &Uri) -> Result<GqlRequest, &'static str> {
    let mut fields = Map::new();
    for (key, value) in form_urlencoded_pairs(uri.query().unwrap_or_default()) {
        let value = match key.as_str() {
            "variables" | "extensions" => match serde_json::from_str::<Value>(&value) {
                Ok(v) => v,
                Err(_) => return Err("`variables` and `extensions` must be JSON objects"),
            },
            _ => Value::String(value),
        };
        fields.insert(key, value);
    }
    request_from_json(Value::Object(fields))
}

/// `key=value&…` pairs, percent-decoded (`+` is a space).
fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The type of the operation a request would run, when the document parses
/// and names one unambiguously.
fn operation_type(request: &GqlRequest) -> Option<OperationType> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let operations: Vec<_> = document.operations.iter().collect();
    let chosen = match &request.operation_name {
        Some(name) => operations
            .into_iter()
            .find(|(n, _)| n.map(|n| n.as_str()) == Some(name.as_str()))?,
        None if operations.len() == 1 => operations.into_iter().next()?,
        None => return None,
    };
    Some(chosen.1.node.ty)
}

/// The name of a document's first operation when the document starts with
/// one (`query Name …`), read without parsing the document, for metrics.
fn leading_operation_name(query: &str) -> Option<&str> {
    let mut rest = query;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',' || c == '\u{feff}');
        match rest.strip_prefix('#') {
            Some(comment) => rest = comment.split_once('\n').map_or("", |(_, r)| r),
            None => break,
        }
    }
    let word = |s: &str| {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let keyword = &rest[..word(rest)];
    if !matches!(keyword, "query" | "mutation" | "subscription") {
        return None;
    }
    let after = rest[keyword.len()..].trim_start();
    let name = &after[..word(after)];
    (!name.is_empty()).then_some(name)
}

/// Whether a `Content-Type` is JSON in UTF-8 (the charset may be omitted).
pub(crate) fn is_json_utf8(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|p| match p.trim().split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
            v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    })
}

/// Executes a GraphQL request (or a batch) as the authenticated principal.
#[allow(clippy::too_many_arguments)]
pub async fn handle(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    client: Option<Extension<ClientAddr>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let Some(media) = Media::negotiate(accept) else {
        return refusal(
            Media::Json,
            HttpError::new(
                StatusCode::NOT_ACCEPTABLE,
                Code::NotAcceptable,
                "this endpoint answers application/graphql-response+json or application/json",
            ),
        );
    };
    // A caller over budget that did not wait its `Retry-After`: refused
    // before its request is read.
    if let Some(exhausted) = state.gate.early_refusal(&principal).await {
        let refused = Answer::Refused(Refusal::over_budget(exhausted));
        return respond(media, Executed::Single(refused), None);
    }
    let batch = if method == Method::GET {
        match request_from_uri(&uri) {
            Ok(request) => {
                if matches!(
                    operation_type(&request),
                    Some(OperationType::Mutation | OperationType::Subscription)
                ) {
                    let mut response = refusal(
                        media,
                        HttpError::new(
                            StatusCode::METHOD_NOT_ALLOWED,
                            Code::MethodNotAllowed,
                            "mutations are sent with POST",
                        ),
                    );
                    response
                        .headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("POST"));
                    return response;
                }
                BatchRequest::Single(request)
            }
            Err(message) => return bad_parameters(media, message),
        }
    } else {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !is_json_utf8(content_type) {
            return refusal(
                media,
                HttpError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    Code::UnsupportedMediaType,
                    "send the request as application/json (UTF-8)",
                ),
            );
        }
        let value: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            // 400 under either media type: not even a GraphQL request.
            Err(_) => {
                return error_response(
                    media,
                    HttpError::new(
                        StatusCode::BAD_REQUEST,
                        Code::BadRequest,
                        "the body is not valid JSON",
                    ),
                );
            }
        };
        match value {
            Value::Array(items) => {
                if items.len() > state.max_batch {
                    return refusal(
                        media,
                        HttpError::new(
                            StatusCode::BAD_REQUEST,
                            Code::LimitExceeded,
                            format!(
                                "a batch may carry at most {} operations; this one has {}",
                                state.max_batch,
                                items.len()
                            ),
                        ),
                    );
                }
                if items.is_empty() {
                    return bad_parameters(media, "a batch carries at least one operation");
                }
                match items
                    .into_iter()
                    .map(request_from_json)
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(requests) => BatchRequest::Batch(requests),
                    Err(message) => return bad_parameters(media, message),
                }
            }
            other => match request_from_json(other) {
                Ok(request) => BatchRequest::Single(request),
                Err(message) => return bad_parameters(media, message),
            },
        }
    };

    let operation = crate::metrics::operation_label(match &batch {
        BatchRequest::Single(r) => r
            .operation_name
            .as_deref()
            .or_else(|| leading_operation_name(&r.query)),
        BatchRequest::Batch(_) => Some("batch"),
    });
    let request_id = headers
        .get(super::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let identity = identity_of(&principal, client, request_id.clone());
    let (principal, loader) = request_data(&state.store, principal);
    // Unconstrained: tokio's cooperative budget would make a ready future return
    // `Pending` at random points of a large level, and the batcher would see the
    // level quiet before every sibling had registered its key (see
    // `store::batch`). The task still yields whenever it waits on I/O.
    let started = std::time::Instant::now();
    let (statements, executed) =
        crate::metrics::counting_statements(tokio::task::unconstrained(async {
            let run = |request: GqlRequest| {
                let request = request.data(principal.clone()).data(loader.clone());
                state
                    .gate
                    .execute(&state.schema, request, &principal, identity.clone())
            };
            match batch {
                BatchRequest::Single(request) => Executed::Single(run(request).await),
                BatchRequest::Batch(mut requests) => {
                    // A step-up refuses the batch whole, before any of it
                    // runs: the operation that needs it is refused (and
                    // recorded) alone.
                    if let Some(at) = requests
                        .iter()
                        .position(|r| state.gate.needs_step_up(r, &principal))
                    {
                        return Executed::Single(run(requests.swap_remove(at)).await);
                    }
                    // One after the other, as async-graphql runs a batch.
                    let mut answers = Vec::with_capacity(requests.len());
                    let mut over_budget = None;
                    for request in requests {
                        let answer = run(request).await;
                        if let Answer::Refused(Refusal::OverBudget { exhausted, .. }) = &answer {
                            over_budget = Some(*exhausted);
                        }
                        answers.push(answer.into_response());
                    }
                    Executed::Batch(answers, over_budget)
                }
            }
        }))
        .await;
    record(&operation, started.elapsed(), statements, &executed);
    respond(media, executed, request_id.as_deref())
}

/// Who asks, from where, under which request id: what the audit log records
/// of the caller.
pub(crate) fn identity_of(
    principal: &Principal,
    client: Option<Extension<ClientAddr>>,
    request_id: Option<String>,
) -> RequestIdentity {
    // A service's scopes grant rights too: they are recorded beside its
    // roles, as `scope:<permission>`.
    let scopes = principal
        .scopes
        .iter()
        .filter(|_| principal.kind == crate::identity::PrincipalKind::Service)
        .map(|p| format!("scope:{}", p.as_str()));
    RequestIdentity {
        subject: principal.subject.clone(),
        roles: principal
            .roles
            .iter()
            .map(|r| r.as_str().to_owned())
            .chain(scopes)
            .collect::<Vec<_>>()
            .join(","),
        client_addr: client.map(|Extension(ClientAddr(ip))| ip.to_string()),
        request_id,
    }
}

/// What ran: one operation's answer, or a batch's responses (and the last
/// budget refusal among them).
enum Executed {
    Single(Answer),
    Batch(
        Vec<async_graphql::Response>,
        Option<crate::graphql::budget::Exhausted>,
    ),
}

fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// The metrics label of an error's code; `NONE` for an error of
/// async-graphql's own that carries no code.
fn error_code(error: &async_graphql::ServerError) -> &'static str {
    Code::of(error).map_or("NONE", Code::as_str)
}

/// Operations by name and outcome, their latency, errors by code, statements.
fn record(operation: &str, elapsed: std::time::Duration, statements: u64, executed: &Executed) {
    let responses: Vec<&async_graphql::Response> = match executed {
        Executed::Single(Answer::Executed(r)) => vec![r],
        Executed::Single(Answer::Refused(
            Refusal::StepUp { response, .. } | Refusal::OverBudget { response, .. },
        )) => vec![response],
        // A compiled read has no errors.
        Executed::Single(Answer::Compiled(_)) => Vec::new(),
        Executed::Batch(rs, _) => rs.iter().collect(),
    };
    let outcome = if responses.iter().all(|r| r.errors.is_empty()) {
        "ok"
    } else if responses.iter().any(|r| is_request_error(r)) {
        "refused"
    } else {
        "error"
    };
    metrics::counter!("backplane_graphql_operations_total", "operation" => operation.to_owned(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("backplane_graphql_operation_duration_seconds", "operation" => operation.to_owned())
        .record(elapsed.as_secs_f64());
    metrics::histogram!("backplane_sql_statements_per_request").record(statements as f64);
    for response in responses {
        for error in &response.errors {
            metrics::counter!("backplane_graphql_errors_total", "code" => error_code(error))
                .increment(1);
        }
    }
}

/// Writes what ran. Under `application/graphql-response+json`, a single
/// request that never reached execution (no `data`) is a 400.
fn respond(media: Media, executed: Executed, request_id: Option<&str>) -> Response {
    match executed {
        Executed::Single(Answer::Compiled(answer)) => {
            write_bytes(media, StatusCode::OK, answer.into_body().into_bytes())
        }
        Executed::Single(Answer::Executed(mut response)) => {
            let request_error = is_request_error(&response);
            let status = if request_error && media == Media::GraphqlResponse {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            response.http_headers.clear();
            write(media, status, &body_of(response, request_error, request_id))
        }
        Executed::Single(Answer::Refused(Refusal::StepUp {
            response,
            challenge,
        })) => {
            // 401 under either media type: HTTP's own word, as for a
            // missing token, and what RFC 9470's clients look for.
            let mut answer = write(
                media,
                StatusCode::UNAUTHORIZED,
                &body_of(response, true, request_id),
            );
            super::fair_use::step_up(&mut answer, &challenge);
            answer
        }
        Executed::Single(Answer::Refused(Refusal::OverBudget {
            response,
            exhausted,
        })) => {
            let mut answer = write(
                media,
                StatusCode::TOO_MANY_REQUESTS,
                &body_of(response, true, request_id),
            );
            super::fair_use::over_budget(&mut answer, &exhausted);
            answer
        }
        Executed::Batch(responses, over_budget) => {
            let items: Vec<Value> = responses
                .into_iter()
                .map(|r| {
                    let request_error = is_request_error(&r);
                    body_of(r, request_error, request_id)
                })
                .collect();
            // Operations of the batch ran: 200, with the budget's fields
            // when some were refused for it.
            let mut answer = write(media, StatusCode::OK, &Value::Array(items));
            if let Some(exhausted) = over_budget {
                super::fair_use::over_budget(&mut answer, &exhausted);
                *answer.status_mut() = StatusCode::OK;
            }
            answer
        }
    }
}

/// One response's JSON: `data` left out when the request never ran, errors
/// capped at [`MAX_ERRORS`], internal errors marked with the request id that
/// finds them in the logs.
fn body_of(
    response: async_graphql::Response,
    request_error: bool,
    request_id: Option<&str>,
) -> Value {
    let mut body = Map::new();
    if !request_error {
        body.insert(
            "data".into(),
            serde_json::to_value(&response.data).unwrap_or(Value::Null),
        );
    }
    if !response.errors.is_empty() {
        let total = response.errors.len();
        let mut errors: Vec<Value> = response
            .errors
            .iter()
            .take(MAX_ERRORS)
            .map(|e| {
                let mut value = serde_json::to_value(e).unwrap_or(Value::Null);
                if let (Some(id), Some(Code::Internal | Code::Unavailable)) =
                    (request_id, Code::of(e))
                    && let Some(ext) = value.get_mut("extensions").and_then(Value::as_object_mut)
                {
                    ext.insert("requestId".into(), Value::String(id.to_owned()));
                }
                value
            })
            .collect();
        if total > MAX_ERRORS {
            errors.push(error_entry(
                Code::LimitExceeded,
                &format!("{} more errors were left out", total - MAX_ERRORS),
                Map::new(),
            ));
        }
        body.insert("errors".into(), Value::Array(errors));
    }
    if !response.extensions.is_empty() {
        body.insert(
            "extensions".into(),
            serde_json::to_value(&response.extensions).unwrap_or(Value::Null),
        );
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert_eq!(Media::negotiate(None), Some(Media::Json));
        assert_eq!(Media::negotiate(Some("*/*")), Some(Media::Json));
        assert_eq!(
            Media::negotiate(Some("application/graphql-response+json")),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(
            Media::negotiate(Some(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(
            Media::negotiate(Some(
                "application/json, application/graphql-response+json;q=0.9"
            )),
            Some(Media::Json)
        );
        assert_eq!(
            Media::negotiate(Some("application/graphql-response+json;q=0, */*;q=0.1")),
            Some(Media::Json)
        );
        assert_eq!(Media::negotiate(Some("text/html")), None);
        assert_eq!(
            Media::negotiate(Some("text/html,application/xhtml+xml,*/*;q=0.8")),
            Some(Media::Json)
        );
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_utf8("application/json"));
        assert!(is_json_utf8("application/json; charset=utf-8"));
        assert!(is_json_utf8("Application/JSON; charset=\"UTF-8\""));
        assert!(!is_json_utf8("application/json; charset=latin1"));
        assert!(!is_json_utf8("text/plain"));
        assert!(!is_json_utf8("application/x-www-form-urlencoded"));
        assert!(!is_json_utf8("multipart/form-data; boundary=x"));
        assert!(!is_json_utf8(""));
    }

    #[test]
    fn operation_names_for_metrics() {
        assert_eq!(
            leading_operation_name("query Lookup($a: Int) { x }"),
            Some("Lookup")
        );
        assert_eq!(
            leading_operation_name("# hi\n  mutation Do { x }"),
            Some("Do")
        );
        assert_eq!(leading_operation_name("{ x }"), None);
        assert_eq!(leading_operation_name("query { x }"), None);
        assert_eq!(
            leading_operation_name("fragment F on X { y } query Q { x }"),
            None
        );
    }

    #[test]
    fn query_strings() {
        let pairs = form_urlencoded_pairs("query=%7B%20a%20%7D&operationName=A+B&x=%zz");
        assert_eq!(pairs[0], ("query".into(), "{ a }".into()));
        assert_eq!(pairs[1], ("operationName".into(), "A B".into()));
        assert_eq!(pairs[2], ("x".into(), "%zz".into()));
    }
}
