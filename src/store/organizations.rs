//! Queries over organizations and their plans.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, ColumnTrait, EntityTrait, QueryFilter};

use super::entities::{organization, plan};
use super::page::{Page, PageRequest, Sort, root_page};
use super::sql::{Conditions, Sql};
use super::{Store, StoreError};
use crate::catalog;

pub use organization::OrganizationStatus;

/// Which organizations to list.
#[derive(Clone, Debug, Default)]
pub struct OrganizationQuery {
    /// Any of these statuses; all when empty.
    pub statuses: Vec<OrganizationStatus>,
    /// Case-insensitive text in the name or slug.
    pub search: Option<String>,
    /// Only those subscribed to this plan.
    pub plan_code: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

pub async fn list(
    store: &Store,
    query: &OrganizationQuery,
    sort: Sort,
    req: &PageRequest,
) -> Result<Page<organization::Model>, StoreError> {
    root_page(
        store,
        catalog::table("Organization"),
        &conditions(query),
        sort,
        req,
    )
    .await
}

/// `query` as a SQL condition on the alias `c` of `organizations` (empty for
/// none).
pub(crate) fn conditions(query: &OrganizationQuery) -> Sql {
    let mut c = Conditions::default();
    let statuses: Vec<String> = query.statuses.iter().map(|s| s.to_value()).collect();
    c.any_of("status", &statuses);
    c.contains_text(&["name", "slug"], query.search.as_deref());
    if let Some(code) = &query.plan_code {
        // The organization's plan, as the catalog joins it.
        let (table, back, forward, plans) = catalog::through("Organization", "plan");
        let code_column = catalog::column_of("Plan", "code");
        c.and()
            .push(&format!(
                "EXISTS (SELECT 1 FROM \"{table}\" s JOIN \"{plans}\" pl ON pl.\"id\" = s.\"{forward}\" WHERE s.\"{back}\" = c.\"id\" AND pl.\"{code_column}\" = "
            ))
            .bind(code.clone())
            .push(")");
    }
    c.compare("created_at", ">=", query.created_after);
    c.compare("created_at", "<", query.created_before);
    c.into_sql()
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
