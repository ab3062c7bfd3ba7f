//! The audit log, as auditors and admins read it.

use async_graphql::{ID, InputObject, Object};
use chrono::{DateTime, Utc};

use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::connection;
use crate::store::audit::AuditQuery;
use crate::store::entities::audit_event;

pub use crate::catalog::AUDIT_NEWEST_FIRST;

/// One entry of the audit log.
#[derive(Clone)]
pub struct AuditEvent(pub audit_event::Model);

#[Object(visible = "crate::graphql::guard::visible::audit_log")]
impl AuditEvent {
    /// Opaque, stable id.
    async fn id(&self) -> ID {
        ids::encode(Kind::AuditEvent, self.0.id)
    }

    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// The caller's subject; empty for a refused request that no signature
    /// vouched for.
    async fn actor_subject(&self) -> &str {
        &self.0.actor_subject
    }

    /// The caller's roles at the time.
    async fn actor_roles(&self) -> Vec<String> {
        self.0
            .actor_roles
            .split(',')
            .filter(|r| !r.is_empty() && !r.starts_with("scope:"))
            .map(str::to_owned)
            .collect()
    }

    /// A service identity's scopes at the time (the permissions its token
    /// granted beside its roles); empty for a person.
    async fn actor_scopes(&self) -> Vec<String> {
        self.0
            .actor_roles
            .split(',')
            .filter_map(|r| r.strip_prefix("scope:"))
            .map(str::to_owned)
            .collect()
    }

    /// `query` or `mutation`; `request` for a request refused before it
    /// became an operation (see `details`).
    async fn operation_type(&self) -> &str {
        &self.0.operation_type
    }

    /// The operation's name; for a refused request its route (`POST
    /// /graphql`); null for anonymous operations.
    async fn operation_name(&self) -> Option<&str> {
        self.0.operation_name.as_deref()
    }

    /// Sensitive fields resolved, as `Type.field`.
    async fn sensitive_fields(&self) -> Vec<String> {
        serde_json::from_str(&self.0.sensitive_fields).unwrap_or_default()
    }

    /// `ok`, `partial`, `denied` or `error`.
    async fn outcome(&self) -> &str {
        &self.0.outcome
    }

    /// SHA-256 of the document, hex.
    async fn document_hash(&self) -> &str {
        &self.0.document_hash
    }

    async fn duration_ms(&self) -> i64 {
        self.0.duration_ms
    }

    /// The caller's address; null when unknown.
    async fn client_addr(&self) -> Option<&str> {
        self.0.client_addr.as_deref()
    }

    /// The request id (`x-request-id`), to find the request in the logs.
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// The operation's declared variables as JSON: IDs, enum values, numbers
    /// and booleans as given; text only where the catalog records it (reasons,
    /// searches), else `[hidden: N characters, HMAC-SHA256 …]`.
    async fn variables(&self) -> &str {
        &self.0.variables
    }

    /// JSON: what a mutation changed (`fields`: the document's root
    /// fields), which fields failed (`failed`: path and code), what a refused
    /// operation asked for (`denied`), or why a request was refused before
    /// the gate (`refused`: reason, status, message, count, from, until,
    /// routes); null when there is nothing to add.
    async fn details(&self) -> Option<&str> {
        self.0.details.as_deref()
    }
}

connection!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEvent,
    "an audit event",
    "crate::graphql::guard::visible::audit_log"
);

/// Which audit events to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
#[graphql(visible = "crate::graphql::guard::visible::audit_log")]
pub struct AuditEventFilter {
    /// The caller's subject.
    pub actor: Option<String>,
    pub operation_name: Option<String>,
    /// Events that resolved this sensitive field, named as `Type.field`.
    pub field: Option<String>,
    /// At or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Before this instant.
    pub to: Option<DateTime<Utc>>,
    /// `ok`, `partial`, `denied` or `error`.
    pub outcome: Option<String>,
}

impl From<AuditEventFilter> for AuditQuery {
    fn from(f: AuditEventFilter) -> Self {
        AuditQuery {
            actor: f.actor,
            operation_name: f.operation_name,
            field: f.field,
            from: f.from,
            to: f.to,
            outcome: f.outcome,
        }
    }
}
