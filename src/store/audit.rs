//! The audit log: appending to its hash chain, reading it, verifying it.
//!
//! Each row holds the hash of the row before it (`prev_hash`) and its own
//! `hash = SHA-256(prev_hash ‖ its fields)`, so changing, removing or inserting a
//! row anywhere breaks the chain from there on. Appends are serialized — by a
//! transaction-scoped advisory lock on PostgreSQL, so that several Backplane
//! instances writing to one database still form one chain, and by the single
//! writer of SQLite — and take the chain's head inside the same transaction as
//! the rows they add.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryOrder, QuerySelect,
};
use sha2::{Digest, Sha256};

use super::entities::audit_event;
use super::page::{Page, PageRequest, Sort, root_page};
use super::sql::Sql;
use super::{Store, StoreError};

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The advisory-lock key that serializes appends on PostgreSQL ("audit" in ASCII).
const CHAIN_LOCK: i64 = 0x0061_7564_6974;

/// One audit event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub occurred_at: DateTime<Utc>,
    pub actor_subject: String,
    pub actor_roles: String,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    /// `query` or `mutation`; `request` for a request refused before it
    /// became an operation (see `details`).
    pub operation_type: String,
    pub operation_name: Option<String>,
    pub document_hash: String,
    /// JSON, secrets redacted.
    pub variables: String,
    /// JSON array of `Type.field`.
    pub sensitive_fields: String,
    /// `ok`, `partial`, `denied` or `error`.
    pub outcome: String,
    pub duration_ms: i64,
    /// JSON: what a mutation changed.
    pub details: Option<String>,
}

/// The hash of a row: SHA-256 over the previous hash and every field, each
/// length-prefixed so that no two different rows serialize alike.
pub fn row_hash(prev_hash: &str, e: &NewAuditEvent) -> String {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    put(prev_hash);
    put(&e
        .occurred_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    put(&e.actor_subject);
    put(&e.actor_roles);
    put(e.client_addr.as_deref().unwrap_or("\u{0}"));
    put(e.request_id.as_deref().unwrap_or("\u{0}"));
    put(&e.operation_type);
    put(e.operation_name.as_deref().unwrap_or("\u{0}"));
    put(&e.document_hash);
    put(&e.variables);
    put(&e.sensitive_fields);
    put(&e.outcome);
    put(&e.duration_ms.to_string());
    put(e.details.as_deref().unwrap_or("\u{0}"));
    hex::encode(h.finalize())
}

/// Most events one `INSERT` statement carries.
const INSERT_CHUNK: usize = 500;

/// Appends `events` to the chain inside `txn`, in order, and returns the new
/// head's hash (`None` when there was nothing to append). The caller commits:
/// with its own changes, for a mutation.
pub async fn append(
    txn: &DatabaseTransaction,
    events: &[NewAuditEvent],
) -> Result<Option<String>, StoreError> {
    if events.is_empty() {
        return Ok(None);
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({CHAIN_LOCK})"))
            .await?;
    }
    let head = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::Hash)
        .order_by_desc(audit_event::Column::Id)
        .limit(1)
        .into_tuple::<String>()
        .one(txn)
        .await?;
    let mut prev = head.unwrap_or_else(|| GENESIS.to_owned());
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        let hash = row_hash(&prev, e);
        rows.push(audit_event::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            occurred_at: sea_orm::ActiveValue::Set(e.occurred_at),
            actor_subject: sea_orm::ActiveValue::Set(e.actor_subject.clone()),
            actor_roles: sea_orm::ActiveValue::Set(e.actor_roles.clone()),
            client_addr: sea_orm::ActiveValue::Set(e.client_addr.clone()),
            request_id: sea_orm::ActiveValue::Set(e.request_id.clone()),
            operation_type: sea_orm::ActiveValue::Set(e.operation_type.clone()),
            operation_name: sea_orm::ActiveValue::Set(e.operation_name.clone()),
            document_hash: sea_orm::ActiveValue::Set(e.document_hash.clone()),
            variables: sea_orm::ActiveValue::Set(e.variables.clone()),
            sensitive_fields: sea_orm::ActiveValue::Set(e.sensitive_fields.clone()),
            outcome: sea_orm::ActiveValue::Set(e.outcome.clone()),
            duration_ms: sea_orm::ActiveValue::Set(e.duration_ms),
            details: sea_orm::ActiveValue::Set(e.details.clone()),
            prev_hash: sea_orm::ActiveValue::Set(prev.clone()),
            hash: sea_orm::ActiveValue::Set(hash.clone()),
        });
        prev = hash;
    }
    // One multi-row `INSERT … VALUES` per chunk: both backends number the rows
    // of a VALUES list in its order, so ids follow the chain (and the chain lock
    // keeps other writers out until the commit). 16 values a row; SQLite binds
    // at most 32,766 per statement.
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(INSERT_CHUNK).collect();
        audit_event::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(Some(prev))
}

