//! The single-record business operations as GraphQL: one input and one
//! payload per mutation (the changed object and `change`, the record of
//! what it did). The rules are in `domain`; this only decodes ids, runs the
//! operation with the request's audit record, and loads the answer.

use crate::graphql::filter::Instant;
use async_graphql::{Context, ID, InputObject, MaybeUndefined, SimpleObject};
use sea_orm::EntityTrait;

use super::error::ApiError;
use super::ids::{self, Kind};
use super::mutation::{InternalFlag, domain_error};
use super::types::billing::{CreditNote, Invoice, Subscription};
use super::types::history::{Change, change_of};
use super::types::organization::{Organization, OrganizationStatus};
use super::types::support::{SupportTicket, TicketMessage, TicketPriority, TicketStatus};
use crate::audit;
use crate::domain::bulk::BulkLimits;
use crate::domain::change::{self, Asked, Done, Operation};
use crate::domain::operations::Flag;
use crate::domain::{billing, organizations, tickets};
use crate::store::changes::{event, find};
use crate::store::entities::{
    credit_note, invoice, organization, subscription, support_ticket, ticket_message,
};

/// Runs `op` as the caller, its audit event in its transaction.
async fn run<O: Operation>(ctx: &Context<'_>, op: &O) -> async_graphql::Result<Done> {
    let store = super::store(ctx)?;
    let principal = super::principal(ctx)?;
    let ttl = ctx
        .data_opt::<BulkLimits>()
        .copied()
        .unwrap_or_default()
        .idempotency_ttl;
    let operation = audit::operation(ctx).cloned();
    let done = change::run(store, op, &principal.subject, ttl, |details| {
        audit::change_event(operation.as_deref(), details)
    })
    .await
    .map_err(domain_error)?;
    if let Some(o) = &operation
        && !done.replayed
    {
        o.mark_recorded();
    }
    Ok(done)
}

/// The row `id` of `E`, read after the change committed.
async fn row<E>(ctx: &Context<'_>, id: i64) -> async_graphql::Result<E::Model>
where
    E: EntityTrait,
    <E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: From<i64>,
{
    find::<E>(super::store(ctx)?, id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            ApiError::NotFound {
                field: "id",
                message: "the record is gone".into(),
            }
            .into()
        })
}

/// The change `done` made, with the fields the caller may read.
async fn change_done(ctx: &Context<'_>, done: &Done) -> async_graphql::Result<Change> {
    let e = event(super::store(ctx)?, done.event)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::NotFound {
            field: "id",
            message: "the change's audit event is gone".into(),
        })?;
    Ok(change_of(ctx, &e))
}

/// Set one organization's status.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_organizations")]
pub struct SetOrganizationStatusInput {
    pub id: ID,
    /// The new status. Transitions: TRIAL → ACTIVE, SUSPENDED, CHURNED;
    /// ACTIVE → SUSPENDED, CHURNED; SUSPENDED → ACTIVE, CHURNED; CHURNED → ACTIVE.
    pub status: OrganizationStatus,
    /// Why (the audit log and the history keep it). Required.
    pub reason: String,
    /// The `version` you read; a stale one changes nothing (`CONFLICT`).
    pub expected_version: i64,
    /// A replay with the same key and input answers the first call's result
    /// without changing anything again; kept per caller for a day.
    pub idempotency_key: Option<String>,
}

/// What `setOrganizationStatus` did.
#[derive(SimpleObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_organizations")]
pub struct SetOrganizationStatusPayload {
    pub organization: Organization,
    pub change: Change,
}

/// Set or clear one internal flag of one organization.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_internal_flags")]
pub struct SetOrganizationFlagInput {
    pub id: ID,
    pub flag: InternalFlag,
    pub value: bool,
    /// Why. Required.
    pub reason: String,
    pub expected_version: i64,
    pub idempotency_key: Option<String>,
}

/// What `setOrganizationFlag` did.
#[derive(SimpleObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_internal_flags")]
pub struct SetOrganizationFlagPayload {
    pub organization: Organization,
    pub change: Change,
}

