//! The audit log, as auditors and admins read it.

use async_graphql::{ID, InputObject, Json, Object};

use crate::graphql::filter::{Instant, InstantRange, Where};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::connection;
use crate::store::entities::audit_event;
use crate::store::sql::Sql;

pub use crate::catalog::AUDIT_NEWEST_FIRST;

/// One entry of the audit log.
#[derive(Clone)]
pub struct AuditEvent(pub audit_event::Model);

/// One entry of the audit log: who asked what, when, from where, and how
/// it ended; its hash chains it to the entry before.
#[Object(visible = "crate::graphql::guard::visible::audit_log")]
impl AuditEvent {
    /// Opaque, stable id.
    pub async fn id(&self, _ctx: &async_graphql::Context<'_>) -> async_graphql::Result<ID> {
        Ok(ids::encode(Kind::AuditEvent, self.0.id))
    }

    /// When it happened.
    async fn occurred_at(&self) -> Instant {
        Instant(self.0.occurred_at)
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

    /// What was asked: a query or a mutation, or a request refused before it
    /// became an operation (see `details`).
    async fn operation_type(&self) -> AuditOperationType {
        AuditOperationType::of(&self.0.operation_type)
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

    /// How it ended.
    async fn outcome(&self) -> AuditOutcome {
        AuditOutcome::of(&self.0.outcome)
    }

    /// SHA-256 of the document, hex.
    async fn document_hash(&self) -> &str {
        &self.0.document_hash
    }

    /// How long it took, in milliseconds.
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

    /// The operation's declared variables: IDs, enum values, numbers and
    /// booleans as given; text only where the catalog records it (reasons,
    /// searches), else `[hidden: N characters, HMAC-SHA256 …]`.
    async fn variables(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.variables).unwrap_or(serde_json::Value::Null))
    }

    /// What a mutation changed (`fields`: the document's root
    /// fields), which fields failed (`failed`: path and code), what a refused
    /// operation asked for (`denied`), or why a request was refused before
    /// the gate (`refused`: reason, status, message, count, from, until,
    /// routes); null when there is nothing to add.
    async fn details(&self) -> Option<Json<serde_json::Value>> {
        self.0
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .map(Json)
    }
}

connection!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEvent,
    "an audit event",
    "crate::graphql::guard::visible::audit_log"
);

/// What an audit event records.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(visible = "crate::graphql::guard::visible::audit_log")]
pub enum AuditOperationType {
    /// A read.
    Query,
    /// A change.
    Mutation,
    /// A subscription (refused: Backplane has none).
    Subscription,
    /// A request refused before it became an operation (a bad token, a
    /// foreign network, a body too large): see `details.refused`.
    Request,
    /// A document that did not parse far enough to say.
    Unknown,
}

impl AuditOperationType {
    /// The stored text's value.
    fn of(stored: &str) -> Self {
        match stored {
            "query" => Self::Query,
            "mutation" => Self::Mutation,
            "subscription" => Self::Subscription,
            crate::audit::refusals::OPERATION_TYPE => Self::Request,
            _ => Self::Unknown,
        }
    }
}

/// How an audited operation ended.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(visible = "crate::graphql::guard::visible::audit_log")]
pub enum AuditOutcome {
    /// Answered without errors.
    Ok,
    /// Answered, with errors on some fields.
    Partial,
    /// Refused: something the caller may not use, or a request refused at
    /// the edge.
    Denied,
    /// Failed.
    Error,
}

impl AuditOutcome {
    const ALL: [AuditOutcome; 4] = [Self::Ok, Self::Partial, Self::Denied, Self::Error];

    /// The stored text's value (the audit log writes `audit::Outcome`'s).
    fn of(stored: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|o| o.stored() == stored)
            .unwrap_or(Self::Error)
    }

    /// As stored.
    fn stored(self) -> &'static str {
        use crate::audit::Outcome;
        match self {
            Self::Ok => Outcome::Ok,
            Self::Partial => Outcome::Partial,
            Self::Denied => Outcome::Denied,
            Self::Error => Outcome::Error,
        }
        .as_str()
    }
}

/// Which audit events to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
#[graphql(visible = "crate::graphql::guard::visible::audit_log")]
pub struct AuditEventFilter {
    /// Events of any of these callers, by subject; an empty list matches
    /// nothing.
    pub actor: Option<Vec<String>>,
    /// Events of any of these operation names (a refused request's route);
    /// an empty list matches nothing.
    pub operation_name: Option<Vec<String>>,
    /// Events that resolved this sensitive field, named as `Type.field`.
    pub field: Option<String>,
    /// Events within this span.
    pub occurred_at: Option<InstantRange>,
    /// Events with any of these outcomes; an empty list matches nothing.
    pub outcome: Option<Vec<AuditOutcome>>,
}

impl AuditEventFilter {
    pub(crate) fn conditions(self) -> Sql {
        let mut w = Where::default()
            .any_text("actor_subject", self.actor)
            .any_text("operation_name", self.operation_name)
            .any_text(
                "outcome",
                self.outcome
                    .map(|o| o.into_iter().map(|o| o.stored().to_owned()).collect()),
            )
            .within("occurred_at", self.occurred_at);
        if let Some(field) = self.field {
            // Stored as a JSON array of strings: match the quoted name exactly.
            w = w.search(&["sensitive_fields"], Some(format!("\"{field}\"")));
        }
        w.done()
    }
}
