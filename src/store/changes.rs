//! The write side of single-record changes and the read side of histories:
//! the change's audit event with its index of touched fields (in the
//! caller's transaction), and the pages of a record's history.
//!
//! A record's history is read from the audit log: `audit_changes` only says
//! which event touched which field of which record (it can be rebuilt from
//! the events); the values, before and after, are in the hash-chained event.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryOrder, QuerySelect,
};

use super::audit::{NewAuditEvent, append};
use super::entities::{audit_change, audit_event};
use super::sql::Sql;
use super::{Store, StoreError};

/// Rows of `audit_changes` one `INSERT` carries (4 values a row; SQLite binds
/// at most 32,766 per statement).
const INSERT_CHUNK: usize = 5_000;

/// One field's change: its path in the catalog (`status`,
/// `internalFlags.vip`, `subscription.seats`) and its values as JSON.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// What a change did to one record of a catalog entity.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordChange {
    pub entity: String,
    /// The row id.
    pub record: i64,
    pub fields: Vec<FieldChange>,
}

/// What a change's audit event says it did (its `details`): the mutation,
/// the reason, and each record's field changes.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ChangeDetails {
    #[serde(default)]
    pub mutation: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub changes: Vec<RecordChange>,
}

impl ChangeDetails {
    /// The details of an event (its `details` column); empty when it
    /// records no change.
    pub fn of(details: Option<&str>) -> Self {
        details
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default()
    }

    /// The field changes it records for one record.
    pub fn fields_of<'a>(
        &'a self,
        entity: &'a str,
        record: i64,
    ) -> impl Iterator<Item = &'a FieldChange> + 'a {
        self.changes
            .iter()
            .filter(move |c| c.entity == entity && c.record == record)
            .flat_map(|c| c.fields.iter())
    }
}

/// One touched field of one record: `(entity, record id, field path)`.
pub type Touched = (&'static str, i64, String);

/// Appends `event` to the audit chain in `txn`, indexes the fields it
/// touched, and returns the event's id.
pub async fn append_change(
    txn: &DatabaseTransaction,
    event: NewAuditEvent,
    touched: &[Touched],
) -> Result<i64, StoreError> {
    append(txn, std::slice::from_ref(&event)).await?;
    // The chain lock (PostgreSQL) or the single writer (SQLite) is held
    // until the commit: the newest row is this one.
    let id = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::Id)
        .order_by_desc(audit_event::Column::Id)
        .limit(1)
        .into_tuple::<i64>()
        .one(txn)
        .await?
        .unwrap_or_default();
    index(txn, id, touched).await?;
    Ok(id)
}

/// Records that event `event_id` touched `touched`.
pub async fn index(
    txn: &DatabaseTransaction,
    event_id: i64,
    touched: &[Touched],
) -> Result<(), StoreError> {
    let mut rows: Vec<audit_change::ActiveModel> = Vec::with_capacity(touched.len());
    for (entity, record, field) in touched {
        rows.push(audit_change::ActiveModel {
            entity: Set((*entity).to_owned()),
            record_id: Set(*record),
            event_id: Set(event_id),
            field: Set(field.clone()),
        });
    }
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(INSERT_CHUNK));
        let chunk = std::mem::replace(&mut rows, rest);
        audit_change::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// One record's page of its history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryPage {
    /// Event ids, newest first.
    pub events: Vec<i64>,
    pub has_next_page: bool,
    pub total: Option<i64>,
}

/// The newest `first` events (after the event `before`, when given) that
/// touched any of `fields` of each of `records` of `entity`: one statement
/// for every record (a window over the records), and one more for the
/// totals when asked.
pub async fn history_pages(
    store: &Store,
    entity: &str,
    records: &[i64],
    before: Option<i64>,
    fields: &[String],
    first: u64,
    with_total: bool,
) -> Result<HashMap<i64, HistoryPage>, StoreError> {
    let mut out: HashMap<i64, HistoryPage> = HashMap::new();
    if records.is_empty() || fields.is_empty() {
        return Ok(out);
    }
    let db = store.db();
    let backend = db.get_database_backend();
    let touched = |sql: &mut Sql| {
        sql.push("FROM \"audit_changes\" WHERE \"entity\" = ")
            .bind(entity.to_owned())
            .push(" AND \"record_id\" IN ")
            .bind_list(records)
            .push(" AND \"field\" IN ")
            .bind_list(fields);
    };
    let mut sql = Sql::default();
    sql.push(
        "SELECT record_id, event_id FROM (SELECT record_id, event_id, ROW_NUMBER() OVER (PARTITION BY record_id ORDER BY event_id DESC) AS rn FROM (SELECT DISTINCT \"record_id\" AS record_id, \"event_id\" AS event_id ",
    );
    touched(&mut sql);
    if let Some(before) = before {
        sql.push(" AND \"event_id\" < ").bind(before);
    }
    sql.push(") d) w WHERE rn <= ")
        .bind((first + 1) as i64)
        .push(" ORDER BY record_id, event_id DESC");
    for row in db.query_all_raw(sql.build(backend)).await? {
        let record: i64 = row.try_get("", "record_id")?;
        let event: i64 = row.try_get("", "event_id")?;
        let page = out.entry(record).or_default();
        if page.events.len() as u64 == first {
            page.has_next_page = true;
        } else {
            page.events.push(event);
        }
    }
    if with_total {
        let mut sql = Sql::default();
        sql.push("SELECT \"record_id\" AS record_id, COUNT(DISTINCT \"event_id\") AS n ");
        touched(&mut sql);
        sql.push(" GROUP BY \"record_id\"");
        for row in db.query_all_raw(sql.build(backend)).await? {
            let record: i64 = row.try_get("", "record_id")?;
            let n: i64 = row.try_get("", "n")?;
            out.entry(record).or_default().total = Some(n);
        }
        for record in records {
            out.entry(*record).or_default().total.get_or_insert(0);
        }
    }
    Ok(out)
}

