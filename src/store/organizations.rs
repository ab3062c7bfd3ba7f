//! Queries over organizations and their plans.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::entities::{organization, plan};
use super::sql::Sql;
use super::{Store, StoreError};
use crate::catalog;

pub use organization::OrganizationStatus;

/// Organizations subscribed to any of the plans of these codes, through the
/// subscription the catalog joins them by; an empty set matches nothing.
pub(crate) fn on_plans(codes: &[String]) -> Sql {
    let mut sql = Sql::default();
    if codes.is_empty() {
        sql.push("1 = 0");
        return sql;
    }
    let (table, back, forward, plans) = catalog::through("Organization", "plan");
    let code_column = catalog::column_of("Plan", "code");
    sql.push(&format!(
        "EXISTS (SELECT 1 FROM \"{table}\" s JOIN \"{plans}\" pl ON pl.\"id\" = s.\"{forward}\" WHERE s.\"{back}\" = c.\"id\" AND pl.\"{code_column}\" IN "
    ))
    .bind_list(codes)
    .push(")");
    sql
}

pub async fn by_slug(store: &Store, slug: &str) -> Result<Option<organization::Model>, StoreError> {
    Ok(organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(store.db())
        .await?)
}

pub async fn plans(store: &Store) -> Result<Vec<plan::Model>, StoreError> {
    use sea_orm::QueryOrder;
    Ok(plan::Entity::find()
        .order_by_asc(plan::Column::PriceCents)
        .all(store.db())
        .await?)
}
