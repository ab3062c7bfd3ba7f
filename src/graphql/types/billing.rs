//! Billing: plans, subscriptions, invoices and their lines.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::organization::Organization;
use super::{child_page, load_one, mirror_enum};
use crate::graphql::guard::{Audited, Need};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Ordering, SortKey, connection, cursors, keyset_of};
use crate::policy::Permission;
use crate::store::entities::{invoice, invoice_line, plan, subscription};
use crate::store::loaders::{
    InvoiceId, LinesOfInvoice, OrganizationId, PlanId, SubscriptionsOfPlan,
};
use crate::store::page::{Sort, SortValue};
use crate::store::people::InvoiceQuery;

/// Invoices under an organization: newest first.
pub const INVOICES_NEWEST_FIRST: Ordering =
    Ordering::new("inv:issued_desc", Sort::by("issued_at", true));
pub const LINES_IN_ORDER: Ordering = Ordering::new("inl:id", Sort::ID_ASC);
pub const SUBSCRIPTIONS_OLDEST_FIRST: Ordering = Ordering::new("sub:id", Sort::ID_ASC);

/// A price plan.
#[derive(Clone)]
pub struct Plan(pub plan::Model);

#[Object(visible = "crate::graphql::guard::visible::customers")]
impl Plan {
    /// Opaque, stable id.
    async fn id(&self) -> ID {
        ids::encode(Kind::Plan, self.0.id)
    }

    /// Short code, unique (e.g. `team`).
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// List price per seat and month, in minor units of `currency`.
    async fn price_cents(&self) -> i64 {
        self.0.price_cents
    }

    /// ISO 4217 code of the prices.
    async fn currency(&self) -> &str {
        &self.0.currency
    }

    /// Cost data: what one seat costs us per month, in minor units. Null when the
    /// caller may not read cost data.
    #[graphql(
        guard = "Need(Permission::ReadCostData).and(Audited(\"Plan.unitCostCents\"))",
        visible = "crate::graphql::guard::visible::cost_data"
    )]
    async fn unit_cost_cents(&self) -> Option<i64> {
        Some(self.0.unit_cost_cents)
    }

    /// Subscriptions on this plan, oldest first. `first`: default 20, at most 100 (1,000 for service identities) unless configured.
    #[graphql(
        guard = "Need(Permission::ReadBilling)",
        visible = "crate::graphql::guard::visible::billing"
    )]
    async fn subscriptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SubscriptionConnection> {
        let page = child_page::<SubscriptionsOfPlan>(
            ctx,
            self.0.id,
            first,
            after,
            &SUBSCRIPTIONS_OLDEST_FIRST,
        )
        .await?;
        Ok(SubscriptionConnection::from_page(
            cursors(ctx)?,
            page,
            &SUBSCRIPTIONS_OLDEST_FIRST,
            keyset_of(&SUBSCRIPTIONS_OLDEST_FIRST),
            Subscription,
        ))
    }
}

