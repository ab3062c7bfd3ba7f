//! Reads of the audit log.

use chrono::{DateTime, Utc};

use super::entities::audit_event;
use super::page::{Page, PageRequest, Sort, root_page};
use super::sql::Conditions;
use super::{Store, StoreError};

/// Which audit events to list.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub operation_name: Option<String>,
    /// A sensitive field name that must appear in the event.
    pub field: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
}

pub async fn list(
    store: &Store,
    query: &AuditQuery,
    sort: Sort,
    req: &PageRequest,
) -> Result<Page<audit_event::Model>, StoreError> {
    let mut c = Conditions::default();
    c.compare("actor_subject", "=", query.actor.clone());
    c.compare("operation_name", "=", query.operation_name.clone());
    c.compare("outcome", "=", query.outcome.clone());
    c.compare("occurred_at", ">=", query.from);
    c.compare("occurred_at", "<", query.to);
    if let Some(field) = &query.field {
        // Stored as a JSON array of strings: match the quoted name exactly.
        c.contains_text(&["sensitive_fields"], Some(&format!("\"{field}\"")));
    }
    root_page(store, "audit_events", &c.into_sql(), sort, req).await
}
