//! The root query: lists with filters and orders, lookups by id, slug and email,
//! and `viewer`.

use async_graphql::{Context, ID, Object};

use super::described::{Described, FromCatalog};
use super::error::ApiError;
use super::filter::{ListFilter, ListOrder};
use super::guard::Need;
use super::ids::{self, Kind};
use super::pagination::{Ordering, cursors, in_order, keyset_of, page_request, relay_request};
use super::types::audit::{AUDIT_NEWEST_FIRST, AuditEvent, AuditEventConnection, AuditEventFilter};
use super::types::billing::{Invoice, InvoiceConnection, InvoiceFilter, InvoiceOrder, Plan};
use super::types::load_one;
use super::types::organization::{
    Organization, OrganizationConnection, OrganizationFilter, OrganizationOrder,
};
use super::types::staff::{
    StaffMember, StaffMemberConnection, StaffMemberFilter, StaffMemberOrder, Viewer,
};
use super::types::support::{
    SupportTicket, SupportTicketConnection, SupportTicketFilter, SupportTicketOrder,
};
use super::types::user::{User, UserConnection, UserFilter, UserOrder};
use super::{principal, store};
use crate::policy::Permission;
use crate::store::loaders::{InvoiceId, OrganizationId, StaffId, TicketId, UserId};
use crate::store::page::Page;
use crate::store::{audit, organizations, people};

/// A page of a root list: its filter's conditions, in `ordering`; read
/// forwards (`first`, `after`) or backwards (`last`, `before`: the rows just
/// before a cursor, or the list's last rows, still in `ordering`).
async fn list_page<T: Described, F: ListFilter>(
    ctx: &Context<'_>,
    (first, after): (Option<i32>, Option<String>),
    (last, before): (Option<i32>, Option<String>),
    filter: Option<F>,
    ordering: &Ordering,
) -> async_graphql::Result<Page<T::Model>>
where
    T::Model: sea_orm::FromQueryResult,
{
    let req = relay_request(
        ctx,
        (first, after.as_deref()),
        (last, before.as_deref()),
        ordering,
    )?;
    let conditions = filter.unwrap_or_default().conditions()?;
    // Backwards: the same order reversed, continuing after `before`, the rows
    // then turned back. The cursors are the list's: one serves both ways.
    let page = crate::store::page::list(
        store(ctx)?,
        T::ENTITY,
        &conditions,
        req.reads(ordering.sort),
        &req,
    )
    .await
    .map_err(ApiError::from)?;
    Ok(in_order(page, &req))
}

/// The root of every read.
#[derive(Default)]
pub struct Query;

/// Every read: the lists (with `filter`, `orderBy` and Relay pages), the
/// lookups by id, slug and email, the audit log, and `viewer`, the caller.
/// What a caller sees follows their roles: a field or type they may not read
/// is not in their schema at all.
// A list's resolver takes Relay's four page arguments, a filter and an
// order: GraphQL arguments, one parameter each.
#[allow(clippy::too_many_arguments)]
#[Object]
impl Query {
    /// Any record by its id (Relay's object identification): null when
    /// there is none, or when the caller's roles may not read its type.
    async fn node(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<super::types::node::Node>> {
        super::types::node::find(ctx, principal(ctx)?, &id).await
    }

    /// Who is calling, with their roles and what they may do.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        Ok(Viewer::from(principal(ctx)?))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<OrganizationFilter>,
        order_by: Option<OrganizationOrder>,
    ) -> async_graphql::Result<OrganizationConnection> {
        let ordering = order_by.unwrap_or_default().ordering();
        let page =
            list_page::<Organization, _>(ctx, (first, after), (last, before), filter, &ordering)
                .await?;
        Ok(OrganizationConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn organization(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Organization>> {
        let id = ids::decode(Kind::Organization, &id, "id")?;
        Ok(load_one(ctx, OrganizationId(id)).await?.map(Organization))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn organization_by_slug(
        &self,
        ctx: &Context<'_>,
        slug: String,
    ) -> async_graphql::Result<Option<Organization>> {
        Ok(organizations::by_slug(store(ctx)?, slug.trim())
            .await
            .map_err(ApiError::from)?
            .map(Organization))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<UserFilter>,
        order_by: Option<UserOrder>,
    ) -> async_graphql::Result<UserConnection> {
        let ordering = order_by.unwrap_or_default().ordering();
        let page =
            list_page::<User, _>(ctx, (first, after), (last, before), filter, &ordering).await?;
        Ok(UserConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        let id = ids::decode(Kind::User, &id, "id")?;
        Ok(load_one(ctx, UserId(id)).await?.map(User))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn user_by_email(
        &self,
        ctx: &Context<'_>,
        email: String,
    ) -> async_graphql::Result<Option<User>> {
        Ok(people::user_by_email(store(ctx)?, &email)
            .await
            .map_err(ApiError::from)?
            .map(User))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<InvoiceFilter>,
        order_by: Option<InvoiceOrder>,
    ) -> async_graphql::Result<InvoiceConnection> {
        let ordering = order_by.unwrap_or_default().ordering();
        let page =
            list_page::<Invoice, _>(ctx, (first, after), (last, before), filter, &ordering).await?;
        Ok(InvoiceConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Invoice>> {
        let id = ids::decode(Kind::Invoice, &id, "id")?;
        Ok(load_one(ctx, InvoiceId(id)).await?.map(Invoice))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<SupportTicketFilter>,
        order_by: Option<SupportTicketOrder>,
    ) -> async_graphql::Result<SupportTicketConnection> {
        let ordering = order_by.unwrap_or_default().ordering();
        let page =
            list_page::<SupportTicket, _>(ctx, (first, after), (last, before), filter, &ordering)
                .await?;
        Ok(SupportTicketConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn ticket(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<SupportTicket>> {
        let id = ids::decode(Kind::Ticket, &id, "id")?;
        Ok(load_one(ctx, TicketId(id)).await?.map(SupportTicket))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn plans(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Plan>> {
        Ok(organizations::plans(store(ctx)?)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(Plan)
            .collect())
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn staff_members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<StaffMemberFilter>,
        order_by: Option<StaffMemberOrder>,
    ) -> async_graphql::Result<StaffMemberConnection> {
        let ordering = order_by.unwrap_or_default().ordering();
        let page =
            list_page::<StaffMember, _>(ctx, (first, after), (last, before), filter, &ordering)
                .await?;
        Ok(StaffMemberConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Query\")")]
    async fn staff_member(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<StaffMember>> {
        let id = ids::decode(Kind::Staff, &id, "id")?;
        Ok(load_one(ctx, StaffId(id)).await?.map(StaffMember))
    }

    /// The audit log, newest first: auditors and admins only. `first`: at most 100 (1,000 for services),
    /// default 20.
    #[graphql(
        guard = "Need(Permission::ReadAuditLog)",
        visible = "crate::graphql::guard::visible::audit_log"
    )]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditEventFilter>,
    ) -> async_graphql::Result<AuditEventConnection> {
        let req = page_request(ctx, first, after.as_deref(), &AUDIT_NEWEST_FIRST)?;
        let conditions = filter.unwrap_or_default().conditions();
        let page = audit::list(store(ctx)?, &conditions, AUDIT_NEWEST_FIRST.sort, &req)
            .await
            .map_err(ApiError::from)?;
        Ok(AuditEventConnection::from_page(
            cursors(ctx)?,
            in_order(page, &req),
            &AUDIT_NEWEST_FIRST,
            keyset_of(&AUDIT_NEWEST_FIRST),
            AuditEvent,
        ))
    }
}
