//! The bulk engine: validate every item first, then apply the change set-based in
//! one transaction with its audit record, and answer item by item.
//!
//! - `ALL_OR_NOTHING` (the default): one failed item and nothing changes; every
//!   failure is listed.
//! - `BEST_EFFORT`: the valid items change, the others are listed.
//! - A dry run says exactly what would happen and changes nothing.
//! - An idempotency key makes a replay (same principal, key and input) return
//!   the first result without changing anything again; the same key with
//!   another input is refused.
//!
//! Every call that gets as far as the database leaves one audit event, written in
//! the same transaction as the change: a change never commits without it.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use sea_orm::Value;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::DomainError;
use super::change::{FieldChange, RecordChange};
use super::idempotency::Idempotency;
use crate::store::audit::NewAuditEvent;
use crate::store::changes::{Touched, append_change};
use crate::store::{Store, bulk as sql};

/// What to do when some items fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    AllOrNothing,
    BestEffort,
}

/// One requested item: the id as given, and the row id it names (none when it is
/// not an id of the right kind).
#[derive(Clone, Debug)]
pub struct Item {
    pub given: String,
    pub row: Option<i64>,
}

/// A bulk call.
#[derive(Clone, Debug)]
pub struct BulkInput {
    pub items: Vec<Item>,
    pub reason: String,
    pub dry_run: bool,
    pub mode: Mode,
    pub idempotency_key: Option<String>,
}

/// How one item would fare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    Change,
    Unchanged,
    Fail(String),
}

/// One kind of bulk change.
pub trait BulkOperation: Send + Sync {
    /// The mutation's name, for the audit log and idempotency keys.
    fn name(&self) -> &'static str;
    /// The table changed.
    fn table(&self) -> &'static str;
    /// A SQL expression over alias `c` giving the current state as text.
    fn state_expr(&self) -> String;
    /// Whether the item in `state` may take the change.
    fn check(&self, state: &str) -> Check;
    /// The column set and its new value.
    fn assignment(&self) -> (&'static str, Value);
    /// Whether the table has an `updated_at` to stamp.
    fn stamps_updated_at(&self) -> bool;
    /// The change, for the audit log and the idempotency hash.
    fn describe(&self) -> serde_json::Value;
    /// What a malformed id is called in a failure ("not an organization id").
    fn malformed(&self) -> &'static str;
    /// The catalog entity changed (its records' histories list the change).
    fn entity(&self) -> &'static str;
    /// The changed field's path from the record, as a history names it.
    fn field(&self) -> String;
    /// The field's value before, as JSON, from the state `state_expr` read.
    fn before(&self, state: &str) -> serde_json::Value;
    /// The field's value after, as JSON.
    fn after(&self) -> serde_json::Value;
}

/// Why an item failed, as a client can branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum FailureCode {
    /// Not an id of the records this mutation changes.
    NotAnId,
    /// No such record.
    NotFound,
    /// The record may not take this change (its state, a business rule).
    #[default]
    NotAllowed,
}

/// A failed item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub id: String,
    #[serde(default)]
    pub code: FailureCode,
    pub reason: String,
}

/// The per-item answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkOutcome {
    pub requested: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub dry_run: bool,
    pub failed: Vec<Failure>,
    /// The ids changed (or, in a dry run, that would change), as given.
    #[serde(default)]
    pub changed_ids: Vec<String>,
    /// The ids already as asked, as given.
    #[serde(default)]
    pub unchanged_ids: Vec<String>,
    /// Ids given more than once, each listed once (and counted once).
    #[serde(default)]
    pub duplicate_ids: Vec<String>,
    /// The first result of this idempotency key, returned again.
    pub replayed: bool,
}

/// Limits of the engine.
#[derive(Clone, Copy, Debug)]
pub struct BulkLimits {
    pub max_items: usize,
    pub idempotency_ttl: Duration,
}

