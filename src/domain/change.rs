//! The engine of single-record changes: each business operation (in
//! `organizations`, `billing`, `tickets`) states its rules and what it
//! changes; this runs it in one transaction with its audit event, which
//! records every changed field's before and after and is indexed for the
//! record's history, and keeps its idempotency key.
//!
//! - **Versions.** An operation that takes `expectedVersion` changes nothing
//!   unless it is the record's current version ([`expect_version`]); every
//!   change raises it. The row is read locked (PostgreSQL) or inside the one
//!   writer's transaction (SQLite), so of two changes from the same version
//!   exactly one wins and the other gets [`DomainError::StaleVersion`].
//! - **Idempotency.** A replay with the same caller, key and input changes
//!   nothing and answers the first call's record and change; the same key
//!   with another input is refused.
//! - **Nothing partial.** A refused rule rolls the whole transaction back;
//!   the change never commits without its audit event.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseTransaction;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::DomainError;
use super::idempotency::Idempotency;
use crate::store::Store;
use crate::store::audit::NewAuditEvent;
pub use crate::store::changes::{FieldChange, RecordChange};
use crate::store::changes::{Touched, append_change};

impl RecordChange {
    pub fn new(entity: &str, record: i64) -> Self {
        RecordChange {
            entity: entity.to_owned(),
            record,
            fields: Vec::new(),
        }
    }

    /// Adds `field`'s change when `before` and `after` differ.
    pub fn field(mut self, field: &str, before: impl Serialize, after: impl Serialize) -> Self {
        let before = serde_json::to_value(before).unwrap_or(Value::Null);
        let after = serde_json::to_value(after).unwrap_or(Value::Null);
        if before != after {
            self.fields.push(FieldChange {
                field: field.to_owned(),
                before,
                after,
            });
        }
        self
    }

    /// Adds a field's change even when the values are alike (a new message).
    pub fn added(mut self, field: &str, after: impl Serialize) -> Self {
        self.fields.push(FieldChange {
            field: field.to_owned(),
            before: Value::Null,
            after: serde_json::to_value(after).unwrap_or(Value::Null),
        });
        self
    }

    fn touched(&self, entity: &'static str) -> impl Iterator<Item = Touched> + '_ {
        self.fields
            .iter()
            .map(move |f| (entity, self.record, f.field.clone()))
    }
}

/// The `&'static` name of an entity whose records keep a history.
fn history_entity(name: &str) -> Option<&'static str> {
    crate::catalog::entity(name)
        .filter(|e| e.history)
        .map(|e| e.name)
}

/// Who is changing something, and when.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    pub subject: &'a str,
    pub now: DateTime<Utc>,
}

/// What an operation did: the row id of the object it answers with, and
/// its changes.
#[derive(Clone, Debug)]
pub struct Applied {
    pub object: i64,
    pub changes: Vec<RecordChange>,
}

/// What every change takes besides its own input: why (for those that take
/// a reason), and the idempotency key (which is not part of the input the
/// key stands for).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Asked {
    pub reason: Option<String>,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

impl Asked {
    pub fn new(reason: Option<String>, idempotency_key: Option<String>) -> Self {
        Asked {
            reason,
            idempotency_key,
        }
    }
}

/// One business operation with its rules. It serializes to its input (for
/// the idempotency key's hash).
pub trait Operation: Serialize + Sync {
    /// The mutation's name (the audit log's, the history's, the key's).
    const NAME: &'static str;
    /// The reason and the idempotency key.
    fn asked(&self) -> &Asked;
    /// Checks the rules against the rows as they are and changes them, in
    /// `txn`.
    fn apply(
        &self,
        txn: &DatabaseTransaction,
        actor: Actor<'_>,
    ) -> impl Future<Output = Result<Applied, DomainError>> + Send;
}

/// What a run answers: the object's row id, the change's audit event id,
/// and whether this is the stored answer to an earlier call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub object: i64,
    pub event: i64,
    #[serde(default)]
    pub replayed: bool,
}

/// Refuses a stale `expectedVersion`.
pub fn expect_version(current: i64, expected: i64) -> Result<(), DomainError> {
    if current == expected {
        Ok(())
    } else {
        Err(DomainError::StaleVersion { current })
    }
}

/// A required reason: trimmed, not empty, at most 2,000 characters.
pub fn required_reason(reason: Option<&str>) -> Result<String, DomainError> {
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(DomainError::Invalid {
            field: "reason",
            message: "say why (it goes to the audit log and the history)".into(),
        });
    }
    text_within("reason", reason, 2_000)
}

/// `text` when it has at most `max` characters.
pub fn text_within(field: &'static str, text: &str, max: usize) -> Result<String, DomainError> {
    if text.chars().count() > max {
        return Err(DomainError::Invalid {
            field,
            message: format!("at most {max} characters"),
        });
    }
    Ok(text.to_owned())
}

fn request_hash<O: Operation>(op: &O) -> String {
    let input = serde_json::to_value(op).unwrap_or(Value::Null);
    let canonical = json!({ "operation": O::NAME, "input": input });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Runs `op` as `subject`; `audit` builds the change's audit event from
/// its details (written in the transaction).
pub async fn run<O: Operation>(
    store: &Store,
    op: &O,
    subject: &str,
    idempotency_ttl: Duration,
    audit: impl FnOnce(Value) -> NewAuditEvent,
) -> Result<Done, DomainError> {
    let now = Utc::now();
    let hash = request_hash(op);
    let key = Idempotency::of(
        subject,
        op.asked().idempotency_key.as_deref(),
        O::NAME,
        &hash,
    )?;
    if let Some(key) = &key
        && let Some(mut done) = key.replayed::<Done>(store, now).await?
    {
        done.replayed = true;
        return Ok(done);
    }

    let txn = store.begin_write().await?;
    let applied = op.apply(&txn, Actor { subject, now }).await?;
    let mut touched = Vec::new();
    for change in &applied.changes {
        if let Some(entity) = history_entity(&change.entity) {
            touched.extend(change.touched(entity));
        }
    }
    let details = json!({
        "mutation": O::NAME,
        "reason": op.asked().reason,
        "changes": applied.changes,
    });
    let event = append_change(&txn, audit(details), &touched).await?;
    let done = Done {
        object: applied.object,
        event,
        replayed: false,
    };
    if let Some(key) = &key {
        key.remember(&txn, &done, now, idempotency_ttl).await?;
    }
    txn.commit().await.map_err(crate::store::StoreError::from)?;
    metrics::counter!("backplane_changes_total", "mutation" => O::NAME).increment(1);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_whose_value_stays_is_not_a_change() {
        let c = RecordChange::new("Organization", 1)
            .field("status", "ACTIVE", "ACTIVE")
            .field("internalFlags.vip", false, true);
        assert_eq!(
            c.fields,
            vec![FieldChange {
                field: "internalFlags.vip".into(),
                before: json!(false),
                after: json!(true),
            }]
        );
    }
}
