//! The audit extension: resolver middleware that records every operation.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
    NextResolve, ResolveInfo,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Request, Response, ServerError, ServerResult, Value, Variables};
use sha2::{Digest, Sha256};

use super::{AuditWriter, OperationAudit, Outcome, RequestIdentity, redact};
use crate::policy::is_audited_field;

/// Installs the audit extension on a schema.
pub struct AuditExtension {
    writer: AuditWriter,
}

impl AuditExtension {
    pub fn new(writer: AuditWriter) -> Self {
        Self { writer }
    }
}

impl ExtensionFactory for AuditExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Recorder {
            writer: self.writer.clone(),
            operation: Arc::new(OperationAudit::default()),
            name: Mutex::new(None),
        })
    }
}

/// One per operation.
struct Recorder {
    writer: AuditWriter,
    operation: Arc<OperationAudit>,
    name: Mutex<Option<String>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Recorder {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = next.run(ctx).await;
        if self.operation.is_recorded() {
            return response;
        }
        let outcome = outcome_of(&response, self.operation.denied().is_some());
        let event = self.operation.event(outcome, None);
        match self.writer.record(event).await {
            Ok(()) => response,
            // Fail closed: no answer leaves without its record.
            Err(err) => {
                let mut error = ServerError::new(
                    format!("{err}; the answer was withheld, try again shortly"),
                    None,
                );
                let mut extensions = async_graphql::ErrorExtensionValues::default();
                extensions.set("code", "UNAVAILABLE");
                error.extensions = Some(extensions);
                Response::from_errors(vec![error])
            }
        }
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut name) = self.name.lock() {
            name.clone_from(&request.operation_name);
        }
        let request = request.data(self.operation.clone());
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let identity = ctx.data_opt::<RequestIdentity>().cloned();
        let operation_name = self.name.lock().ok().and_then(|n| n.clone());
        let document_hash = hex::encode(Sha256::digest(query.as_bytes()));
        let redacted = serde_json::to_value(variables)
            .map(|v| redact(&v).to_string())
            .unwrap_or_else(|_| "{}".into());
        let parsed = next.run(ctx, query, variables).await;
        // The operation that will run: the one named by the request, or the only
        // one in the document (whose name, if any, is the operation's name).
        // A refused document (an inner extension said no) is parsed again here,
        // only to name the operation in the record.
        let reparsed;
        let document = match &parsed {
            Ok(doc) => Some(doc),
            Err(_) => {
                reparsed = async_graphql::parser::parse_query(query).ok();
                reparsed.as_ref()
            }
        };
        let selected = document.and_then(|doc| {
            doc.operations
                .iter()
                .find(|(name, _)| match (&operation_name, name) {
                    (Some(wanted), Some(name)) => wanted == name.as_str(),
                    (None, _) => true,
                    _ => false,
                })
                .map(|(name, op)| {
                    let ty = match op.node.ty {
                        OperationType::Query => "query",
                        OperationType::Mutation => "mutation",
                        OperationType::Subscription => "subscription",
                    };
                    (name.map(|n| n.to_string()), ty)
                })
        });
        let operation_type = selected.as_ref().map(|(_, ty)| *ty);
        let operation_name = operation_name.or_else(|| selected.and_then(|(name, _)| name));
        self.operation.with(|s| {
            s.identity = identity;
            s.operation_name = operation_name;
            s.operation_type = operation_type.map(str::to_owned);
            s.document_hash = document_hash;
            s.variables = redacted;
        });
        parsed
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if is_audited_field(info.parent_type, info.name) {
            self.operation
                .sensitive(format!("{}.{}", info.parent_type, info.name));
        }
        next.run(ctx, info).await
    }
}

fn outcome_of(response: &Response, denied: bool) -> Outcome {
    if denied {
        return Outcome::Denied;
    }
    if response.errors.is_empty() {
        return Outcome::Ok;
    }
    let refused = response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == Value::from("FORBIDDEN") || *c == Value::from("UNAUTHENTICATED"))
    });
    if refused {
        Outcome::Denied
    } else if response.data == Value::Null {
        Outcome::Error
    } else {
        Outcome::Partial
    }
}
