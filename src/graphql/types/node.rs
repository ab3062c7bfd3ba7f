//! Relay's object identification: every catalog record with an id is a
//! `Node`, and `node(id:)` finds any of them by the id alone.

use async_graphql::{Context, ID, Interface};

use super::audit::AuditEvent;
use super::billing::{CreditNote, Invoice, InvoiceLine, Plan, Subscription};
use super::load_one;
use super::organization::Organization;
use super::staff::StaffMember;
use super::support::{SupportTicket, TicketMessage};
use super::user::User;
use crate::catalog;
use crate::graphql::error::ApiError;
use crate::identity::Principal;
use crate::store::loaders::{
    CreditNoteId, InvoiceId, LineId, MessageId, OrganizationId, PlanId, StaffId, SubscriptionId,
    TicketId, UserId,
};

/// A record with an opaque, stable id, which `node(id:)` finds again. (A
/// client cache keys records by it.)
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Opaque, stable id."))]
pub enum Node {
    Organization(Organization),
    Plan(Plan),
    Subscription(Subscription),
    Invoice(Invoice),
    InvoiceLine(InvoiceLine),
    CreditNote(CreditNote),
    User(User),
    SupportTicket(SupportTicket),
    TicketMessage(TicketMessage),
    StaffMember(StaffMember),
    AuditEvent(AuditEvent),
}

/// The `id` the interface reads of each type (the column field's value,
/// which the type's own `id` field answers too).
macro_rules! node_ids {
    ($($ty:ident),+ $(,)?) => {
        $(impl $ty {
            pub async fn id(&self, _ctx: &Context<'_>) -> async_graphql::Result<ID> {
                Ok(ID(catalog::public_id(stringify!($ty), self.0.id)))
            }
        })+
    };
}

node_ids!(
    Organization,
    Plan,
    Subscription,
    Invoice,
    InvoiceLine,
    CreditNote,
    User,
    SupportTicket,
    TicketMessage,
    StaffMember,
);

/// The record `id` names, or `None` when there is none or `principal` may
/// not read its type (the same answer: a caller learns nothing of a record
/// it may not read). An id that is not one of ours is `BAD_USER_INPUT`.
pub async fn find(
    ctx: &Context<'_>,
    principal: &Principal,
    id: &ID,
) -> async_graphql::Result<Option<Node>> {
    let prefix = id.split_once('_').map(|(prefix, _)| prefix);
    if prefix == Some(catalog::AUDIT_EVENT_PREFIX) {
        if !principal.can(crate::policy::Permission::ReadAuditLog) {
            return Ok(None);
        }
        let row = crate::graphql::ids::decode(crate::graphql::ids::Kind::AuditEvent, id, "id")?;
        let store = crate::graphql::store(ctx)?;
        return Ok(crate::store::audit::event(store, row)
            .await
            .map_err(ApiError::from)?
            .map(|e| Node::AuditEvent(AuditEvent(e))));
    }
    let entity = prefix
        .and_then(catalog::entity_with_prefix)
        .ok_or_else(|| ApiError::bad_input("id", "not an id of this API"))?;
    if !principal.can(entity.read) {
        return Ok(None);
    }
    let row = crate::graphql::ids::decode_of(entity, id, "id")?;
    Ok(match entity.name {
        "Organization" => load_one(ctx, OrganizationId(row))
            .await?
            .map(|m| Node::Organization(Organization(m))),
        "Plan" => load_one(ctx, PlanId(row))
            .await?
            .map(|m| Node::Plan(Plan(m))),
        "Subscription" => load_one(ctx, SubscriptionId(row))
            .await?
            .map(|m| Node::Subscription(Subscription(m))),
        "Invoice" => load_one(ctx, InvoiceId(row))
            .await?
            .map(|m| Node::Invoice(Invoice(m))),
        "InvoiceLine" => load_one(ctx, LineId(row))
            .await?
            .map(|m| Node::InvoiceLine(InvoiceLine(m))),
        "CreditNote" => load_one(ctx, CreditNoteId(row))
            .await?
            .map(|m| Node::CreditNote(CreditNote(m))),
        "User" => load_one(ctx, UserId(row))
            .await?
            .map(|m| Node::User(User(m))),
        "SupportTicket" => load_one(ctx, TicketId(row))
            .await?
            .map(|m| Node::SupportTicket(SupportTicket(m))),
        "TicketMessage" => load_one(ctx, MessageId(row))
            .await?
            .map(|m| Node::TicketMessage(TicketMessage(m))),
        "StaffMember" => load_one(ctx, StaffId(row))
            .await?
            .map(|m| Node::StaffMember(StaffMember(m))),
        _ => None,
    })
}
