//! Set-based reads and writes for bulk operations: one statement per table for
//! the whole set (PostgreSQL binds the ids as one array; SQLite as a list, in
//! chunks below its bind limit), inside the caller's transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, Value,
};

use super::entities::idempotency_key;
use super::sql::Sql;
use super::{Store, StoreError};

/// SQLite binds at most 32766 values per statement; stay well below.
const SQLITE_CHUNK: usize = 10_000;

/// `id = ANY(?)` on PostgreSQL, `id IN (…)` on SQLite, for the column `id`.
fn ids_condition(sql: &mut Sql, backend: DbBackend, id: &str, ids: &[i64]) {
    if backend == DbBackend::Postgres {
        sql.push(&format!("{id} = ANY("))
            .bind_bigint_array(ids)
            .push(")");
    } else {
        sql.push(&format!("{id} IN ")).bind_list(ids);
    }
}

fn chunks(backend: DbBackend, ids: &[i64]) -> Vec<&[i64]> {
    if backend == DbBackend::Postgres || ids.len() <= SQLITE_CHUNK {
        vec![ids]
    } else {
        ids.chunks(SQLITE_CHUNK).collect()
    }
}

/// The current value (as text, by `state_expr` over alias `c`) of each row of
/// `table` among `ids`, locked against concurrent changes until the transaction
/// ends. Ids without a row are absent.
pub async fn lock_states(
    txn: &DatabaseTransaction,
    table: &str,
    state_expr: &str,
    ids: &[i64],
) -> Result<HashMap<i64, String>, StoreError> {
    let backend = txn.get_database_backend();
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in chunks(backend, ids) {
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT c.\"id\" AS id, {state_expr} AS state FROM \"{table}\" c WHERE "
        ));
        ids_condition(&mut sql, backend, "c.\"id\"", chunk);
        if backend == DbBackend::Postgres {
            sql.push(" FOR UPDATE");
        }
        for row in txn.query_all_raw(sql.build(backend)).await? {
            out.insert(
                row.try_get::<i64>("", "id")?,
                row.try_get::<String>("", "state")?,
            );
        }
    }
    Ok(out)
}

/// Sets `column = value` (and `updated_at`, when the table has it) on `ids`,
/// raising each row's `version` (every changeable table has one).
pub async fn set_column(
    txn: &DatabaseTransaction,
    table: &str,
    column: &str,
    value: Value,
    updated_at: Option<DateTime<Utc>>,
    ids: &[i64],
) -> Result<u64, StoreError> {
    let backend = txn.get_database_backend();
    let mut changed = 0;
    for chunk in chunks(backend, ids) {
        if chunk.is_empty() {
            continue;
        }
        let mut sql = Sql::default();
        sql.push(&format!("UPDATE \"{table}\" SET \"{column}\" = "))
            .bind(value.clone())
            .push(", \"version\" = \"version\" + 1");
        if let Some(at) = updated_at {
            sql.push(", \"updated_at\" = ").bind(at);
        }
        sql.push(" WHERE ");
        ids_condition(&mut sql, backend, "\"id\"", chunk);
        changed += txn.execute_raw(sql.build(backend)).await?.rows_affected();
    }
    Ok(changed)
}

/// A stored result for `(principal, key)` that has not expired.
pub async fn find_idempotent(
    store: &Store,
    principal: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<idempotency_key::Model>, StoreError> {
    Ok(idempotency_key::Entity::find()
        .filter(idempotency_key::Column::Principal.eq(principal))
        .filter(idempotency_key::Column::Key.eq(key))
        .filter(idempotency_key::Column::ExpiresAt.gt(now))
        .one(store.db())
        .await?)
}

/// Stores the result of the first use of `(principal, key)`, replacing an
/// expired one. A concurrent first use of the same key makes this fail with a
/// conflict, which rolls the caller's transaction back.
#[expect(clippy::too_many_arguments, reason = "one row, column by column")]
pub async fn store_idempotent(
    txn: &DatabaseTransaction,
    principal: &str,
    key: &str,
    operation: &str,
    request_hash: &str,
    result: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::Principal.eq(principal))
        .filter(idempotency_key::Column::Key.eq(key))
        .filter(idempotency_key::Column::ExpiresAt.lte(now))
        .exec(txn)
        .await?;
    idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        id: NotSet,
        principal: Set(principal.to_owned()),
        key: Set(key.to_owned()),
        operation: Set(operation.to_owned()),
        request_hash: Set(request_hash.to_owned()),
        result: Set(result.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}
