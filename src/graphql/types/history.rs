//! A record's history, read from the audit log: every change to it, bulk
//! ones included, newest first. A field's change is listed only to callers
//! who may read that field (by the catalog: `path_needs`), and a change of
//! which they may read no field is not listed at all: support sees that an
//! account's status changed, never that its cost data or flags did.

use std::sync::Arc;

use crate::graphql::filter::Instant;
use async_graphql::{Context, ID, Json, SimpleObject};

use crate::catalog::{self, Ordering, Sort};
use crate::graphql::guard::can;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{connection, cursors, page_request};
use crate::store::changes::{ChangeDetails, FieldChange as DomainFieldChange};
use crate::store::entities::audit_event;
use crate::store::loaders::{HistoryEntry, HistoryOf};
use crate::store::page::{Keyset, Page, SortValue};

/// Histories are newest first; a cursor holds the event it follows.
pub const HISTORY_NEWEST_FIRST: Ordering = Ordering::new(
    "chg:newest",
    Sort {
        column: None,
        descending: true,
        rank: None,
    },
);

/// One field's change.
#[derive(SimpleObject, Clone)]
#[graphql(visible = "crate::graphql::guard::visible::customers")]
pub struct FieldChange {
    /// The field's path from the record, dot-separated where it is a field
    /// of a related object (`status`, `assignee`).
    pub field: String,
    /// Its value before, as JSON (null when it had none).
    pub before: Json<serde_json::Value>,
    /// Its value after, as JSON.
    pub after: Json<serde_json::Value>,
}

/// One change to a record: who made it, when, with which operation and
/// why, and what it changed (the fields the caller may read).
#[derive(SimpleObject, Clone)]
#[graphql(visible = "crate::graphql::guard::visible::customers")]
pub struct Change {
    /// The audit event's id: the audit log's entry for this change.
    pub id: ID,
    /// When it was made.
    pub occurred_at: Instant,
    /// Who made it: the identity provider's subject.
    pub actor_subject: String,
    /// The mutation that made it.
    pub operation_name: String,
    /// Why, as the caller said; null when the operation takes no reason.
    pub reason: Option<String>,
    /// What changed, before and after.
    pub fields: Vec<FieldChange>,
}

connection!(
    ChangeConnection,
    ChangeEdge,
    Change,
    "a change",
    "crate::graphql::guard::visible::customers"
);

/// Whether the caller may read the field at `path` of `entity`.
fn readable(ctx: &Context<'_>, entity: &str, path: &str) -> bool {
    catalog::path_needs(entity, path)
        .is_some_and(|needs| needs.iter().all(|n| n.met_by(|p| can(ctx, p))))
}

/// The change an audit event records, with the fields the caller may read
/// of every record it changed (a mutation's payload).
pub fn change_of(ctx: &Context<'_>, event: &audit_event::Model) -> Change {
    let details = ChangeDetails::of(event.details.as_deref());
    let fields: Vec<DomainFieldChange> = details
        .changes
        .iter()
        .flat_map(|c| c.fields.iter().map(move |f| (c.entity.as_str(), f)))
        .filter(|(entity, f)| readable(ctx, entity, &f.field))
        .map(|(_, f)| f.clone())
        .collect();
    Change {
        id: ids::encode(Kind::AuditEvent, event.id),
        occurred_at: Instant(event.occurred_at),
        actor_subject: event.actor_subject.clone(),
        operation_name: details
            .mutation
            .clone()
            .or_else(|| event.operation_name.clone())
            .unwrap_or_default(),
        reason: details.reason.clone(),
        fields: fields.into_iter().map(FieldChange::from).collect(),
    }
}

impl From<DomainFieldChange> for FieldChange {
    fn from(f: DomainFieldChange) -> Self {
        FieldChange {
            field: f.field,
            before: Json(f.before),
            after: Json(f.after),
        }
    }
}

impl From<HistoryEntry> for Change {
    fn from(e: HistoryEntry) -> Self {
        Change {
            id: ids::encode(Kind::AuditEvent, e.event),
            occurred_at: Instant(e.occurred_at),
            actor_subject: e.actor_subject,
            operation_name: e.mutation,
            reason: e.reason,
            fields: e.fields.into_iter().map(FieldChange::from).collect(),
        }
    }
}

/// The `history(first, after)` of one record.
pub async fn of(
    ctx: &Context<'_>,
    entity: &'static str,
    record: i64,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<ChangeConnection> {
    let req = page_request(ctx, first, after.as_deref(), &HISTORY_NEWEST_FIRST)?;
    let fields: Vec<String> = catalog::field_paths(entity)
        .into_iter()
        .filter(|p| readable(ctx, entity, p))
        .collect();
    let key = HistoryOf {
        entity,
        record,
        before: req.after.as_ref().map(|k| k.id),
        first: req.first,
        with_total: req.with_total,
        fields: Arc::new(fields),
    };
    let rows = super::load_one(ctx, key).await?;
    let page = match rows {
        Some(rows) => Page {
            items: rows.entries,
            has_next_page: rows.has_next_page,
            has_previous_page: false,
            total: rows.total,
        },
        None => Page::empty(req.with_total),
    };
    Ok(ChangeConnection::from_page(
        cursors(ctx)?,
        crate::graphql::pagination::in_order(page, &req),
        &HISTORY_NEWEST_FIRST,
        |e: &HistoryEntry| Keyset {
            value: SortValue::None,
            id: e.event,
        },
        Change::from,
    ))
}