/// Appends `events` in a transaction of their own (read events); returns the
/// new head's hash.
pub async fn append_now(
    store: &Store,
    events: &[NewAuditEvent],
) -> Result<Option<String>, StoreError> {
    let txn = store.begin_write().await?;
    let head = append(&txn, events).await?;
    txn.commit().await?;
    Ok(head)
}

/// Appends `events` after the row whose hash is `head` (the last one this
/// writer appended) in one statement, on PostgreSQL: no transaction of its own,
/// no reading of the head. Returns the new head's hash, or `None` when `head`
/// is no longer the chain's head (another writer appended since, or the
/// database is SQLite): the caller then appends with [`append_now`].
///
/// The statement takes the chain lock like every append, inserts only when
/// the head it sees is `head`, and the unique `prev_hash` index refuses the
/// rows if another writer's append committed while the statement waited for
/// the lock (its snapshot predates it): in every case the chain cannot fork.
pub async fn append_after(
    store: &Store,
    head: &str,
    events: &[NewAuditEvent],
) -> Result<Option<String>, StoreError> {
    let db = store.db();
    if events.is_empty() {
        return Ok(Some(head.to_owned()));
    }
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let mut prev = head.to_owned();
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        let hash = row_hash(&prev, e);
        rows.push(serde_json::json!({
            // As the hash took it: in microseconds.
            "occurred_at": e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "actor_subject": e.actor_subject,
            "actor_roles": e.actor_roles,
            "client_addr": e.client_addr,
            "request_id": e.request_id,
            "operation_type": e.operation_type,
            "operation_name": e.operation_name,
            "document_hash": e.document_hash,
            "variables": e.variables,
            "sensitive_fields": e.sensitive_fields,
            "outcome": e.outcome,
            "duration_ms": e.duration_ms,
            "details": e.details,
            "prev_hash": prev,
            "hash": hash,
        }));
        prev = hash;
    }
    let statement = sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        APPEND_AFTER.as_str(),
        [
            sea_orm::Value::from(serde_json::Value::Array(rows).to_string()),
            sea_orm::Value::from(head.to_owned()),
        ],
    );
    let result = match db.execute_raw(statement).await {
        Ok(result) => result,
        Err(err)
            if matches!(
                err.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    };
    Ok((result.rows_affected() == events.len() as u64).then_some(prev))
}

/// [`append_after`]'s statement: `$1` the rows as a JSON array, in chain order;
/// `$2` the head they follow.
static APPEND_AFTER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    const COLUMNS: &str = "occurred_at, actor_subject, actor_roles, client_addr, request_id, \
        operation_type, operation_name, document_hash, variables, sensitive_fields, outcome, \
        duration_ms, details, prev_hash, hash";
    format!(
        "WITH chain AS MATERIALIZED (SELECT pg_advisory_xact_lock({CHAIN_LOCK})) \
         INSERT INTO audit_events ({COLUMNS}) SELECT {COLUMNS} \
         FROM chain, ROWS FROM (json_to_recordset($1::json) AS (occurred_at timestamptz, \
         actor_subject text, actor_roles text, client_addr text, request_id text, \
         operation_type text, operation_name text, document_hash text, variables text, \
         sensitive_fields text, outcome text, duration_ms int8, details text, prev_hash text, \
         hash text)) WITH ORDINALITY AS e({COLUMNS}, n) \
         WHERE (SELECT h.hash FROM audit_events h ORDER BY h.id DESC LIMIT 1) = $2 \
         ORDER BY e.n"
    )
});

