//! An operation's audit record from start to end: what the request asked
//! (filled in before execution by `graphql::gate`) and how it ended (after).
//!
//! No async-graphql extension is involved: one registered extension makes
//! async-graphql send every field and list item through the extension chain,
//! which cost more than the rest of execution on large answers.

use async_graphql::parser::types::OperationType;
use async_graphql::{Request, Response, Value};
use sha2::{Digest, Sha256};

use super::{AuditWriter, OperationAudit, Outcome, RequestIdentity};
use crate::graphql::error::Code;

impl OperationAudit {
    /// Starts the record of `request`, sent by `identity`: the document's hash,
    /// the variables with every value hidden (until [`Self::variables`] knows
    /// their types) and the operation named by the request, before anything
    /// is parsed (a refused document is recorded too).
    pub fn begin(identity: RequestIdentity, request: &Request) -> Self {
        let operation = Self::default();
        let document_hash = hex::encode(Sha256::digest(request.query.as_bytes()));
        let variables = serde_json::to_value(&request.variables)
            .map(|v| super::values::unparsed(&v).to_string())
            .unwrap_or_else(|_| "{}".into());
        operation.with(|s| {
            s.identity = Some(identity);
            s.operation_name.clone_from(&request.operation_name);
            s.document_hash = document_hash;
            s.variables = variables;
        });
        operation
    }

    /// The operation that runs, once the document is parsed: its type, and its
    /// name when the request named none.
    pub fn name(&self, ty: OperationType, name: Option<&str>) {
        let ty = match ty {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        };
        self.with(|s| {
            s.operation_type = Some(ty.to_owned());
            if s.operation_name.is_none() {
                s.operation_name = name.map(str::to_owned);
            }
        });
    }

    /// The variables as the audit log keeps them, once the document is
    /// parsed (see `audit::values`).
    pub fn variables(&self, recorded: &serde_json::Value) {
        let text = recorded.to_string();
        self.with(|s| s.variables = text);
    }

    /// The document's SHA-256, hex, as recorded.
    pub fn document_hash(&self) -> String {
        self.with(|s| s.document_hash.clone())
    }

    /// Notes a sensitive field resolved (`Type.field`; see `graphql::guard::Audited`).
    pub fn sensitive(&self, field: &str) {
        self.with(|s| {
            if !s.sensitive.contains(field) {
                s.sensitive.insert(field.to_owned());
            }
        });
    }

    /// Records how the operation ended, unless a mutation already wrote its
    /// event in its own transaction. Fails closed: when the record cannot be
    /// written, the answer is withheld and replaced by an `UNAVAILABLE` error.
    ///
    /// A mutation document whose changes wrote their own events, and whose
    /// other fields failed, gets one event more: the failures, with their
    /// paths and codes (a later field's refusal is in the log too). The
    /// changes are committed then: the answer is given whatever happens.
    pub async fn finish(&self, writer: &AuditWriter, response: Response) -> Response {
        let failed = failures(&response);
        if self.is_recorded() {
            if failed.is_none() {
                return response;
            }
            let outcome = outcome_of(&response, false);
            if let Err(err) = writer.record(self.event(outcome, failed)).await {
                tracing::error!(error = %err, "the failed fields of a mutation that made changes could not be recorded");
            }
            return response;
        }
        let outcome = outcome_of(&response, self.denied().is_some());
        match writer.record(self.event(outcome, failed)).await {
            Ok(()) => response,
            Err(err) => Response::from_errors(vec![crate::graphql::error::request_error(
                Code::Unavailable,
                format!("{err}; the answer was withheld, try again shortly"),
                None,
            )]),
        }
    }
}

/// The fields that failed, as `{"failed": [{"path", "code"}]}` (no message:
/// one may quote what the caller sent); `None` when none did.
fn failures(response: &Response) -> Option<serde_json::Value> {
    let failed: Vec<serde_json::Value> = response
        .errors
        .iter()
        .filter(|e| !e.path.is_empty())
        .map(|e| {
            let path: Vec<String> = e
                .path
                .iter()
                .map(|p| match p {
                    async_graphql::PathSegment::Field(name) => name.clone(),
                    async_graphql::PathSegment::Index(i) => i.to_string(),
                })
                .collect();
            serde_json::json!({
                "path": path.join("."),
                "code": Code::of(e).map(Code::as_str),
            })
        })
        .collect();
    (!failed.is_empty()).then(|| serde_json::json!({ "failed": failed }))
}

fn outcome_of(response: &Response, denied: bool) -> Outcome {
    if denied {
        return Outcome::Denied;
    }
    if response.errors.is_empty() {
        return Outcome::Ok;
    }
    let refused = response.errors.iter().any(|e| {
        matches!(
            Code::of(e),
            Some(Code::Forbidden | Code::Unauthenticated | Code::InsufficientAuthentication)
        )
    });
    if refused {
        Outcome::Denied
    } else if response.data == Value::Null {
        Outcome::Error
    } else {
        Outcome::Partial
    }
}
