//! Billing: plans, subscriptions, invoices and their lines.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};

use super::organization::Organization;
use super::{child_page, link, mirror_enum};
use crate::catalog;
use crate::graphql::described::{Columns, FromCatalog, described};
use crate::graphql::error::ApiError;
use crate::graphql::filter::{InstantRange, ListFilter, Where};
use crate::graphql::ids::Kind;
use crate::graphql::pagination::{connection, cursors};
use crate::store::entities::{credit_note, invoice, invoice_line, plan, subscription};
use crate::store::loaders::{
    CreditNotesOfInvoice, InvoiceId, LinesOfInvoice, OrganizationId, PlanId, SubscriptionsOfPlan,
};
use crate::store::sql::Sql;

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
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<SubscriptionConnection> {
        let (page, ordering) =
            child_page::<SubscriptionsOfPlan>(ctx, self.0.id, (first, after), (last, before))
                .await?;
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
    async fn plan(&self, ctx: &Context<'_>) -> async_graphql::Result<Plan> {
        link::<_, PlanId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"Subscription\")")]
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        link::<_, OrganizationId, _, _>(ctx, self).await
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
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        link::<_, OrganizationId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"Invoice\")")]
    async fn lines(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<InvoiceLineConnection> {
        let (page, ordering) =
            child_page::<LinesOfInvoice>(ctx, self.0.id, (first, after), (last, before)).await?;
        Ok(InvoiceLineConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Invoice\")")]
    async fn credit_notes(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<CreditNoteConnection> {
        let (page, ordering) =
            child_page::<CreditNotesOfInvoice>(ctx, self.0.id, (first, after), (last, before))
                .await?;
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
    async fn invoice(&self, ctx: &Context<'_>) -> async_graphql::Result<Invoice> {
        link::<_, InvoiceId, _, _>(ctx, self).await
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
    async fn invoice(&self, ctx: &Context<'_>) -> async_graphql::Result<Invoice> {
        link::<_, InvoiceId, _, _>(ctx, self).await
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
    /// Any of these statuses; an empty list matches nothing.
    pub status: Option<Vec<InvoiceStatus>>,
    /// Invoices of any of these organizations; an empty list matches nothing.
    pub organization_id: MaybeUndefined<Vec<ID>>,
    /// Any of these ISO 4217 codes (`EUR`); an empty list matches nothing.
    pub currency: Option<Vec<String>>,
    /// Case-insensitive text in the invoice number.
    pub search: Option<String>,
    /// Issued within this span.
    pub issued_at: Option<InstantRange>,
    /// Due within this span.
    pub due_at: Option<InstantRange>,
}

impl ListFilter for InvoiceFilter {
    fn conditions(self) -> Result<Sql, ApiError> {
        Ok(Where::default()
            .any_of::<_, invoice::InvoiceStatus>("status", self.status)
            .reference(
                catalog::foreign_key("Invoice", "organization"),
                self.organization_id,
                Kind::Organization,
                "filter.organizationId",
            )?
            .any_text(
                "currency",
                self.currency
                    .map(|c| c.into_iter().map(|c| c.trim().to_uppercase()).collect()),
            )
            .search(&["number"], self.search)
            .within("issued_at", self.issued_at)
            .within("due_at", self.due_at)
            .done())
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