/// The chain's head: the newest row's id and hash; `None` when empty.
pub async fn head(store: &Store) -> Result<Option<(i64, String)>, StoreError> {
    newest_below(store.db(), None).await
}

/// The newest row's id and hash, of those below the id `below` when given.
async fn newest_below(
    db: &impl ConnectionTrait,
    below: Option<i64>,
) -> Result<Option<(i64, String)>, StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let mut find = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::Id)
        .column(audit_event::Column::Hash);
    if let Some(below) = below {
        find = find.filter(audit_event::Column::Id.lt(below));
    }
    Ok(find
        .order_by_desc(audit_event::Column::Id)
        .limit(1)
        .into_tuple::<(i64, String)>()
        .one(db)
        .await?)
}

/// What a prune removed: the events up to row `through_id` (`rows` of them),
/// the last of which had `through_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub through_id: i64,
    pub through_hash: String,
    pub rows: u64,
}

/// The newest prune's row and hash: where the remaining chain starts.
pub async fn pruned_through(store: &Store) -> Result<Option<(i64, String)>, StoreError> {
    let db = store.db();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT through_id, through_hash FROM audit_prunes ORDER BY through_id DESC LIMIT 1",
        ))
        .await?;
    Ok(match row {
        None => None,
        Some(row) => Some((row.try_get_by_index(0)?, row.try_get_by_index(1)?)),
    })
}

/// Removes the oldest events, those before `before` (up to the first event
/// at or after it, and never the newest, which the next append follows),
/// with their history index rows, and records the last one's id and hash in
/// `audit_prunes`, in one transaction under the chain lock. `vouch` is
/// called with that row's id and hash before the commit (to sign and write a
/// checkpoint of it): when it fails, nothing is removed. `None` when there
/// is nothing to remove.
pub async fn prune(
    store: &Store,
    before: DateTime<Utc>,
    vouch: impl FnOnce(i64, &str) -> Result<(), String>,
) -> Result<Option<Pruned>, StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let txn = store.begin_write().await?;
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({CHAIN_LOCK})"))
            .await?;
    }
    let Some((newest, _)) = newest_below(&txn, None).await? else {
        return Ok(None);
    };
    let first_kept = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::Id)
        .filter(audit_event::Column::OccurredAt.gte(before))
        .order_by_asc(audit_event::Column::Id)
        .limit(1)
        .into_tuple::<i64>()
        .one(&txn)
        .await?
        .unwrap_or(newest)
        .min(newest);
    let Some((through_id, through_hash)) = newest_below(&txn, Some(first_kept)).await? else {
        return Ok(None);
    };
    vouch(through_id, &through_hash).map_err(StoreError::Unvouched)?;
    let mut sql = super::sql::Sql::default();
    sql.push("DELETE FROM audit_changes WHERE event_id <= ")
        .bind(through_id);
    txn.execute_raw(sql.build(backend)).await?;
    let removed = audit_event::Entity::delete_many()
        .filter(audit_event::Column::Id.lte(through_id))
        .exec(&txn)
        .await?
        .rows_affected;
    let mut sql = super::sql::Sql::default();
    sql.push(
        "INSERT INTO audit_prunes (through_id, through_hash, before, rows, pruned_at) VALUES (",
    )
    .bind(through_id)
    .push(", ")
    .bind(through_hash.clone())
    .push(", ")
    .bind(before)
    .push(", ")
    .bind(removed as i64)
    .push(", ")
    .bind(Utc::now())
    .push(")");
    txn.execute_raw(sql.build(backend)).await?;
    txn.commit().await?;
    Ok(Some(Pruned {
        through_id,
        through_hash,
        rows: removed,
    }))
}

/// What `backplane audit verify` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// Every row links to the one before it and matches its hash.
    Intact { rows: u64 },
    /// The first row that does not: it was changed, or a row before it was
    /// removed, or it was inserted out of order.
    Broken { row_id: i64, reason: String },
}

/// Walks the chain in id order.
pub async fn verify(store: &Store) -> Result<Verification, StoreError> {
    let report = verify_against(store, &[]).await?;
    Ok(match report.broken {
        None => Verification::Intact { rows: report.rows },
        Some((row_id, reason)) => Verification::Broken { row_id, reason },
    })
}

