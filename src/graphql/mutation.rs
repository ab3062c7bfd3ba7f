//! The root mutation. Bulk changes for operations work run on one engine
//! (`domain::bulk`): each validates every item first, applies set-based in
//! one transaction together with its audit event, and answers item by item.
//! Single-record business operations (`operations`) run on the other
//! (`domain::change`): rules, versions, idempotency, one transaction with the
//! audit event that records every changed field's before and after.
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::error::ApiError;
use super::guard::Need;
use super::ids::{self, Kind};
use super::operations;
use super::types::organization::OrganizationStatus;
use crate::audit;
use crate::domain::DomainError;
use crate::domain::bulk::{self, BulkInput, BulkLimits, BulkOperation, BulkOutcome, Item};
use crate::domain::operations::{
    Flag, InvoiceVoiding, OrganizationFlagChange, OrganizationStatusChange, TicketAssignment,
};
use crate::policy::Permission;

/// The root of every change.
#[derive(Default)]
pub struct Mutation;

/// What happens when some items fail.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[graphql(visible = "crate::graphql::guard::visible::any_write")]
pub enum BulkMode {
    /// One failed item and nothing changes; every failure is listed (the default).
    #[default]
    AllOrNothing,
    /// The valid items change; the failed ones are listed.
    BestEffort,
}

/// One item that could not be changed.
#[derive(SimpleObject, Clone)]
#[graphql(visible = "crate::graphql::guard::visible::any_write")]
pub struct BulkFailure {
    /// The id as given.
    pub id: ID,
    /// Why, for a program to branch on.
    pub code: BulkFailureCode,
    /// Why, in words: `not found`, `not an organization id`, `cannot go from CHURNED to SUSPENDED`, …
    pub reason: String,
}

/// Why one item of a bulk change failed.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(visible = "crate::graphql::guard::visible::any_write")]
pub enum BulkFailureCode {
    /// Not an id of the records this mutation changes (`usr_4` given to an
    /// organization change).
    NotAnId,
    /// No such record.
    NotFound,
    /// The record may not take this change: its state or a business rule
    /// (`reason` says which).
    NotAllowed,
}

impl From<bulk::FailureCode> for BulkFailureCode {
    fn from(c: bulk::FailureCode) -> Self {
        match c {
            bulk::FailureCode::NotAnId => Self::NotAnId,
            bulk::FailureCode::NotFound => Self::NotFound,
            bulk::FailureCode::NotAllowed => Self::NotAllowed,
        }
    }
}

/// The per-item answer of a bulk mutation.
#[derive(SimpleObject, Clone)]
#[graphql(visible = "crate::graphql::guard::visible::any_write")]
pub struct BulkResult {
    /// Ids given (duplicates included: see `duplicateIds`).
    pub requested: i64,
    /// Items changed — or, in a dry run, that would change. 0 when an
    /// all-or-nothing call had failures.
    pub changed: i64,
    /// Items already as asked.
    pub unchanged: i64,
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
    /// Items that could not be changed, each with its code and reason.
    pub failed: Vec<BulkFailure>,
    /// The ids changed (in a dry run: that would change), as given; empty
    /// when an all-or-nothing call had failures. A cache can update these.
    pub changed_ids: Vec<ID>,
    /// The ids already as asked, as given.
    pub unchanged_ids: Vec<ID>,
    /// Ids given more than once, each listed once: each was checked and
    /// changed once.
    pub duplicate_ids: Vec<ID>,
    /// Whether this is the stored result of an earlier call with the same
    /// idempotency key (nothing changed this time).
    pub replayed: bool,
}

impl From<BulkOutcome> for BulkResult {
    fn from(o: BulkOutcome) -> Self {
        BulkResult {
            requested: o.requested as i64,
            changed: o.changed as i64,
            unchanged: o.unchanged as i64,
            dry_run: o.dry_run,
            failed: o
                .failed
                .into_iter()
                .map(|f| BulkFailure {
                    id: ID(f.id),
                    code: f.code.into(),
                    reason: f.reason,
                })
                .collect(),
            changed_ids: o.changed_ids.into_iter().map(ID).collect(),
            unchanged_ids: o.unchanged_ids.into_iter().map(ID).collect(),
            duplicate_ids: o.duplicate_ids.into_iter().map(ID).collect(),
            replayed: o.replayed,
        }
    }
}