mirror_enum! {
    /// Where a subscription is in its billing cycle.
    SubscriptionStatus <=> subscription::SubscriptionStatus, visible = "crate::graphql::guard::visible::billing" {
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

impl SortKey for subscription::Model {
    fn id(&self) -> i64 {
        self.id
    }
    fn sort_value(&self, _column: &str) -> SortValue {
        SortValue::None
    }
}

#[Object(visible = "crate::graphql::guard::visible::billing")]
impl Subscription {
    /// Opaque, stable id.
    async fn id(&self) -> ID {
        ids::encode(Kind::Subscription, self.0.id)
    }

    /// Seats paid for.
    async fn seats(&self) -> i64 {
        self.0.seats
    }

    async fn status(&self) -> SubscriptionStatus {
        self.0.status.into()
    }

    /// Start of the current billing period.
    async fn current_period_start(&self) -> DateTime<Utc> {
        self.0.current_period_start
    }

    /// End of the current billing period.
    async fn current_period_end(&self) -> DateTime<Utc> {
        self.0.current_period_end
    }

    /// Discount on the list price, in percent (0 to 100).
    async fn discount_percent(&self) -> i64 {
        self.0.discount_percent
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The plan subscribed to.
    async fn plan(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Plan>> {
        Ok(load_one(ctx, PlanId(self.0.plan_id)).await?.map(Plan))
    }

    /// The subscribing organization.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        Ok(load_one(ctx, OrganizationId(self.0.organization_id))
            .await?
            .map(Organization))
    }
}

connection!(
    SubscriptionConnection,
    SubscriptionEdge,
    Subscription,
    "a subscription",
    "crate::graphql::guard::visible::billing"
);

mirror_enum! {
    /// Where an invoice is in its life.
    InvoiceStatus <=> invoice::InvoiceStatus, visible = "crate::graphql::guard::visible::billing" {
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

impl SortKey for invoice::Model {
    fn id(&self) -> i64 {
        self.id
    }
    fn sort_value(&self, column: &str) -> SortValue {
        match column {
            "issued_at" => SortValue::Time(self.issued_at),
            "number" => SortValue::Text(self.number.clone()),
            _ => SortValue::None,
        }
    }
}

#[Object(visible = "crate::graphql::guard::visible::billing")]
impl Invoice {
    /// Opaque, stable id.
    async fn id(&self) -> ID {
        ids::encode(Kind::Invoice, self.0.id)
    }

    /// The invoice number the customer sees (e.g. `INV-000042-003`).
    async fn number(&self) -> &str {
        &self.0.number
    }

    /// Total in minor units of `currency`.
    async fn amount_cents(&self) -> i64 {
        self.0.amount_cents
    }

    /// ISO 4217 code.
    async fn currency(&self) -> &str {
        &self.0.currency
    }

    async fn status(&self) -> InvoiceStatus {
        self.0.status.into()
    }

    async fn issued_at(&self) -> DateTime<Utc> {
        self.0.issued_at
    }

    async fn due_at(&self) -> DateTime<Utc> {
        self.0.due_at
    }

    /// When it was paid; null unless `status` is `PAID`.
    async fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.0.paid_at
    }

    /// Cost data: what the payment processor charged us, in minor units. Null when
    /// the caller may not read cost data.
    #[graphql(
        guard = "Need(Permission::ReadCostData).and(Audited(\"Invoice.processingFeeCents\"))",
        visible = "crate::graphql::guard::visible::cost_data"
    )]
    async fn processing_fee_cents(&self) -> Option<i64> {
        Some(self.0.processing_fee_cents)
    }

    /// The invoiced organization.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        Ok(load_one(ctx, OrganizationId(self.0.organization_id))
            .await?
            .map(Organization))
    }

    /// The invoice's lines in order. `first`: default 20, at most 100 (1,000 for service identities) unless configured.
    async fn lines(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<InvoiceLineConnection> {
        let page =
            child_page::<LinesOfInvoice>(ctx, self.0.id, first, after, &LINES_IN_ORDER).await?;
        Ok(InvoiceLineConnection::from_page(
            cursors(ctx)?,
            page,
            &LINES_IN_ORDER,
            keyset_of(&LINES_IN_ORDER),
            InvoiceLine,
        ))
    }
}

connection!(
    InvoiceConnection,
    InvoiceEdge,
    Invoice,
    "an invoice",
    "crate::graphql::guard::visible::billing"
);

/// One line of an invoice.
#[derive(Clone)]
pub struct InvoiceLine(pub invoice_line::Model);

impl SortKey for invoice_line::Model {
    fn id(&self) -> i64 {
        self.id
    }
    fn sort_value(&self, _column: &str) -> SortValue {
        SortValue::None
    }
}

#[Object(visible = "crate::graphql::guard::visible::billing")]
impl InvoiceLine {
    /// Opaque, stable id.
    async fn id(&self) -> ID {
        ids::encode(Kind::InvoiceLine, self.0.id)
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn quantity(&self) -> i64 {
        self.0.quantity
    }

    /// Price of one unit, in minor units (negative for a discount).
    async fn unit_amount_cents(&self) -> i64 {
        self.0.unit_amount_cents
    }

    /// `quantity × unitAmountCents`.
    async fn amount_cents(&self) -> i64 {
        self.0.amount_cents
    }

    /// The invoice this line belongs to.
    async fn invoice(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Invoice>> {
        Ok(load_one(ctx, InvoiceId(self.0.invoice_id))
            .await?
            .map(Invoice))
    }
}

connection!(
    InvoiceLineConnection,
    InvoiceLineEdge,
    InvoiceLine,
    "an invoice line",
    "crate::graphql::guard::visible::billing"
);

/// Which invoices to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
#[graphql(visible = "crate::graphql::guard::visible::billing")]
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
#[graphql(visible = "crate::graphql::guard::visible::billing")]
pub enum InvoiceOrder {
    /// Newest first (the default).
    #[default]
    IssuedAtDesc,
    /// Oldest first.
    IssuedAtAsc,
}

impl InvoiceOrder {
    pub fn ordering(self) -> Ordering {
        match self {
            InvoiceOrder::IssuedAtDesc => INVOICES_NEWEST_FIRST,
            InvoiceOrder::IssuedAtAsc => {
                Ordering::new("inv:issued_asc", Sort::by("issued_at", false))
            }
        }
    }
}