/// What [`verify_against`] found.
#[derive(Debug, Default)]
pub struct Report {
    /// Rows walked (up to a break).
    pub rows: u64,
    /// The first row that breaks the chain, and why.
    pub broken: Option<(i64, String)>,
    /// Everything found, the break included, each naming where.
    pub problems: Vec<String>,
}

/// Walks the chain in id order, and holds it against `checkpoints` (each
/// with where it was read, for the report; their signatures already
/// checked): a checkpoint's row must be in the chain with the checkpoint's
/// hash, which a deletion of the newest rows and a rewritten stretch hashed
/// again both fail.
pub async fn verify_against(
    store: &Store,
    checkpoints: &[(String, Checkpoint)],
) -> Result<Report, StoreError> {
    const PAGE: u64 = 5_000;
    let mut walk = Walk::new(checkpoints);
    if let Some((through, hash)) = pruned_through(store).await? {
        walk.start_after(through, hash, true);
    }
    let mut last_id = 0i64;
    loop {
        use sea_orm::{ColumnTrait, QueryFilter};
        let page = audit_event::Entity::find()
            .filter(audit_event::Column::Id.gt(last_id))
            .order_by_asc(audit_event::Column::Id)
            .limit(PAGE)
            .all(store.db())
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        last_id = last.id;
        for row in &page {
            if !walk.row(row) {
                return Ok(walk.report);
            }
        }
    }
    Ok(walk.finish(true))
}

/// Verifies a copy of the log as `backplane audit export` writes it (one
/// event a line, with its id and hashes), against `checkpoints`: the copy
/// must be one unbroken stretch of the chain (from its start, or after a row
/// it does not hold), and every checkpoint of a row it holds must match.
pub fn verify_copy(
    copy: impl std::io::BufRead,
    checkpoints: &[(String, Checkpoint)],
) -> Result<Report, String> {
    let mut walk = Walk::new(checkpoints);
    let mut first = true;
    for (n, line) in copy.lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let row: audit_event::Model =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 1))?;
        if first && row.prev_hash != GENESIS {
            walk.start_after(row.id - 1, row.prev_hash.clone(), false);
        }
        first = false;
        if !walk.row(&row) {
            return Ok(walk.report);
        }
    }
    Ok(walk.finish(false))
}

/// The events that occurred in `[since, until)`, in chain order, `PAGE` at
/// a time, each handed to `each`.
pub async fn export(
    store: &Store,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    mut each: impl FnMut(audit_event::Model) -> Result<(), String>,
) -> Result<u64, String> {
    use sea_orm::{ColumnTrait, QueryFilter};
    const PAGE: u64 = 5_000;
    let mut last_id = 0i64;
    let mut rows = 0;
    loop {
        let mut find = audit_event::Entity::find().filter(audit_event::Column::Id.gt(last_id));
        if let Some(since) = since {
            find = find.filter(audit_event::Column::OccurredAt.gte(since));
        }
        if let Some(until) = until {
            find = find.filter(audit_event::Column::OccurredAt.lt(until));
        }
        let page = find
            .order_by_asc(audit_event::Column::Id)
            .limit(PAGE)
            .all(store.db())
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else {
            return Ok(rows);
        };
        last_id = last.id;
        for row in page {
            each(row)?;
            rows += 1;
        }
    }
}

use crate::audit::checkpoint::{Checkpoint, Kind};

/// A walk along the chain, row by row, holding it against checkpoints.
struct Walk<'c> {
    /// Checkpoints not yet reached, the lowest row last.
    pending: Vec<&'c (String, Checkpoint)>,
    all: &'c [(String, Checkpoint)],
    report: Report,
    prev: String,
    last_id: i64,
}

impl<'c> Walk<'c> {
    fn new(checkpoints: &'c [(String, Checkpoint)]) -> Self {
        let mut pending: Vec<_> = checkpoints.iter().collect();
        pending.sort_by_key(|(_, c)| std::cmp::Reverse(c.sequence));
        Walk {
            pending,
            all: checkpoints,
            report: Report::default(),
            prev: GENESIS.to_owned(),
            last_id: 0,
        }
    }