impl Default for BulkLimits {
    fn default() -> Self {
        Self {
            max_items: 10_000,
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// The hash an idempotency key is bound to: the change and the **set** of
/// ids (sorted, each once), so the same ids in another order are the same
/// request.
fn request_hash(op: &dyn BulkOperation, input: &BulkInput) -> String {
    let ids: BTreeSet<String> = input
        .items
        .iter()
        .map(|i| match i.row {
            Some(row) => row.to_string(),
            None => format!("?{}", i.given),
        })
        .collect();
    let canonical = json!({
        "operation": op.name(),
        "change": op.describe(),
        "ids": ids,
        "reason": input.reason,
        "dryRun": input.dry_run,
        "mode": input.mode,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// A bulk change's audit details, in the order of their names: the shape a
/// change's `details` has everywhere (`store::changes::ChangeDetails` reads
/// it back), written without building a JSON tree.
#[derive(Serialize)]
#[serde(rename_all = "camelCase", bound = "F: Fn(i64) -> serde_json::Value")]
struct Details<'a, F> {
    applied: bool,
    change: serde_json::Value,
    changed: u64,
    changed_ids: &'a [i64],
    changes: Changes<'a, F>,
    dry_run: bool,
    #[serde(serialize_with = "failures")]
    failed: &'a [Failure],
    mode: Mode,
    mutation: &'static str,
    reason: &'a str,
    requested: u64,
    unchanged: u64,
}

/// Each changed row's `RecordChange` (one field, from `before(row)` to
/// `after`), written as the rows are walked.
struct Changes<'a, F> {
    entity: &'static str,
    field: &'a str,
    after: serde_json::Value,
    rows: &'a [i64],
    before: F,
}

impl<F: Fn(i64) -> serde_json::Value> Serialize for Changes<'_, F> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.rows.iter().map(|row| RecordChange {
            entity: self.entity.to_owned(),
            record: *row,
            fields: vec![FieldChange {
                field: self.field.to_owned(),
                before: (self.before)(*row),
                after: self.after.clone(),
            }],
        }))
    }
}

/// Failures with their names in order, as the other details.
fn failures<S: serde::Serializer>(failed: &&[Failure], serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Sorted<'a> {
        code: FailureCode,
        id: &'a str,
        reason: &'a str,
    }
    serializer.collect_seq(failed.iter().map(|f| Sorted {
        code: f.code,
        id: &f.id,
        reason: &f.reason,
    }))
}

