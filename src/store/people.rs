//! Queries over customer users, staff members, invoices and tickets: the lists a
//! back office searches.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, ColumnTrait, EntityTrait, QueryFilter};

use super::entities::{invoice, staff_member, support_ticket, user};
use super::page::{Page, PageRequest, Sort, root_page};
use super::sql::{Conditions, Sql};
use super::{Store, StoreError};
use crate::catalog;

/// Which users to list.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    pub statuses: Vec<user::UserStatus>,
    /// Case-insensitive text in the email or name.
    pub search: Option<String>,
    pub organization_id: Option<i64>,
}

pub async fn users(
    store: &Store,
    query: &UserQuery,
    sort: Sort,
    req: &PageRequest,
) -> Result<Page<user::Model>, StoreError> {
    root_page(
        store,
        catalog::table("User"),
        &user_conditions(query),
        sort,
        req,
    )
    .await
}

/// `query` as a SQL condition on `users` (empty for none).
pub(crate) fn user_conditions(query: &UserQuery) -> Sql {
    let mut c = Conditions::default();
    let statuses: Vec<String> = query.statuses.iter().map(|s| s.to_value()).collect();
    c.any_of("status", &statuses);
    c.contains_text(&["email", "name"], query.search.as_deref());
    c.compare(
        catalog::foreign_key("User", "organization"),
        "=",
        query.organization_id,
    );
    c.into_sql()
}

/// A user by email, case-insensitively (emails are stored lower-case).
pub async fn user_by_email(store: &Store, email: &str) -> Result<Option<user::Model>, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.trim().to_lowercase()))
        .one(store.db())
        .await?)
}

/// Which invoices to list.
#[derive(Clone, Debug, Default)]
pub struct InvoiceQuery {
    pub statuses: Vec<invoice::InvoiceStatus>,
    pub organization_id: Option<i64>,
    pub currency: Option<String>,
    pub issued_after: Option<DateTime<Utc>>,
    pub issued_before: Option<DateTime<Utc>>,
    /// Text in the invoice number.
    pub search: Option<String>,
}

pub async fn invoices(
    store: &Store,
    query: &InvoiceQuery,
    sort: Sort,
    req: &PageRequest,
) -> Result<Page<invoice::Model>, StoreError> {
    root_page(
        store,
        catalog::table("Invoice"),
        &invoice_conditions(query),
        sort,
        req,
    )
    .await
}

/// `query` as a SQL condition on `invoices` (empty for none).
pub(crate) fn invoice_conditions(query: &InvoiceQuery) -> Sql {
    let mut c = Conditions::default();
    let statuses: Vec<String> = query.statuses.iter().map(|s| s.to_value()).collect();
    c.any_of("status", &statuses);
    c.compare(
        catalog::foreign_key("Invoice", "organization"),
        "=",
        query.organization_id,
    );
    c.compare("currency", "=", query.currency.clone());
    c.compare("issued_at", ">=", query.issued_after);
    c.compare("issued_at", "<", query.issued_before);
    c.contains_text(&["number"], query.search.as_deref());
    c.into_sql()
}

/// Which tickets to list.
#[derive(Clone, Debug, Default)]
pub struct TicketQuery {
    pub statuses: Vec<support_ticket::TicketStatus>,
    pub priorities: Vec<support_ticket::TicketPriority>,
    pub organization_id: Option<i64>,
    pub assignee_id: Option<i64>,
    /// Text in the subject.
    pub search: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

pub async fn tickets(
    store: &Store,
    query: &TicketQuery,
    sort: Sort,
    req: &PageRequest,
) -> Result<Page<support_ticket::Model>, StoreError> {
    root_page(
        store,
        catalog::table("SupportTicket"),
        &ticket_conditions(query),
        sort,
        req,
    )
    .await
}

/// `query` as a SQL condition on `support_tickets` (empty for none).
pub(crate) fn ticket_conditions(query: &TicketQuery) -> Sql {
    let mut c = Conditions::default();
    let statuses: Vec<String> = query.statuses.iter().map(|s| s.to_value()).collect();
    c.any_of("status", &statuses);
    let priorities: Vec<String> = query.priorities.iter().map(|s| s.to_value()).collect();
    c.any_of("priority", &priorities);
    c.compare(
        catalog::foreign_key("SupportTicket", "organization"),
        "=",
        query.organization_id,
    );
    c.compare(
        catalog::foreign_key("SupportTicket", "assignee"),
        "=",
        query.assignee_id,
    );
    c.contains_text(&["subject"], query.search.as_deref());
    c.compare("created_at", ">=", query.created_after);
    c.compare("created_at", "<", query.created_before);
    c.into_sql()
}

pub async fn staff(
    store: &Store,
    sort: Sort,
    req: &PageRequest,
) -> Result<Page<staff_member::Model>, StoreError> {
    root_page(
        store,
        catalog::table("StaffMember"),
        &Default::default(),
        sort,
        req,
    )
    .await
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
