//! The audit log at the API layer: who read which sensitive field, who changed
//! what, with which arguments, and the result.
//!
//! [`record`] follows every operation from request to answer (`graphql::gate`
//! drives it); mutations write their own event inside their transaction
//! ([`OperationAudit::event`]); [`writer`] commits the others and fails closed.
//! The chain itself lives in `store::audit`.

pub mod checkpoint;
pub mod record;
pub mod refusals;
pub mod values;
pub mod writer;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use crate::store::audit::NewAuditEvent;

pub use writer::AuditWriter;

/// Who is calling and from where: set by the HTTP layer for the whole request.
#[derive(Clone, Debug)]
pub struct RequestIdentity {
    pub subject: String,
    pub roles: String,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
}

/// How an operation ended, as the audit log says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Data with errors.
    Partial,
    /// Refused: a field or mutation the caller may not use.
    Denied,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

#[derive(Default, Debug)]
struct OperationState {
    identity: Option<RequestIdentity>,
    operation_type: Option<String>,
    operation_name: Option<String>,
    document_hash: String,
    variables: String,
    sensitive: BTreeSet<String>,
    /// A name the caller may not use appeared in the document.
    denied: Option<String>,
    /// A mutation wrote this operation's event in its own transaction.
    recorded: bool,
    /// A mutation document's root fields (`key: name`), in every event of
    /// the operation: the changes made and the fields that failed alike.
    fields: Vec<String>,
}

/// One operation's audit record in the making: the gate fills it in, a
/// mutation reads it to write its event in its transaction.
#[derive(Debug)]
pub struct OperationAudit {
    started: Instant,
    state: Mutex<OperationState>,
}

impl Default for OperationAudit {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            state: Mutex::new(OperationState::default()),
        }
    }
}

impl OperationAudit {
    fn with<T>(&self, f: impl FnOnce(&mut OperationState) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    /// Notes that the document used a name the caller may not see.
    pub fn deny(&self, what: &str) {
        self.with(|s| s.denied.get_or_insert_with(|| what.to_owned()).clone());
    }

    /// The root fields of the mutation document that runs.
    pub fn fields(&self, fields: Vec<String>) {
        self.with(|s| s.fields = fields);
    }

    /// Marks the event as written by a mutation's transaction.
    pub fn mark_recorded(&self) {
        self.with(|s| s.recorded = true);
    }

    fn is_recorded(&self) -> bool {
        self.with(|s| s.recorded)
    }

    fn denied(&self) -> Option<String> {
        self.with(|s| s.denied.clone())
    }

    /// As [`Self::event`], with details already written as a JSON object's
    /// text (a bulk change's: too large to build as a tree first); what the
    /// record adds to every event's details (`denied`, `fields`) is added to
    /// its end.
    pub fn event_text(&self, outcome: Outcome, details: String) -> NewAuditEvent {
        let mut event = self.event(outcome, None);
        event.details = Some(match event.details.take() {
            None => details,
            Some(added) => joined(&details, &added),
        });
        event
    }

    /// The event for this operation as it stands, with `outcome` and `details`.
    pub fn event(&self, outcome: Outcome, details: Option<Value>) -> NewAuditEvent {
        let duration_ms = self.started.elapsed().as_millis() as i64;
        self.with(|s| {
            let identity = s.identity.clone().unwrap_or(RequestIdentity {
                subject: String::new(),
                roles: String::new(),
                client_addr: None,
                request_id: None,
            });
            let mut details = details;
            if let Some(denied) = &s.denied {
                let d = details.get_or_insert_with(|| Value::Object(Default::default()));
                if let Value::Object(map) = d {
                    map.insert("denied".into(), Value::String(denied.clone()));
                }
            }
            if !s.fields.is_empty() {
                let d = details.get_or_insert_with(|| Value::Object(Default::default()));
                if let Value::Object(map) = d {
                    map.insert("fields".into(), serde_json::json!(s.fields));
                }
            }
            NewAuditEvent {
                occurred_at: chrono::Utc::now(),
                actor_subject: identity.subject,
                actor_roles: identity.roles,
                client_addr: identity.client_addr,
                request_id: identity.request_id,
                operation_type: s.operation_type.clone().unwrap_or_else(|| "unknown".into()),
                operation_name: s.operation_name.clone(),
                document_hash: s.document_hash.clone(),
                variables: s.variables.clone(),
                sensitive_fields: serde_json::to_string(&s.sensitive)
                    .unwrap_or_else(|_| "[]".into()),
                outcome: outcome.as_str().into(),
                duration_ms,
                details: details.map(|d| d.to_string()),
            }
        })
    }
}

/// As [`change_event`], with details already written as a JSON object's text.
pub fn change_event_text(operation: Option<&OperationAudit>, details: String) -> NewAuditEvent {
    match operation {
        Some(o) => o.event_text(Outcome::Ok, details),
        None => OperationAudit::default().event_text(Outcome::Ok, details),
    }
}

/// The members of two JSON objects' texts in one object: `first`'s, then
/// `second`'s.
fn joined(first: &str, second: &str) -> String {
    let head = first
        .trim_end()
        .strip_suffix('}')
        .unwrap_or(first)
        .trim_end();
    let tail = second.trim_start().strip_prefix('{').unwrap_or(second);
    if head.ends_with('{') || tail.trim_start().starts_with('}') {
        format!("{head}{tail}")
    } else {
        format!("{head},{tail}")
    }
}

/// A change's audit event: the request's record (or a blank one, outside a
/// request) with the change's details.
pub fn change_event(operation: Option<&OperationAudit>, details: Value) -> NewAuditEvent {
    match operation {
        Some(o) => o.event(Outcome::Ok, Some(details)),
        None => OperationAudit::default().event(Outcome::Ok, Some(details)),
    }
}

/// The audit record of the operation a resolver runs in.
pub fn operation<'a>(ctx: &async_graphql::Context<'a>) -> Option<&'a Arc<OperationAudit>> {
    ctx.data_opt::<Arc<OperationAudit>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_written_as_text_keep_what_the_record_adds() {
        for (first, second, whole) in [
            (
                r#"{"a":1}"#,
                r#"{"fields":["x"]}"#,
                r#"{"a":1,"fields":["x"]}"#,
            ),
            ("{}", r#"{"denied":"d"}"#, r#"{"denied":"d"}"#),
            (
                r#"{"a":{"b":[]}} "#,
                r#" {"c":null}"#,
                r#"{"a":{"b":[]},"c":null}"#,
            ),
        ] {
            let text = joined(first, second);
            assert_eq!(text, whole);
            let parsed: Value = serde_json::from_str(&text).expect("JSON");
            assert!(parsed.is_object(), "{text}");
        }
        let audit = OperationAudit::default();
        let event = audit.event_text(Outcome::Ok, r#"{"a":1}"#.into());
        assert_eq!(event.details.as_deref(), Some(r#"{"a":1}"#));
    }
}
