//! Queries over customer users, staff members, invoices and tickets: the lists a
//! back office searches.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::entities::{staff_member, user};
use super::{Store, StoreError};

/// A user by email, case-insensitively (emails are stored lower-case).
pub async fn user_by_email(store: &Store, email: &str) -> Result<Option<user::Model>, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.trim().to_lowercase()))
        .one(store.db())
        .await?)
}

pub async fn staff_by_subject(
    store: &Store,
    subject: &str,
) -> Result<Option<staff_member::Model>, StoreError> {
    Ok(staff_member::Entity::find()
        .filter(staff_member::Column::Subject.eq(subject))
        .one(store.db())
        .await?)
}

/// Records a staff member seen in a token: created the first time, refreshed
/// (email, name, roles, last seen) after that.
pub async fn upsert_staff(
    store: &Store,
    subject: &str,
    email: &str,
    name: &str,
    roles: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use sea_orm::ActiveValue::{NotSet, Set};
    use sea_orm::sea_query::OnConflict;

    let row = staff_member::ActiveModel {
        id: NotSet,
        subject: Set(subject.to_owned()),
        email: Set(email.to_owned()),
        name: Set(name.to_owned()),
        roles: Set(roles.to_owned()),
        last_seen_at: Set(Some(now)),
        created_at: Set(now),
    };
    staff_member::Entity::insert(row)
        .on_conflict(
            OnConflict::column(staff_member::Column::Subject)
                .update_columns([
                    staff_member::Column::Email,
                    staff_member::Column::Name,
                    staff_member::Column::Roles,
                    staff_member::Column::LastSeenAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(store.db())
        .await?;
    Ok(())
}
