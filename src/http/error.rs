//! The one constructor of the error bodies the HTTP layer writes itself —
//! refusals at the edge (network, authentication, overload), a caught panic,
//! and `/graphql` requests that are not GraphQL requests — so that each is
//! shaped as a GraphQL response (`{"errors":[{"message":…,"extensions":{"code":…}}]}`)
//! and its code is always one of [`Code`], never a string typed at the call
//! site. Errors that GraphQL execution itself produces get their code in
//! `graphql::error`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::audit::refusals::Refused;
use crate::graphql::error::Code;

/// An error answered before (or instead of) GraphQL: its status, code and
/// message, and the request id when the logs must be found by it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    status: StatusCode,
    code: Code,
    message: String,
    request_id: Option<String>,
    /// Why the request was refused before the gate, for the audit log
    /// (`audit::refusals`); `None` for anything else.
    refusal: Option<&'static str>,
}

impl HttpError {
    /// `status` with one error of `code` saying `message`.
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            request_id: None,
            refusal: None,
        }
    }

    /// Marks the answer as a refusal before the gate, for `reason`: the
    /// network layer records it in the audit log.
    pub fn refusal(mut self, reason: &'static str) -> Self {
        self.refusal = Some(reason);
        self
    }

    /// Names the request in `extensions.requestId`: an internal error's cause
    /// is in the log under it.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The same error answered with another status (`application/json`
    /// answers a request error with 200).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The response body: a GraphQL response with this one error.
    pub fn body(&self) -> Value {
        let mut extensions = Map::new();
        if let Some(id) = &self.request_id {
            extensions.insert("requestId".into(), Value::String(id.clone()));
        }
        json!({ "errors": [error_entry(self.code, &self.message, extensions)] })
    }

    /// The response, written as `content_type`.
    pub fn into_response_as(self, content_type: HeaderValue) -> Response {
        let bytes = serde_json::to_vec(&self.body()).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, bytes).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
        if let Some(reason) = self.refusal {
            response
                .extensions_mut()
                .insert(Refused::new(reason, self.message));
        }
        response
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        self.into_response_as(HeaderValue::from_static("application/json"))
    }
}

/// One entry of a response's `errors`: `message`, and `extensions` with
/// `code` and whatever `more` adds.
pub fn error_entry(code: Code, message: &str, more: Map<String, Value>) -> Value {
    let mut extensions = Map::new();
    extensions.insert("code".into(), Value::String(code.as_str().to_owned()));
    extensions.extend(more);
    json!({ "message": message, "extensions": extensions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_is_a_graphql_response_with_one_coded_error() {
        let error = HttpError::new(StatusCode::FORBIDDEN, Code::Forbidden, "not here");
        assert_eq!(error.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            error.body(),
            json!({ "errors": [{ "message": "not here", "extensions": { "code": "FORBIDDEN" } }] })
        );
        let error = HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, "oops")
            .with_request_id("req-1");
        assert_eq!(
            error.body()["errors"][0]["extensions"],
            json!({ "code": "INTERNAL", "requestId": "req-1" })
        );
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