/// Runs `op` over `input` as `principal`. `audit` builds the operation's audit
/// event from the details of what happened (a JSON object's text); it is
/// written in the transaction.
pub async fn run(
    store: &Store,
    op: &dyn BulkOperation,
    input: &BulkInput,
    principal: &str,
    limits: BulkLimits,
    audit: impl FnOnce(String) -> NewAuditEvent,
) -> Result<BulkOutcome, DomainError> {
    if input.items.is_empty() {
        return Err(DomainError::Invalid {
            field: "ids",
            message: "give at least one id".into(),
        });
    }
    if input.items.len() > limits.max_items {
        return Err(DomainError::TooManyItems {
            given: input.items.len(),
            max: limits.max_items,
        });
    }
    if input.reason.trim().is_empty() {
        return Err(DomainError::Invalid {
            field: "reason",
            message: "say why (it goes to the audit log)".into(),
        });
    }
    let now = Utc::now();
    let hash = request_hash(op, input);
    let key = Idempotency::of(
        principal,
        input.idempotency_key.as_deref(),
        op.name(),
        &hash,
    )?;
    if let Some(key) = &key
        && let Some(mut outcome) = key.replayed::<BulkOutcome>(store, now).await?
    {
        outcome.replayed = true;
        return Ok(outcome);
    }

    // Each id once: a repeated one is reported once and changed once.
    let mut seen = std::collections::HashSet::new();
    let mut items: Vec<&Item> = Vec::with_capacity(input.items.len());
    let mut duplicate_ids: Vec<String> = Vec::new();
    for item in &input.items {
        let key = match item.row {
            Some(row) => Ok(row),
            None => Err(item.given.as_str()),
        };
        if seen.insert(key) {
            items.push(item);
        } else if !duplicate_ids.contains(&item.given) {
            duplicate_ids.push(item.given.clone());
        }
    }
    // The ids of `rows`, as given and in the order given.
    let as_given = |rows: &BTreeSet<i64>| -> Vec<String> {
        items
            .iter()
            .filter(|i| i.row.is_some_and(|r| rows.contains(&r)))
            .map(|i| i.given.clone())
            .collect()
    };

    // Validate every item against the rows as they are, locked.
    let mut rows: Vec<i64> = items.iter().filter_map(|i| i.row).collect();
    rows.sort_unstable();
    rows.dedup();
    let txn = store.begin_write().await?;
    let states = sql::lock_states(&txn, op.table(), &op.state_expr(), &rows).await?;
    let mut to_change = BTreeSet::new();
    let mut unchanged = BTreeSet::new();
    let mut failed = Vec::new();
    for item in &items {
        let Some(row) = item.row else {
            failed.push(Failure {
                id: item.given.clone(),
                code: FailureCode::NotAnId,
                reason: op.malformed().into(),
            });
            continue;
        };
        match states.get(&row).map(|s| op.check(s)) {
            None => failed.push(Failure {
                id: item.given.clone(),
                code: FailureCode::NotFound,
                reason: "not found".into(),
            }),
            Some(Check::Fail(reason)) => failed.push(Failure {
                id: item.given.clone(),
                code: FailureCode::NotAllowed,
                reason,
            }),
            Some(Check::Change) => {
                to_change.insert(row);
            }
            Some(Check::Unchanged) => {
                unchanged.insert(row);
            }
        }
    }
    let blocked = input.mode == Mode::AllOrNothing && !failed.is_empty();
    let apply = !input.dry_run && !blocked;
    let ids: Vec<i64> = to_change.iter().copied().collect();
    if apply && !ids.is_empty() {
        let (column, value) = op.assignment();
        sql::set_column(
            &txn,
            op.table(),
            column,
            value,
            op.stamps_updated_at().then_some(now),
            &ids,
        )
        .await?;
    }
    let outcome = BulkOutcome {
        requested: input.items.len() as u64,
        // In a dry run: what would change.
        changed: if blocked { 0 } else { ids.len() as u64 },
        unchanged: unchanged.len() as u64,
        dry_run: input.dry_run,
        failed,
        changed_ids: if blocked {
            Vec::new()
        } else {
            as_given(&to_change)
        },
        unchanged_ids: as_given(&unchanged),
        duplicate_ids,
        replayed: false,
    };
    let changed_rows: &[i64] = if apply { &ids } else { &[] };
    let field = op.field();
    let touched: Vec<Touched> = changed_rows
        .iter()
        .map(|id| (op.entity(), *id, field.clone()))
        .collect();
    let details = Details {
        applied: apply,
        change: op.describe(),
        changed: outcome.changed,
        changed_ids: changed_rows,
        changes: Changes {
            entity: op.entity(),
            field: &field,
            after: op.after(),
            rows: changed_rows,
            before: |id| states.get(&id).map(|s| op.before(s)).unwrap_or_default(),
        },
        dry_run: input.dry_run,
        failed: &outcome.failed,
        mode: input.mode,
        mutation: op.name(),
        reason: &input.reason,
        requested: outcome.requested,
        unchanged: outcome.unchanged,
    };
    // Written as text straight from the rows: 10,000 changes built as a JSON
    // tree first would hold a dozen megabytes for the length of the request.
    let details = serde_json::to_string(&details)
        .expect("bulk details are plain JSON: no map has keys other than text");
    append_change(&txn, audit(details), &touched).await?;
    if let (Some(key), false) = (&key, input.dry_run) {
        key.remember(&txn, &outcome, now, limits.idempotency_ttl)
            .await?;
    }
    txn.commit().await.map_err(crate::store::StoreError::from)?;
    if !input.dry_run {
        for (outcome_label, n) in [
            ("changed", outcome.changed),
            ("unchanged", outcome.unchanged),
            ("failed", outcome.failed.len() as u64),
        ] {
            metrics::counter!("backplane_bulk_items_total", "mutation" => op.name(), "outcome" => outcome_label)
                .increment(n);
        }
    }
    Ok(outcome)
}