/// Extend a TRIAL account's trial.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_trials")]
pub struct ExtendTrialInput {
    pub id: ID,
    /// 1 to 30 days; at most 90 days of extensions in all since the trial began.
    pub days: i64,
    /// Why. Required.
    pub reason: String,
    pub idempotency_key: Option<String>,
}

/// What `extendTrial` did.
#[derive(SimpleObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_trials")]
pub struct ExtendTrialPayload {
    pub organization: Organization,
    pub change: Change,
}

/// Change an organization's plan or seats.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_subscriptions")]
pub struct ChangeSubscriptionInput {
    pub organization_id: ID,
    /// The new plan's code; omit to keep the plan.
    pub plan_code: Option<String>,
    /// The new number of seats (at least 1, and not fewer than the account's
    /// active users); omit to keep them.
    pub seats: Option<i64>,
    /// Why. Required.
    pub reason: String,
    /// The subscription's `version` you read.
    pub expected_version: i64,
    pub idempotency_key: Option<String>,
}

/// What `changeSubscription` did.
#[derive(SimpleObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_subscriptions")]
pub struct ChangeSubscriptionPayload {
    pub subscription: Subscription,
    pub organization: Organization,
    pub change: Change,
}

/// Record an OPEN invoice's payment.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_invoices")]
pub struct MarkInvoicePaidInput {
    pub id: ID,
    /// When it was paid: not in the future, not before the invoice was issued.
    pub paid_at: Instant,
    /// The payment's reference at the processor or bank.
    pub payment_reference: String,
    pub expected_version: i64,
    pub idempotency_key: Option<String>,
}

/// What `markInvoicePaid` did.
#[derive(SimpleObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_invoices")]
pub struct MarkInvoicePaidPayload {
    pub invoice: Invoice,
    pub change: Change,
}

/// Void a DRAFT or OPEN invoice.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_invoices")]
pub struct VoidInvoiceInput {
    pub id: ID,
    /// Why. Required.
    pub reason: String,
    pub expected_version: i64,
    pub idempotency_key: Option<String>,
}

/// What `voidInvoice` did.
#[derive(SimpleObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_invoices")]
pub struct VoidInvoicePayload {
    pub invoice: Invoice,
    pub change: Change,
}

/// Give money back on a PAID invoice.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_invoices")]
pub struct IssueCreditNoteInput {
    pub invoice_id: ID,
    /// In minor units of the invoice's currency; all credit notes of an
    /// invoice together at most its amount.
    pub amount_cents: i64,
    /// Why. Required.
    pub reason: String,
    pub idempotency_key: Option<String>,
}

/// What `issueCreditNote` did.
#[derive(SimpleObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_invoices")]
pub struct IssueCreditNotePayload {
    pub credit_note: CreditNote,
    pub invoice: Invoice,
    pub change: Change,
}

/// Answer a ticket: a message the customer sees.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_tickets")]
pub struct ReplyToTicketInput {
    pub ticket_id: ID,
    /// The message (at most 20,000 characters).
    pub body: String,
    pub idempotency_key: Option<String>,
}

/// What `replyToTicket` did.
#[derive(SimpleObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_tickets")]
pub struct ReplyToTicketPayload {
    pub message: TicketMessage,
    pub ticket: SupportTicket,
    pub change: Change,
}

/// Note something on a ticket for staff only (`internal: true`).
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_tickets")]
pub struct AddInternalNoteInput {
    pub ticket_id: ID,
    /// The note (at most 20,000 characters).
    pub body: String,
    pub idempotency_key: Option<String>,
}

/// What `addInternalNote` did.
#[derive(SimpleObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_tickets")]
pub struct AddInternalNotePayload {
    pub message: TicketMessage,
    pub ticket: SupportTicket,
    pub change: Change,
}

