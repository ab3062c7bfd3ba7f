//! Support: tickets and their messages.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::organization::Organization;
use super::staff::StaffMember;
use super::user::User;
use super::{child_page, load_one, mirror_enum};
use crate::graphql::guard::Audited;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Ordering, SortKey, connection, cursors, keyset_of};
use crate::store::entities::{support_ticket, ticket_message};
use crate::store::loaders::{MessagesOfTicket, OrganizationId, StaffId, TicketId, UserId};
use crate::store::page::{Sort, SortValue};
use crate::store::people::TicketQuery;

/// Tickets under a parent: newest first.
pub const TICKETS_NEWEST_FIRST: Ordering =
    Ordering::new("tkt:created_desc", Sort::by("created_at", true));
pub const MESSAGES_IN_ORDER: Ordering = Ordering::new("msg:id", Sort::ID_ASC);

mirror_enum! {
    /// Where a ticket is in its life.
    TicketStatus <=> support_ticket::TicketStatus, visible = "crate::graphql::guard::visible::customers" {
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
    TicketPriority <=> support_ticket::TicketPriority, visible = "crate::graphql::guard::visible::customers" {
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

impl SortKey for support_ticket::Model {
    fn id(&self) -> i64 {
        self.id
    }
    fn sort_value(&self, column: &str) -> SortValue {
        match column {
            "created_at" => SortValue::Time(self.created_at),
            _ => SortValue::None,
        }
    }
}

#[Object(visible = "crate::graphql::guard::visible::customers")]
impl SupportTicket {
    /// Opaque, stable id.
    async fn id(&self) -> ID {
        ids::encode(Kind::Ticket, self.0.id)
    }

    async fn subject(&self) -> &str {
        &self.0.subject
    }

    async fn status(&self) -> TicketStatus {
        self.0.status.into()
    }

    async fn priority(&self) -> TicketPriority {
        self.0.priority.into()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Notes between staff, never shown to the customer; null when there are none.
    #[graphql(guard = "Audited(\"SupportTicket.internalNotes\")")]
    async fn internal_notes(&self) -> Option<&str> {
        self.0.internal_notes.as_deref()
    }

    /// The organization the ticket belongs to.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        Ok(load_one(ctx, OrganizationId(self.0.organization_id))
            .await?
            .map(Organization))
    }

    /// The customer user who opened the ticket.
    async fn requester(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_one(ctx, UserId(self.0.requester_id)).await?.map(User))
    }

    /// The staff member working on it; null when unassigned.
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StaffMember>> {
        match self.0.assignee_id {
            Some(id) => Ok(load_one(ctx, StaffId(id)).await?.map(StaffMember)),
            None => Ok(None),
        }
    }

    /// The conversation, oldest first. `first`: default 20, at most 100 (1,000 for service identities) unless configured.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<TicketMessageConnection> {
        let page = child_page::<MessagesOfTicket>(ctx, self.0.id, first, after, &MESSAGES_IN_ORDER)
            .await?;
        Ok(TicketMessageConnection::from_page(
            cursors(ctx)?,
            page,
            &MESSAGES_IN_ORDER,
            keyset_of(&MESSAGES_IN_ORDER),
            TicketMessage,
        ))
    }
}

connection!(
    SupportTicketConnection,
    SupportTicketEdge,
    SupportTicket,
    "a support ticket",
    "crate::graphql::guard::visible::customers"
);

/// One message of a ticket's conversation.
#[derive(Clone)]
pub struct TicketMessage(pub ticket_message::Model);

impl SortKey for ticket_message::Model {
    fn id(&self) -> i64 {
        self.id
    }
    fn sort_value(&self, _column: &str) -> SortValue {
        SortValue::None
    }
}

#[Object(visible = "crate::graphql::guard::visible::customers")]
impl TicketMessage {
    /// Opaque, stable id.
    async fn id(&self) -> ID {
        ids::encode(Kind::TicketMessage, self.0.id)
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    /// Whether this is a note between staff, never shown to the customer.
    async fn internal(&self) -> bool {
        self.0.internal
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The ticket.
    async fn ticket(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SupportTicket>> {
        Ok(load_one(ctx, TicketId(self.0.ticket_id))
            .await?
            .map(SupportTicket))
    }

    /// The customer who wrote it; null when staff wrote it.
    async fn author_user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.0.author_user_id {
            Some(id) => Ok(load_one(ctx, UserId(id)).await?.map(User)),
            None => Ok(None),
        }
    }

    /// The staff member who wrote it; null when the customer wrote it.
    async fn author_staff(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StaffMember>> {
        match self.0.author_staff_id {
            Some(id) => Ok(load_one(ctx, StaffId(id)).await?.map(StaffMember)),
            None => Ok(None),
        }
    }
}

connection!(
    TicketMessageConnection,
    TicketMessageEdge,
    TicketMessage,
    "a ticket message",
    "crate::graphql::guard::visible::customers"
);

/// Which tickets to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
#[graphql(visible = "crate::graphql::guard::visible::customers")]
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
#[graphql(visible = "crate::graphql::guard::visible::customers")]
pub enum SupportTicketOrder {
    /// Newest first (the default).
    #[default]
    CreatedAtDesc,
    /// Oldest first: the queue.
    CreatedAtAsc,
}

impl SupportTicketOrder {
    pub fn ordering(self) -> Ordering {
        match self {
            SupportTicketOrder::CreatedAtDesc => TICKETS_NEWEST_FIRST,
            SupportTicketOrder::CreatedAtAsc => {
                Ordering::new("tkt:created_asc", Sort::by("created_at", false))
            }
        }
    }
}