    /// The chain starts after row `through`, whose hash was `hash`: pruned
    /// (`pruned`, which a signed checkpoint must vouch for), or not in a copy.
    /// Checkpoints of the rows before have nothing to be held against.
    fn start_after(&mut self, through: i64, hash: String, pruned: bool) {
        if pruned && !self.all.is_empty() {
            let vouched = self
                .all
                .iter()
                .any(|(_, c)| c.kind == Kind::Pruned && c.sequence == through && c.hash == hash);
            if !vouched {
                self.report.problems.push(format!(
                    "the chain starts after row {through} (pruned), but no signed checkpoint says rows up to {through} were pruned"
                ));
            }
        }
        self.pending.retain(|(_, c)| c.sequence > through);
        self.prev = hash;
    }

    fn named((place, c): &(String, Checkpoint)) -> String {
        format!(
            "{place}: the checkpoint of {} at row {} ({})",
            c.instance,
            c.sequence,
            c.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }

    /// Takes the next row; false once the chain is broken (the walk stops).
    fn row(&mut self, row: &audit_event::Model) -> bool {
        let broken = if row.prev_hash != self.prev {
            Some(
                "it does not follow the row before it (a row was removed or inserted out of order)",
            )
        } else if row_hash(&self.prev, &event_of(row)) != row.hash {
            Some("its content does not match its hash (it was changed)")
        } else {
            None
        };
        if let Some(reason) = broken {
            self.report
                .problems
                .push(format!("audit log broken at row {}: {reason}", row.id));
            self.report.broken = Some((row.id, reason.to_owned()));
            return false;
        }
        while let Some(checkpoint) = self.pending.last().copied() {
            let c = &checkpoint.1;
            if c.sequence > row.id {
                break;
            }
            self.pending.pop();
            if c.sequence < row.id {
                self.report.problems.push(format!(
                    "{}: the chain has no row {} (rows were removed and the chain hashed again)",
                    Self::named(checkpoint),
                    c.sequence
                ));
            } else if c.hash != row.hash {
                self.report.problems.push(format!(
                    "{}: the chain's row {} has another hash (rows up to it were rewritten and hashed again)",
                    Self::named(checkpoint),
                    c.sequence
                ));
            }
        }
        self.prev = row.hash.clone();
        self.last_id = row.id;
        self.report.rows += 1;
        true
    }

    /// The report; checkpoints past the last row are deletions when `whole`
    /// (the database), and out of reach of a copy otherwise.
    fn finish(mut self, whole: bool) -> Report {
        if whole {
            for checkpoint in self.pending.into_iter().rev() {
                self.report.problems.push(format!(
                    "{}: the chain ends at row {} (its newest rows were deleted)",
                    Self::named(checkpoint),
                    self.last_id
                ));
            }
        }
        self.report
    }
}

/// The event a stored row holds, as its hash took it.
fn event_of(row: &audit_event::Model) -> NewAuditEvent {
    NewAuditEvent {
        occurred_at: row.occurred_at,
        actor_subject: row.actor_subject.clone(),
        actor_roles: row.actor_roles.clone(),
        client_addr: row.client_addr.clone(),
        request_id: row.request_id.clone(),
        operation_type: row.operation_type.clone(),
        operation_name: row.operation_name.clone(),
        document_hash: row.document_hash.clone(),
        variables: row.variables.clone(),
        sensitive_fields: row.sensitive_fields.clone(),
        outcome: row.outcome.clone(),
        duration_ms: row.duration_ms,
        details: row.details.clone(),
    }
}

/// One audit event by its row id.
pub async fn event(store: &Store, id: i64) -> Result<Option<audit_event::Model>, StoreError> {
    use sea_orm::EntityTrait;
    Ok(audit_event::Entity::find_by_id(id).one(store.db()).await?)
}

/// A page of the audit log under `conditions` (on alias `c`).
pub(crate) async fn list(
    store: &Store,
    conditions: &Sql,
    sort: Sort,
    req: &PageRequest,
) -> Result<Page<audit_event::Model>, StoreError> {
    root_page(store, "audit_events", conditions, sort, req).await
}