/// Change a ticket's status, priority or assignee; what is omitted stays.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_tickets")]
pub struct UpdateTicketInput {
    pub id: ID,
    /// The new status; omit to keep it. Reopening a CLOSED ticket needs a
    /// `reason`.
    pub status: Option<TicketStatus>,
    /// The new priority; omit to keep it.
    pub priority: Option<TicketPriority>,
    /// A staff member holding the support or admin role; null to unassign;
    /// omit to keep.
    pub assignee_id: MaybeUndefined<ID>,
    /// Why; required to reopen a CLOSED ticket.
    pub reason: Option<String>,
    pub expected_version: i64,
    pub idempotency_key: Option<String>,
}

/// What `updateTicket` did.
#[derive(SimpleObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_tickets")]
pub struct UpdateTicketPayload {
    pub ticket: SupportTicket,
    pub change: Change,
}

pub async fn set_organization_status(
    ctx: &Context<'_>,
    input: SetOrganizationStatusInput,
) -> async_graphql::Result<SetOrganizationStatusPayload> {
    let op = organizations::SetStatus {
        id: ids::decode(Kind::Organization, &input.id, "id")?,
        status: input.status.into(),
        expected_version: input.expected_version,
        asked: Asked::new(Some(input.reason), input.idempotency_key),
    };
    let done = run(ctx, &op).await?;
    Ok(SetOrganizationStatusPayload {
        organization: row::<organization::Entity>(ctx, done.object).await?.into(),
        change: change_done(ctx, &done).await?,
    })
}

pub async fn set_organization_flag(
    ctx: &Context<'_>,
    input: SetOrganizationFlagInput,
) -> async_graphql::Result<SetOrganizationFlagPayload> {
    let op = organizations::SetFlag {
        id: ids::decode(Kind::Organization, &input.id, "id")?,
        flag: Flag::from(input.flag),
        value: input.value,
        expected_version: input.expected_version,
        asked: Asked::new(Some(input.reason), input.idempotency_key),
    };
    let done = run(ctx, &op).await?;
    Ok(SetOrganizationFlagPayload {
        organization: row::<organization::Entity>(ctx, done.object).await?.into(),
        change: change_done(ctx, &done).await?,
    })
}

pub async fn extend_trial(
    ctx: &Context<'_>,
    input: ExtendTrialInput,
) -> async_graphql::Result<ExtendTrialPayload> {
    let op = organizations::ExtendTrial {
        id: ids::decode(Kind::Organization, &input.id, "id")?,
        days: input.days,
        asked: Asked::new(Some(input.reason), input.idempotency_key),
    };
    let done = run(ctx, &op).await?;
    Ok(ExtendTrialPayload {
        organization: row::<organization::Entity>(ctx, done.object).await?.into(),
        change: change_done(ctx, &done).await?,
    })
}

pub async fn change_subscription(
    ctx: &Context<'_>,
    input: ChangeSubscriptionInput,
) -> async_graphql::Result<ChangeSubscriptionPayload> {
    let op = billing::ChangeSubscription {
        organization_id: ids::decode(Kind::Organization, &input.organization_id, "organizationId")?,
        plan_code: input.plan_code,
        seats: input.seats,
        expected_version: input.expected_version,
        asked: Asked::new(Some(input.reason), input.idempotency_key),
    };
    let done = run(ctx, &op).await?;
    let subscription = row::<subscription::Entity>(ctx, done.object).await?;
    let organization = row::<organization::Entity>(ctx, subscription.organization_id).await?;
    Ok(ChangeSubscriptionPayload {
        subscription: subscription.into(),
        organization: organization.into(),
        change: change_done(ctx, &done).await?,
    })
}

pub async fn mark_invoice_paid(
    ctx: &Context<'_>,
    input: MarkInvoicePaidInput,
) -> async_graphql::Result<MarkInvoicePaidPayload> {
    let op = billing::MarkPaid {
        id: ids::decode(Kind::Invoice, &input.id, "id")?,
        paid_at: input.paid_at.0,
        payment_reference: input.payment_reference,
        expected_version: input.expected_version,
        asked: Asked::new(None, input.idempotency_key),
    };
    let done = run(ctx, &op).await?;
    Ok(MarkInvoicePaidPayload {
        invoice: row::<invoice::Entity>(ctx, done.object).await?.into(),
        change: change_done(ctx, &done).await?,
    })
}

