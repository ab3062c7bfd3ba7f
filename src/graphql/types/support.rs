//! Support: tickets and their messages.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::organization::Organization;
use super::staff::StaffMember;
use super::user::User;
use super::{child_page, mirror_enum, to_one};
use crate::graphql::described::{Columns, FromCatalog, described};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Ordering, connection, cursors};
use crate::store::entities::{support_ticket, ticket_message};
use crate::store::loaders::{MessagesOfTicket, OrganizationId, StaffId, TicketId, UserId};
use crate::store::people::TicketQuery;

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
        Low,
        Normal,
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
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        to_one::<_, OrganizationId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"SupportTicket\")")]
    async fn requester(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        to_one::<_, UserId, _, _>(ctx, self).await
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
    ) -> async_graphql::Result<TicketMessageConnection> {
        let (page, ordering) = child_page::<MessagesOfTicket>(ctx, self.0.id, first, after).await?;
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
    async fn ticket(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SupportTicket>> {
        to_one::<_, TicketId, _, _>(ctx, self).await
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
    /// Any of these statuses.
    pub status: Option<Vec<TicketStatus>>,
    /// Any of these priorities.
    pub priority: Option<Vec<TicketPriority>>,
    /// Tickets of this organization.
    pub organization_id: Option<ID>,
    /// Tickets assigned to this staff member.
    pub assignee_id: Option<ID>,
    /// Case-insensitive text in the subject.
    pub search: Option<String>,
    /// Opened at or after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Opened before this instant.
    pub created_before: Option<DateTime<Utc>>,
}

impl SupportTicketFilter {
    pub fn into_query(self) -> Result<TicketQuery, crate::graphql::error::ApiError> {
        Ok(TicketQuery {
            statuses: self
                .status
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            priorities: self
                .priority
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            organization_id: self
                .organization_id
                .map(|id| ids::decode(Kind::Organization, &id, "filter.organizationId"))
                .transpose()?,
            assignee_id: self
                .assignee_id
                .map(|id| ids::decode(Kind::Staff, &id, "filter.assigneeId"))
                .transpose()?,
            search: self.search,
            created_after: self.created_after,
            created_before: self.created_before,
        })
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
}

impl SupportTicketOrder {
    pub fn ordering(self) -> Ordering {
        super::ordering_of("SupportTicket", self)
    }
}
