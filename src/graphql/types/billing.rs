//! Billing: plans, subscriptions, invoices and their lines.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::organization::Organization;
use super::{child_page, mirror_enum, to_one};
use crate::graphql::described::{Columns, FromCatalog, described};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Ordering, connection, cursors};
use crate::store::entities::{credit_note, invoice, invoice_line, plan, subscription};
use crate::store::loaders::{
    CreditNotesOfInvoice, InvoiceId, LinesOfInvoice, OrganizationId, PlanId, SubscriptionsOfPlan,
};
use crate::store::people::InvoiceQuery;

/// A price plan.
#[derive(Clone)]
pub struct Plan(pub plan::Model);

described!(Plan, "Plan", plan::Model);

#[Object]
impl Plan {
    #[graphql(flatten)]
    async fn columns(&self) -> Columns<'_, Self> {
        Columns(self)
    }

    #[graphql(guard = "FromCatalog(\"Plan\")")]
    async fn subscriptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SubscriptionConnection> {
        let (page, ordering) =
            child_page::<SubscriptionsOfPlan>(ctx, self.0.id, first, after).await?;
        Ok(SubscriptionConnection::of(cursors(ctx)?, page, &ordering))
    }
}

mirror_enum! {
    /// Where a subscription is in its billing cycle.
    SubscriptionStatus <=> subscription::SubscriptionStatus {
        /// On a free trial.
        Trialing,
        /// Paid and current.
        Active,
        /// The last invoice is unpaid past its due date.
        PastDue,
        /// Ended.
        Canceled,
    }
}

/// An organization's plan and seats.
#[derive(Clone)]
pub struct Subscription(pub subscription::Model);

described!(
    Subscription,
    "Subscription",
    subscription::Model,
    SubscriptionStatus
);

#[Object]
impl Subscription {
    #[graphql(flatten)]
    async fn columns(&self) -> Columns<'_, Self> {
        Columns(self)
    }

    #[graphql(guard = "FromCatalog(\"Subscription\")")]
    async fn plan(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Plan>> {
        to_one::<_, PlanId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"Subscription\")")]
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        to_one::<_, OrganizationId, _, _>(ctx, self).await
    }
}

connection!(
    SubscriptionConnection,
    SubscriptionEdge,
    Subscription,
    "a subscription",
);

mirror_enum! {
    /// Where an invoice is in its life.
    InvoiceStatus <=> invoice::InvoiceStatus {
        /// Being prepared; not sent.
        Draft,
        /// Sent and awaiting payment.
        Open,
        /// Paid in full.
        Paid,
        /// Cancelled; nothing is owed.
        Void,
        /// Given up on.
        Uncollectible,
    }
}

/// An invoice sent to an organization.
#[derive(Clone)]
pub struct Invoice(pub invoice::Model);

described!(Invoice, "Invoice", invoice::Model, InvoiceStatus);

#[Object]
impl Invoice {
    #[graphql(flatten)]
    async fn columns(&self) -> Columns<'_, Self> {
        Columns(self)
    }

    #[graphql(guard = "FromCatalog(\"Invoice\")")]
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        to_one::<_, OrganizationId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"Invoice\")")]
    async fn lines(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<InvoiceLineConnection> {
        let (page, ordering) = child_page::<LinesOfInvoice>(ctx, self.0.id, first, after).await?;
        Ok(InvoiceLineConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Invoice\")")]
    async fn credit_notes(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<CreditNoteConnection> {
        let (page, ordering) =
            child_page::<CreditNotesOfInvoice>(ctx, self.0.id, first, after).await?;
        Ok(CreditNoteConnection::of(cursors(ctx)?, page, &ordering))
    }

    /// Every change to this invoice, newest first, bulk ones included, read
    /// from the audit log; a field's change is listed only to callers who may
    /// read the field.
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<super::history::ChangeConnection> {
        super::history::of(ctx, "Invoice", self.0.id, first, after).await
    }
}

connection!(InvoiceConnection, InvoiceEdge, Invoice, "an invoice",);

/// One line of an invoice.
#[derive(Clone)]
pub struct InvoiceLine(pub invoice_line::Model);

described!(InvoiceLine, "InvoiceLine", invoice_line::Model);

#[Object]
impl InvoiceLine {
    #[graphql(flatten)]
    async fn columns(&self) -> Columns<'_, Self> {
        Columns(self)
    }

    #[graphql(guard = "FromCatalog(\"InvoiceLine\")")]
    async fn invoice(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Invoice>> {
        to_one::<_, InvoiceId, _, _>(ctx, self).await
    }
}

connection!(
    InvoiceLineConnection,
    InvoiceLineEdge,
    InvoiceLine,
    "an invoice line",
);

/// Money given back on a paid invoice.
#[derive(Clone)]
pub struct CreditNote(pub credit_note::Model);

described!(CreditNote, "CreditNote", credit_note::Model);

#[Object]
impl CreditNote {
    #[graphql(flatten)]
    async fn columns(&self) -> Columns<'_, Self> {
        Columns(self)
    }

    #[graphql(guard = "FromCatalog(\"CreditNote\")")]
    async fn invoice(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Invoice>> {
        to_one::<_, InvoiceId, _, _>(ctx, self).await
    }
}

connection!(
    CreditNoteConnection,
    CreditNoteEdge,
    CreditNote,
    "a credit note",
);

/// Which invoices to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
pub struct InvoiceFilter {
    /// Any of these statuses.
    pub status: Option<Vec<InvoiceStatus>>,
    /// Invoices of this organization.
    pub organization_id: Option<ID>,
    /// ISO 4217 code.
    pub currency: Option<String>,
    /// Issued at or after this instant.
    pub issued_after: Option<DateTime<Utc>>,
    /// Issued before this instant.
    pub issued_before: Option<DateTime<Utc>>,
    /// Text in the invoice number.
    pub search: Option<String>,
}

impl InvoiceFilter {
    pub fn into_query(self) -> Result<InvoiceQuery, crate::graphql::error::ApiError> {
        Ok(InvoiceQuery {
            statuses: self
                .status
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            organization_id: self
                .organization_id
                .map(|id| ids::decode(Kind::Organization, &id, "filter.organizationId"))
                .transpose()?,
            currency: self.currency,
            issued_after: self.issued_after,
            issued_before: self.issued_before,
            search: self.search,
        })
    }
}

/// The order of an invoice list. Ties are broken by id.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InvoiceOrder {
    /// Newest first (the default).
    #[default]
    IssuedAtDesc,
    /// Oldest first.
    IssuedAtAsc,
}

impl InvoiceOrder {
    pub fn ordering(self) -> Ordering {
        super::ordering_of("Invoice", self)
    }
}
