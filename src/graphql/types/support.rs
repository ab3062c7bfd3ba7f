//! Support: tickets and their messages.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};

use super::organization::Organization;
use super::staff::StaffMember;
use super::user::User;
use super::{child_page, link, mirror_enum, to_one};
use crate::catalog;
use crate::graphql::described::{Columns, FromCatalog, described};
use crate::graphql::error::ApiError;
use crate::graphql::filter::{InstantRange, ListFilter, Where};
use crate::graphql::ids::Kind;
use crate::graphql::pagination::{connection, cursors};
use crate::store::entities::{support_ticket, ticket_message};
use crate::store::loaders::{MessagesOfTicket, OrganizationId, StaffId, TicketId, UserId};
use crate::store::sql::Sql;

mirror_enum! {
    /// Where a ticket is in its life.
    TicketStatus <=> support_ticket::TicketStatus {
        /// Waiting for staff.
        Open,
        /// Waiting for the customer.
        Pending,
        /// Answered; reopens on a reply.
        Solved,
        /// Closed for good.
        Closed,
    }
}

mirror_enum! {
    /// How urgent a ticket is.
    TicketPriority <=> support_ticket::TicketPriority {
        /// When there is time.
        Low,
        /// The usual.
        Normal,
        /// Soon: a customer is blocked.
        High,
        /// Production down or money at stake.
        Urgent,
    }
}

/// A customer's support request.
#[derive(Clone)]
pub struct SupportTicket(pub support_ticket::Model);

described!(
    SupportTicket,
    "SupportTicket",
    support_ticket::Model,
    TicketStatus,
    TicketPriority
);

#[Object]
impl SupportTicket {
    #[graphql(flatten)]
    async fn columns(&self) -> Columns<'_, Self> {
        Columns(self)
    }

    #[graphql(guard = "FromCatalog(\"SupportTicket\")")]
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        link::<_, OrganizationId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"SupportTicket\")")]
    async fn requester(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        link::<_, UserId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"SupportTicket\")")]
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StaffMember>> {
        to_one::<_, StaffId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"SupportTicket\")")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<TicketMessageConnection> {
        let (page, ordering) =
            child_page::<MessagesOfTicket>(ctx, self.0.id, (first, after), (last, before)).await?;
        Ok(TicketMessageConnection::of(cursors(ctx)?, page, &ordering))
    }

    /// Every change to this ticket, newest first, bulk ones included, read
    /// from the audit log; a field's change is listed only to callers who may
    /// read the field.
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<super::history::ChangeConnection> {
        super::history::of(ctx, "SupportTicket", self.0.id, first, after).await
    }
}

connection!(
    SupportTicketConnection,
    SupportTicketEdge,
    SupportTicket,
    "a support ticket",
);

/// One message of a ticket's conversation.
#[derive(Clone)]
pub struct TicketMessage(pub ticket_message::Model);

described!(TicketMessage, "TicketMessage", ticket_message::Model);

#[Object]
impl TicketMessage {
    #[graphql(flatten)]
    async fn columns(&self) -> Columns<'_, Self> {
        Columns(self)
    }

    #[graphql(guard = "FromCatalog(\"TicketMessage\")")]
    async fn ticket(&self, ctx: &Context<'_>) -> async_graphql::Result<SupportTicket> {
        link::<_, TicketId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"TicketMessage\")")]
    async fn author_user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        to_one::<_, UserId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"TicketMessage\")")]
    async fn author_staff(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StaffMember>> {
        to_one::<_, StaffId, _, _>(ctx, self).await
    }
}

connection!(
    TicketMessageConnection,
    TicketMessageEdge,
    TicketMessage,
    "a ticket message",
);

/// Which tickets to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
pub struct SupportTicketFilter {
    /// Any of these statuses; an empty list matches nothing.
    pub status: Option<Vec<TicketStatus>>,
    /// Any of these priorities; an empty list matches nothing.
    pub priority: Option<Vec<TicketPriority>>,
    /// Tickets of any of these organizations; an empty list matches nothing.
    pub organization_id: MaybeUndefined<Vec<ID>>,
    /// Tickets raised by any of these users; an empty list matches nothing.
    pub requester_id: MaybeUndefined<Vec<ID>>,
    /// Tickets assigned to any of these staff members; `null`: unassigned
    /// tickets; an empty list matches nothing.
    pub assignee_id: MaybeUndefined<Vec<ID>>,
    /// Case-insensitive text in the subject.
    pub search: Option<String>,
    /// Opened within this span.
    pub created_at: Option<InstantRange>,
    /// Last changed within this span.
    pub updated_at: Option<InstantRange>,
}

impl ListFilter for SupportTicketFilter {
    fn conditions(self) -> Result<Sql, ApiError> {
        let key = |field| catalog::foreign_key("SupportTicket", field);
        Ok(Where::default()
            .any_of::<_, support_ticket::TicketStatus>("status", self.status)
            .any_of::<_, support_ticket::TicketPriority>("priority", self.priority)
            .reference(
                key("organization"),
                self.organization_id,
                Kind::Organization,
                "filter.organizationId",
            )?
            .reference(
                key("requester"),
                self.requester_id,
                Kind::User,
                "filter.requesterId",
            )?
            .reference(
                key("assignee"),
                self.assignee_id,
                Kind::Staff,
                "filter.assigneeId",
            )?
            .search(&["subject"], self.search)
            .within("created_at", self.created_at)
            .within("updated_at", self.updated_at)
            .done())
    }
}

/// The order of a ticket list. Ties are broken by id.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SupportTicketOrder {
    /// Newest first (the default).
    #[default]
    CreatedAtDesc,
    /// Oldest first: the queue.
    CreatedAtAsc,
    /// Most urgent first (`URGENT`, `HIGH`, `NORMAL`, `LOW`), then newest.
    PriorityDesc,
    /// Least urgent first.
    PriorityAsc,
    /// Most recently changed first.
    UpdatedAtDesc,
    /// Longest unchanged first.
    UpdatedAtAsc,
}