/// Change the status of many organizations.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::bulk_organizations")]
pub struct BulkOrganizationStatusInput {
    /// Organization ids; at most the configured maximum (10,000 by default).
    pub ids: Vec<ID>,
    /// The new status.
    pub status: OrganizationStatus,
    /// Why (recorded in the audit log). Required.
    pub reason: String,
    /// Say what would happen; change nothing.
    #[graphql(default)]
    pub dry_run: bool,
    /// A replay with the same key and input returns the first result without
    /// changing anything again; the same key with another input is refused. Kept
    /// per caller for a day.
    pub idempotency_key: Option<String>,
    #[graphql(default)]
    pub mode: BulkMode,
}

/// An internal flag.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(visible = "crate::graphql::guard::visible::write_internal_flags")]
pub enum InternalFlag {
    /// Under review for fraud.
    FraudReview,
    /// A customer to treat with care.
    Vip,
    /// At risk of leaving.
    ChurnRisk,
    /// Sees features before everyone else.
    BetaAccess,
}

impl From<InternalFlag> for Flag {
    fn from(flag: InternalFlag) -> Self {
        match flag {
            InternalFlag::FraudReview => Flag::FraudReview,
            InternalFlag::Vip => Flag::Vip,
            InternalFlag::ChurnRisk => Flag::ChurnRisk,
            InternalFlag::BetaAccess => Flag::BetaAccess,
        }
    }
}

/// Set or clear one internal flag on many organizations.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_internal_flags")]
pub struct BulkOrganizationFlagInput {
    pub ids: Vec<ID>,
    pub flag: InternalFlag,
    pub value: bool,
    pub reason: String,
    #[graphql(default)]
    pub dry_run: bool,
    pub idempotency_key: Option<String>,
    #[graphql(default)]
    pub mode: BulkMode,
}

/// Assign many tickets to one staff member, or unassign them.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_tickets")]
pub struct BulkTicketAssignmentInput {
    pub ids: Vec<ID>,
    /// The staff member; null to unassign.
    pub assignee_id: Option<ID>,
    pub reason: String,
    #[graphql(default)]
    pub dry_run: bool,
    pub idempotency_key: Option<String>,
    #[graphql(default)]
    pub mode: BulkMode,
}

/// Void many invoices. Paid invoices cannot be voided.
#[derive(InputObject)]
#[graphql(visible = "crate::graphql::guard::visible::write_invoices")]
pub struct BulkInvoiceVoidInput {
    pub ids: Vec<ID>,
    pub reason: String,
    #[graphql(default)]
    pub dry_run: bool,
    pub idempotency_key: Option<String>,
    #[graphql(default)]
    pub mode: BulkMode,
}

/// The arguments every bulk input shares.
macro_rules! common_args {
    ($($input:ty),+) => {
        $(impl $input {
            fn common(&self) -> Common<'_> {
                Common {
                    ids: &self.ids,
                    reason: &self.reason,
                    dry_run: self.dry_run,
                    idempotency_key: self.idempotency_key.as_ref(),
                    mode: self.mode,
                }
            }
        })+
    };
}

common_args!(
    BulkOrganizationStatusInput,
    BulkOrganizationFlagInput,
    BulkTicketAssignmentInput,
    BulkInvoiceVoidInput
);

struct Common<'a> {
    ids: &'a [ID],
    reason: &'a str,
    dry_run: bool,
    idempotency_key: Option<&'a String>,
    mode: BulkMode,
}

async fn run(
    ctx: &Context<'_>,
    op: &dyn BulkOperation,
    kind: Kind,
    common: Common<'_>,
) -> async_graphql::Result<BulkResult> {
    let store = super::store(ctx)?;
    let principal = super::principal(ctx)?;
    let limits = ctx.data_opt::<BulkLimits>().copied().unwrap_or_default();
    let input = BulkInput {
        items: common
            .ids
            .iter()
            .map(|id| Item {
                given: id.to_string(),
                row: ids::decode(kind, id, "ids").ok(),
            })
            .collect(),
        reason: common.reason.to_owned(),
        dry_run: common.dry_run,
        mode: match common.mode {
            BulkMode::AllOrNothing => bulk::Mode::AllOrNothing,
            BulkMode::BestEffort => bulk::Mode::BestEffort,
        },
        idempotency_key: common.idempotency_key.cloned(),
    };
    let operation = audit::operation(ctx).cloned();
    let outcome = bulk::run(store, op, &input, &principal.subject, limits, |details| {
        audit::change_event_text(operation.as_deref(), details)
    })
    .await
    .map_err(domain_error)?;
    if let Some(o) = &operation
        && !outcome.replayed
    {
        o.mark_recorded();
    }
    Ok(outcome.into())
}

