//! Single-record changes of support tickets: replies, internal notes, and
//! status, priority and assignee.

use sea_orm::{
    ActiveEnum,
    ActiveValue::{NotSet, Set},
    DatabaseTransaction, IntoActiveModel,
};
use serde::Serialize;
use serde_json::json;

use super::DomainError;
use super::change::{
    Actor, Applied, Asked, Operation, RecordChange, expect_version, required_reason, text_within,
};
use crate::catalog::public_id;
use crate::store::changes::{insert, locked, staff_member, staff_with_subject, update};
use crate::store::entities::support_ticket::{self, TicketPriority, TicketStatus};
use crate::store::entities::ticket_message;

/// Longest message body, in characters.
pub const MAX_BODY: usize = 20_000;

/// The roles a ticket's assignee must hold one of.
pub const ASSIGNABLE_ROLES: [&str; 2] = ["support", "admin"];

async fn ticket(
    txn: &DatabaseTransaction,
    id: i64,
    field: &'static str,
) -> Result<support_ticket::Model, DomainError> {
    locked::<support_ticket::Entity>(txn, id)
        .await?
        .ok_or(DomainError::NotFound {
            field,
            what: "ticket",
        })
}

fn body_of(body: &str) -> Result<String, DomainError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(DomainError::Invalid {
            field: "body",
            message: "a message needs some text".into(),
        });
    }
    text_within("body", body, MAX_BODY)
}

/// Adds a message to a ticket as the actor (its staff member, when the
/// actor is one); the ticket's `updatedAt` moves, its version does not (its
/// own fields stay).
async fn add_message(
    txn: &DatabaseTransaction,
    ticket: support_ticket::Model,
    body: String,
    internal: bool,
    actor: Actor<'_>,
) -> Result<Applied, DomainError> {
    let author = staff_with_subject(txn, actor.subject).await?.map(|s| s.id);
    let message = insert(
        txn,
        ticket_message::ActiveModel {
            id: NotSet,
            ticket_id: Set(ticket.id),
            author_user_id: Set(None),
            author_staff_id: Set(author),
            body: Set(body),
            internal: Set(internal),
            created_at: Set(actor.now),
        },
    )
    .await?;
    let field = if internal {
        "internalNotes"
    } else {
        "messages"
    };
    let change = RecordChange::new("SupportTicket", ticket.id).added(
        field,
        json!({ "id": public_id("TicketMessage", message.id) }),
    );
    let mut row = ticket.into_active_model();
    row.updated_at = Set(actor.now);
    update(txn, row).await?;
    Ok(Applied {
        object: message.id,
        changes: vec![change],
    })
}

/// `replyToTicket`: a message the customer sees; not on a CLOSED ticket.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    pub ticket_id: i64,
    pub body: String,
    #[serde(flatten)]
    pub asked: Asked,
}

impl Operation for Reply {
    const NAME: &'static str = "replyToTicket";

    fn asked(&self) -> &Asked {
        &self.asked
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        actor: Actor<'_>,
    ) -> Result<Applied, DomainError> {
        let body = body_of(&self.body)?;
        let ticket = ticket(txn, self.ticket_id, "ticketId").await?;
        if ticket.status == TicketStatus::Closed {
            return Err(DomainError::Invalid {
                field: "ticketId",
                message: "the ticket is CLOSED; reopen it (updateTicket, with a reason) to reply"
                    .into(),
            });
        }
        add_message(txn, ticket, body, false, actor).await
    }
}

/// `addInternalNote`: a note between staff (`internal: true`), never shown
/// to the customer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddInternalNote {
    pub ticket_id: i64,
    pub body: String,
    #[serde(flatten)]
    pub asked: Asked,
}

impl Operation for AddInternalNote {
    const NAME: &'static str = "addInternalNote";

    fn asked(&self) -> &Asked {
        &self.asked
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        actor: Actor<'_>,
    ) -> Result<Applied, DomainError> {
        let body = body_of(&self.body)?;
        let ticket = ticket(txn, self.ticket_id, "ticketId").await?;
        add_message(txn, ticket, body, true, actor).await
    }
}

/// `updateTicket`: status, priority, assignee. The assignee must hold the
/// support or admin role; reopening a CLOSED ticket needs a reason.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTicket {
    pub id: i64,
    pub status: Option<TicketStatus>,
    pub priority: Option<TicketPriority>,
    /// `None`: keep; `Some(None)`: unassign; `Some(Some(staff))`: assign.
    pub assignee: Option<Option<i64>>,
    pub expected_version: i64,
    #[serde(flatten)]
    pub asked: Asked,
}

impl Operation for UpdateTicket {
    const NAME: &'static str = "updateTicket";

    fn asked(&self) -> &Asked {
        &self.asked
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        actor: Actor<'_>,
    ) -> Result<Applied, DomainError> {
        let reason = self
            .asked
            .reason
            .as_deref()
            .map(|r| text_within("reason", r.trim(), 2_000))
            .transpose()?;
        let ticket = ticket(txn, self.id, "id").await?;
        expect_version(ticket.version, self.expected_version)?;
        let status = self.status.unwrap_or(ticket.status);
        if ticket.status == TicketStatus::Closed && status != TicketStatus::Closed {
            required_reason(reason.as_deref()).map_err(|_| DomainError::Invalid {
                field: "reason",
                message: "reopening a CLOSED ticket needs a reason".into(),
            })?;
        }
        let assignee = match self.assignee {
            None => ticket.assignee_id,
            Some(None) => None,
            Some(Some(staff)) => {
                let member = staff_member(txn, staff)
                    .await?
                    .ok_or(DomainError::Invalid {
                        field: "assigneeId",
                        message: "no such staff member".into(),
                    })?;
                let holds = member
                    .roles
                    .split(',')
                    .any(|r| ASSIGNABLE_ROLES.contains(&r.trim()));
                if !holds {
                    return Err(DomainError::Invalid {
                        field: "assigneeId",
                        message: format!(
                            "{} holds neither the support nor the admin role",
                            member.name
                        ),
                    });
                }
                Some(staff)
            }
        };
        let priority = self.priority.unwrap_or(ticket.priority);
        let staff_id = |id: Option<i64>| id.map(|id| public_id("StaffMember", id));
        let change = RecordChange::new("SupportTicket", ticket.id)
            .field("status", ticket.status.to_value(), status.to_value())
            .field("priority", ticket.priority.to_value(), priority.to_value())
            .field("assignee", staff_id(ticket.assignee_id), staff_id(assignee));
        let id = ticket.id;
        if change.fields.is_empty() {
            return Ok(Applied {
                object: id,
                changes: Vec::new(),
            });
        }
        let version = ticket.version;
        let mut row = ticket.into_active_model();
        row.status = Set(status);
        row.priority = Set(priority);
        row.assignee_id = Set(assignee);
        row.version = Set(version + 1);
        row.updated_at = Set(actor.now);
        update(txn, row).await?;
        Ok(Applied {
            object: id,
            changes: vec![change],
        })
    }
}