/// The audit events with these ids.
pub async fn events(
    store: &Store,
    ids: &[i64],
) -> Result<HashMap<i64, audit_event::Model>, StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::Id.is_in(ids.iter().copied()))
        .all(store.db())
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect())
}

/// The audit event with this id.
pub async fn event(store: &Store, id: i64) -> Result<Option<audit_event::Model>, StoreError> {
    Ok(audit_event::Entity::find_by_id(id).one(store.db()).await?)
}

/// The row of `E` with this id, locked against other writers until the
/// transaction ends (PostgreSQL: `FOR UPDATE`; SQLite has one writer, whose
/// transaction the caller holds).
pub async fn locked<E>(txn: &DatabaseTransaction, id: i64) -> Result<Option<E::Model>, StoreError>
where
    E: EntityTrait,
    <E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: From<i64>,
{
    Ok(E::find_by_id(id).lock_exclusive().one(txn).await?)
}

/// Writes the set columns of `model` (found by its primary key).
pub async fn update<A>(
    txn: &DatabaseTransaction,
    model: A,
) -> Result<<A::Entity as EntityTrait>::Model, StoreError>
where
    A: sea_orm::ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
{
    Ok(model.update(txn).await?)
}

/// Inserts `model` and returns the row.
pub async fn insert<A>(
    txn: &DatabaseTransaction,
    model: A,
) -> Result<<A::Entity as EntityTrait>::Model, StoreError>
where
    A: sea_orm::ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
{
    Ok(model.insert(txn).await?)
}

/// An organization's subscription, locked.
pub async fn subscription_of(
    txn: &DatabaseTransaction,
    organization: i64,
) -> Result<Option<super::entities::subscription::Model>, StoreError> {
    use super::entities::subscription;
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(subscription::Entity::find()
        .filter(subscription::Column::OrganizationId.eq(organization))
        .order_by_desc(subscription::Column::Id)
        .lock_exclusive()
        .one(txn)
        .await?)
}

/// The plan with this code.
pub async fn plan_by_code(
    txn: &DatabaseTransaction,
    code: &str,
) -> Result<Option<super::entities::plan::Model>, StoreError> {
    use super::entities::plan;
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(plan::Entity::find()
        .filter(plan::Column::Code.eq(code))
        .one(txn)
        .await?)
}

/// The plan with this id.
pub async fn plan(
    txn: &DatabaseTransaction,
    id: i64,
) -> Result<Option<super::entities::plan::Model>, StoreError> {
    Ok(super::entities::plan::Entity::find_by_id(id)
        .one(txn)
        .await?)
}

/// How many of an organization's users are active.
pub async fn active_users(txn: &DatabaseTransaction, organization: i64) -> Result<u64, StoreError> {
    use super::entities::user;
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    Ok(user::Entity::find()
        .filter(user::Column::OrganizationId.eq(organization))
        .filter(user::Column::Status.eq(user::UserStatus::Active))
        .count(txn)
        .await?)
}

/// The staff member with this id.
pub async fn staff_member(
    txn: &DatabaseTransaction,
    id: i64,
) -> Result<Option<super::entities::staff_member::Model>, StoreError> {
    Ok(super::entities::staff_member::Entity::find_by_id(id)
        .one(txn)
        .await?)
}

/// The staff member with this identity-provider subject.
pub async fn staff_with_subject(
    txn: &DatabaseTransaction,
    subject: &str,
) -> Result<Option<super::entities::staff_member::Model>, StoreError> {
    use super::entities::staff_member;
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(staff_member::Entity::find()
        .filter(staff_member::Column::Subject.eq(subject))
        .one(txn)
        .await?)
}

/// The row of `E` with this id.
pub async fn find<E>(store: &Store, id: i64) -> Result<Option<E::Model>, StoreError>
where
    E: EntityTrait,
    <E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: From<i64>,
{
    Ok(E::find_by_id(id).one(store.db()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_records_changes_are_read_back_from_the_details() {
        let event = json!({
                    "mutation": "bulkUpdateOrganizationStatus",
                    "reason": "fraud",
                    "changes": [
                        { "entity": "Organization", "record": 1, "fields": [{ "field": "status", "before": "ACTIVE", "after": "SUSPENDED" }] },
                        { "entity": "Organization", "record": 2, "fields": [{ "field": "status", "before": "TRIAL", "after": "SUSPENDED" }] },
                    ],
        })
        .to_string();
        let details = ChangeDetails::of(Some(&event));
        let two: Vec<_> = details.fields_of("Organization", 2).collect();
        assert_eq!(two.len(), 1);
        assert_eq!(two[0].before, json!("TRIAL"));
        assert_eq!(details.fields_of("Invoice", 2).count(), 0);
        assert_eq!(details.reason.as_deref(), Some("fraud"));
        assert_eq!(
            details.mutation.as_deref(),
            Some("bulkUpdateOrganizationStatus")
        );
        // An event that records no change (a read, an older bulk change).
        assert_eq!(
            ChangeDetails::of(None).fields_of("Organization", 1).count(),
            0
        );
        assert_eq!(
            ChangeDetails::of(Some("{\"mutation\":\"x\"}"))
                .changes
                .len(),
            0
        );
    }
}