pub async fn void_invoice(
    ctx: &Context<'_>,
    input: VoidInvoiceInput,
) -> async_graphql::Result<VoidInvoicePayload> {
    let op = billing::Void {
        id: ids::decode(Kind::Invoice, &input.id, "id")?,
        expected_version: input.expected_version,
        asked: Asked::new(Some(input.reason), input.idempotency_key),
    };
    let done = run(ctx, &op).await?;
    Ok(VoidInvoicePayload {
        invoice: row::<invoice::Entity>(ctx, done.object).await?.into(),
        change: change_done(ctx, &done).await?,
    })
}

pub async fn issue_credit_note(
    ctx: &Context<'_>,
    input: IssueCreditNoteInput,
) -> async_graphql::Result<IssueCreditNotePayload> {
    let op = billing::IssueCreditNote {
        invoice_id: ids::decode(Kind::Invoice, &input.invoice_id, "invoiceId")?,
        amount_cents: input.amount_cents,
        asked: Asked::new(Some(input.reason), input.idempotency_key),
    };
    let done = run(ctx, &op).await?;
    let note = row::<credit_note::Entity>(ctx, done.object).await?;
    let invoice = row::<invoice::Entity>(ctx, note.invoice_id).await?;
    Ok(IssueCreditNotePayload {
        credit_note: note.into(),
        invoice: invoice.into(),
        change: change_done(ctx, &done).await?,
    })
}

/// The payload parts of a new message: the message and its ticket.
async fn message_and_ticket(
    ctx: &Context<'_>,
    done: &Done,
) -> async_graphql::Result<(TicketMessage, SupportTicket)> {
    let message = row::<ticket_message::Entity>(ctx, done.object).await?;
    let ticket = row::<support_ticket::Entity>(ctx, message.ticket_id).await?;
    Ok((message.into(), ticket.into()))
}

pub async fn reply_to_ticket(
    ctx: &Context<'_>,
    input: ReplyToTicketInput,
) -> async_graphql::Result<ReplyToTicketPayload> {
    let op = tickets::Reply {
        ticket_id: ids::decode(Kind::Ticket, &input.ticket_id, "ticketId")?,
        body: input.body,
        asked: Asked::new(None, input.idempotency_key),
    };
    let done = run(ctx, &op).await?;
    let (message, ticket) = message_and_ticket(ctx, &done).await?;
    Ok(ReplyToTicketPayload {
        message,
        ticket,
        change: change_done(ctx, &done).await?,
    })
}

pub async fn add_internal_note(
    ctx: &Context<'_>,
    input: AddInternalNoteInput,
) -> async_graphql::Result<AddInternalNotePayload> {
    let op = tickets::AddInternalNote {
        ticket_id: ids::decode(Kind::Ticket, &input.ticket_id, "ticketId")?,
        body: input.body,
        asked: Asked::new(None, input.idempotency_key),
    };
    let done = run(ctx, &op).await?;
    let (message, ticket) = message_and_ticket(ctx, &done).await?;
    Ok(AddInternalNotePayload {
        message,
        ticket,
        change: change_done(ctx, &done).await?,
    })
}

pub async fn update_ticket(
    ctx: &Context<'_>,
    input: UpdateTicketInput,
) -> async_graphql::Result<UpdateTicketPayload> {
    let assignee = match &input.assignee_id {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(id) => Some(Some(ids::decode(Kind::Staff, id, "assigneeId")?)),
    };
    let op = tickets::UpdateTicket {
        id: ids::decode(Kind::Ticket, &input.id, "id")?,
        status: input.status.map(Into::into),
        priority: input.priority.map(Into::into),
        assignee,
        expected_version: input.expected_version,
        asked: Asked::new(input.reason, input.idempotency_key),
    };
    let done = run(ctx, &op).await?;
    Ok(UpdateTicketPayload {
        ticket: row::<support_ticket::Entity>(ctx, done.object)
            .await?
            .into(),
        change: change_done(ctx, &done).await?,
    })
}