pub(crate) fn domain_error(err: DomainError) -> ApiError {
    match err {
        DomainError::TooManyItems { .. } => ApiError::LimitExceeded(err.to_string()),
        DomainError::Invalid { field, message } => ApiError::bad_input(field, message),
        DomainError::KeyReused(_) => ApiError::Conflict(err.to_string()),
        DomainError::NotFound { field, what } => ApiError::NotFound {
            field,
            message: format!("no such {what}"),
        },
        DomainError::StaleVersion { current } => ApiError::StaleVersion {
            message: err.to_string(),
            current,
        },
        DomainError::Store(e) => ApiError::from(e),
    }
}

/// Every change: one record at a time with its business rules
/// (`setOrganizationStatus`, `markInvoicePaid`, …), or many at once
/// (`bulk…`). Each takes one `input`, checks the caller's rights and the
/// record's `expectedVersion`, accepts an `idempotencyKey`, and records the
/// change in the audit log and the record's history.
#[Object(visible = "crate::graphql::guard::visible::any_write")]
impl Mutation {
    /// Change the status of many organizations at once: suspend, reactivate,
    /// churn. Transitions: TRIAL → ACTIVE, SUSPENDED, CHURNED; ACTIVE → SUSPENDED,
    /// CHURNED; SUSPENDED → ACTIVE, CHURNED; CHURNED → ACTIVE.
    #[graphql(
        guard = "Need(Permission::BulkOrganizations)",
        visible = "crate::graphql::guard::visible::bulk_organizations"
    )]
    async fn bulk_update_organization_status(
        &self,
        ctx: &Context<'_>,
        input: BulkOrganizationStatusInput,
    ) -> async_graphql::Result<BulkResult> {
        let op = OrganizationStatusChange {
            to: input.status.into(),
        };
        run(ctx, &op, Kind::Organization, input.common()).await
    }

    /// Set or clear an internal flag (fraud review, VIP, churn risk, beta access)
    /// on many organizations.
    #[graphql(
        guard = "Need(Permission::WriteInternalFlags)",
        visible = "crate::graphql::guard::visible::write_internal_flags"
    )]
    async fn bulk_set_organization_flag(
        &self,
        ctx: &Context<'_>,
        input: BulkOrganizationFlagInput,
    ) -> async_graphql::Result<BulkResult> {
        let op = OrganizationFlagChange {
            flag: input.flag.into(),
            value: input.value,
        };
        run(ctx, &op, Kind::Organization, input.common()).await
    }

    /// Assign many tickets to one staff member (or unassign them).
    #[graphql(
        guard = "Need(Permission::WriteTickets)",
        visible = "crate::graphql::guard::visible::write_tickets"
    )]
    async fn bulk_assign_tickets(
        &self,
        ctx: &Context<'_>,
        input: BulkTicketAssignmentInput,
    ) -> async_graphql::Result<BulkResult> {
        let assignee = match &input.assignee_id {
            Some(id) => {
                let row = ids::decode(Kind::Staff, id, "assigneeId")?;
                let exists = super::types::load_one(ctx, crate::store::loaders::StaffId(row))
                    .await?
                    .is_some();
                if !exists {
                    return Err(ApiError::bad_input("assigneeId", "no such staff member").into());
                }
                Some(row)
            }
            None => None,
        };
        run(
            ctx,
            &TicketAssignment { assignee },
            Kind::Ticket,
            input.common(),
        )
        .await
    }

    /// Void many invoices (DRAFT, OPEN or UNCOLLECTIBLE ones; a paid invoice is
    /// refunded, not voided).
    #[graphql(
        guard = "Need(Permission::WriteInvoices)",
        visible = "crate::graphql::guard::visible::write_invoices"
    )]
    async fn bulk_void_invoices(
        &self,
        ctx: &Context<'_>,
        input: BulkInvoiceVoidInput,
    ) -> async_graphql::Result<BulkResult> {
        run(ctx, &InvoiceVoiding, Kind::Invoice, input.common()).await
    }

    /// Set one organization's status (the transitions of `bulkUpdateOrganizationStatus`), if it is still at `expectedVersion`.
    #[graphql(
        guard = "Need(Permission::WriteOrganizations)",
        visible = "crate::graphql::guard::visible::write_organizations"
    )]
    async fn set_organization_status(
        &self,
        ctx: &Context<'_>,
        input: operations::SetOrganizationStatusInput,
    ) -> async_graphql::Result<operations::SetOrganizationStatusPayload> {
        operations::set_organization_status(ctx, input).await
    }

    /// Set or clear one internal flag of one organization, if it is still at `expectedVersion`.
    #[graphql(
        guard = "Need(Permission::WriteInternalFlags)",
        visible = "crate::graphql::guard::visible::write_internal_flags"
    )]
    async fn set_organization_flag(
        &self,
        ctx: &Context<'_>,
        input: operations::SetOrganizationFlagInput,
    ) -> async_graphql::Result<operations::SetOrganizationFlagPayload> {
        operations::set_organization_flag(ctx, input).await
    }

    /// Extend a TRIAL account's trial by 1 to 30 days (at most 90 days in all since it began).
    #[graphql(
        guard = "Need(Permission::WriteTrials)",
        visible = "crate::graphql::guard::visible::write_trials"
    )]
    async fn extend_trial(
        &self,
        ctx: &Context<'_>,
        input: operations::ExtendTrialInput,
    ) -> async_graphql::Result<operations::ExtendTrialPayload> {
        operations::extend_trial(ctx, input).await
    }

    /// Change an organization's plan or seats (not below its active users; not on a canceled subscription), if the subscription is still at `expectedVersion`.
    #[graphql(
        guard = "Need(Permission::WriteSubscriptions)",
        visible = "crate::graphql::guard::visible::write_subscriptions"
    )]
    async fn change_subscription(
        &self,
        ctx: &Context<'_>,
        input: operations::ChangeSubscriptionInput,
    ) -> async_graphql::Result<operations::ChangeSubscriptionPayload> {
        operations::change_subscription(ctx, input).await
    }

    /// Record the payment of an OPEN invoice, if it is still at `expectedVersion`.
    #[graphql(
        guard = "Need(Permission::WriteInvoices)",
        visible = "crate::graphql::guard::visible::write_invoices"
    )]
    async fn mark_invoice_paid(
        &self,
        ctx: &Context<'_>,
        input: operations::MarkInvoicePaidInput,
    ) -> async_graphql::Result<operations::MarkInvoicePaidPayload> {
        operations::mark_invoice_paid(ctx, input).await
    }

    /// Void a DRAFT or OPEN invoice (a PAID one is credited instead), if it is still at `expectedVersion`.
    #[graphql(
        guard = "Need(Permission::WriteInvoices)",
        visible = "crate::graphql::guard::visible::write_invoices"
    )]
    async fn void_invoice(
        &self,
        ctx: &Context<'_>,
        input: operations::VoidInvoiceInput,
    ) -> async_graphql::Result<operations::VoidInvoicePayload> {
        operations::void_invoice(ctx, input).await
    }

    /// Give money back on a PAID invoice; its credit notes together never exceed its amount.
    #[graphql(
        guard = "Need(Permission::WriteInvoices)",
        visible = "crate::graphql::guard::visible::write_invoices"
    )]
    async fn issue_credit_note(
        &self,
        ctx: &Context<'_>,
        input: operations::IssueCreditNoteInput,
    ) -> async_graphql::Result<operations::IssueCreditNotePayload> {
        operations::issue_credit_note(ctx, input).await
    }

    /// Answer a ticket with a message the customer sees (not on a CLOSED ticket).
    #[graphql(
        guard = "Need(Permission::WriteTickets)",
        visible = "crate::graphql::guard::visible::write_tickets"
    )]
    async fn reply_to_ticket(
        &self,
        ctx: &Context<'_>,
        input: operations::ReplyToTicketInput,
    ) -> async_graphql::Result<operations::ReplyToTicketPayload> {
        operations::reply_to_ticket(ctx, input).await
    }

    /// Add a note between staff to a ticket (`internal: true`), never shown to the customer.
    #[graphql(
        guard = "Need(Permission::WriteTickets)",
        visible = "crate::graphql::guard::visible::write_tickets"
    )]
    async fn add_internal_note(
        &self,
        ctx: &Context<'_>,
        input: operations::AddInternalNoteInput,
    ) -> async_graphql::Result<operations::AddInternalNotePayload> {
        operations::add_internal_note(ctx, input).await
    }

    /// Change a ticket's status, priority or assignee, if it is still at `expectedVersion`; reopening a CLOSED ticket needs a reason.
    #[graphql(
        guard = "Need(Permission::WriteTickets)",
        visible = "crate::graphql::guard::visible::write_tickets"
    )]
    async fn update_ticket(
        &self,
        ctx: &Context<'_>,
        input: operations::UpdateTicketInput,
    ) -> async_graphql::Result<operations::UpdateTicketPayload> {
        operations::update_ticket(ctx, input).await
    }
}
