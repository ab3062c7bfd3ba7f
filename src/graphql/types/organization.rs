//! Organizations: customer accounts, with their cost data and internal flags.

use async_graphql::{Context, ID, InputObject, Object, OneofObject, SimpleObject};
use chrono::{DateTime, Utc};

use super::billing::{INVOICES_NEWEST_FIRST, Invoice, InvoiceConnection, Plan, Subscription};
use super::support::{SupportTicket, SupportTicketConnection, TICKETS_NEWEST_FIRST};
use super::user::{USERS_OLDEST_FIRST, User, UserConnection};
use super::{child_page, load_one, mirror_enum};
use crate::graphql::guard::{Audited, Need};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Ordering, SortKey, connection, cursors, keyset_of};
use crate::policy::Permission;
use crate::store::entities::organization;
use crate::store::loaders::{
    BillingOfOrganization, InvoicesOfOrganization, TicketsOfOrganization, UsersOfOrganization,
};
use crate::store::organizations::OrganizationQuery;
use crate::store::page::{Sort, SortValue};

mirror_enum! {
    /// Where a customer account is in its lifecycle.
    OrganizationStatus <=> organization::OrganizationStatus, visible = "crate::graphql::guard::visible::customers" {
        /// Evaluating Backplane's product on a trial.
        Trial,
        /// A paying customer.
        Active,
        /// Access suspended (unpaid, abuse, or on request).
        Suspended,
        /// The customer left.
        Churned,
    }
}

/// A customer account.
#[derive(Clone)]
pub struct Organization(pub organization::Model);

impl SortKey for organization::Model {
    fn id(&self) -> i64 {
        self.id
    }
    fn sort_value(&self, column: &str) -> SortValue {
        match column {
            "name" => SortValue::Text(self.name.clone()),
            "created_at" => SortValue::Time(self.created_at),
            _ => SortValue::None,
        }
    }
}

/// Internal flags of an account; never shown to customers.
#[derive(SimpleObject, Clone)]
#[graphql(visible = "crate::graphql::guard::visible::internal_flags")]
pub struct InternalFlags {
    /// Under review by the fraud team.
    pub fraud_review: bool,
    /// A very important customer: escalate everything.
    pub vip: bool,
    /// Likely to leave, by the customer-success model or by hand.
    pub churn_risk: bool,
    /// Has access to beta features.
    pub beta_access: bool,
}

#[Object(visible = "crate::graphql::guard::visible::customers")]
impl Organization {
    /// Opaque, stable id.
    async fn id(&self) -> ID {
        ids::encode(Kind::Organization, self.0.id)
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Unique, URL-safe short name.
    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn status(&self) -> OrganizationStatus {
        self.0.status.into()
    }

    /// Where the account's data lives (e.g. `eu-west-1`).
    async fn region(&self) -> &str {
        &self.0.region
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The plan of the current subscription; null when there is none.
    async fn plan(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Plan>> {
        Ok(load_one(ctx, BillingOfOrganization(self.0.id))
            .await?
            .map(|(_, plan)| Plan(plan)))
    }

    /// The current subscription; null when there is none.
    #[graphql(
        guard = "Need(Permission::ReadBilling)",
        visible = "crate::graphql::guard::visible::billing"
    )]
    async fn subscription(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Subscription>> {
        Ok(load_one(ctx, BillingOfOrganization(self.0.id))
            .await?
            .map(|(subscription, _)| Subscription(subscription)))
    }

    /// The account's users, oldest first. `first`: default 20, at most 100 (1,000 for service identities) unless configured.
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let page =
            child_page::<UsersOfOrganization>(ctx, self.0.id, first, after, &USERS_OLDEST_FIRST)
                .await?;
        Ok(UserConnection::from_page(
            cursors(ctx)?,
            page,
            &USERS_OLDEST_FIRST,
            keyset_of(&USERS_OLDEST_FIRST),
            User,
        ))
    }

    /// The account's invoices, newest first. `first`: default 20, at most 100 (1,000 for service identities) unless configured.
    #[graphql(
        guard = "Need(Permission::ReadBilling)",
        visible = "crate::graphql::guard::visible::billing"
    )]
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<InvoiceConnection> {
        let page = child_page::<InvoicesOfOrganization>(
            ctx,
            self.0.id,
            first,
            after,
            &INVOICES_NEWEST_FIRST,
        )
        .await?;
        Ok(InvoiceConnection::from_page(
            cursors(ctx)?,
            page,
            &INVOICES_NEWEST_FIRST,
            keyset_of(&INVOICES_NEWEST_FIRST),
            Invoice,
        ))
    }

    /// The account's support tickets, newest first. `first`: default 20, at most 100 (1,000 for service identities) unless configured.
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SupportTicketConnection> {
        let page = child_page::<TicketsOfOrganization>(
            ctx,
            self.0.id,
            first,
            after,
            &TICKETS_NEWEST_FIRST,
        )
        .await?;
        Ok(SupportTicketConnection::from_page(
            cursors(ctx)?,
            page,
            &TICKETS_NEWEST_FIRST,
            keyset_of(&TICKETS_NEWEST_FIRST),
            SupportTicket,
        ))
    }

    /// Cost data: what this account costs to serve per month, in minor units of
    /// USD. Null when the caller may not read cost data.
    #[graphql(
        guard = "Need(Permission::ReadCostData).and(Audited(\"Organization.monthlyCostCents\"))",
        visible = "crate::graphql::guard::visible::cost_data"
    )]
    async fn monthly_cost_cents(&self) -> Option<i64> {
        Some(self.0.monthly_cost_cents)
    }

    /// Cost data: gross margin in basis points (10000 = 100 %); negative when the
    /// account loses money.
    #[graphql(
        guard = "Need(Permission::ReadCostData).and(Audited(\"Organization.grossMarginBps\"))",
        visible = "crate::graphql::guard::visible::cost_data"
    )]
    async fn gross_margin_bps(&self) -> Option<i64> {
        Some(self.0.gross_margin_bps)
    }

    /// Internal flags. Null when the caller may not read them.
    #[graphql(
        guard = "Need(Permission::ReadInternalFlags).and(Audited(\"Organization.internalFlags\"))",
        visible = "crate::graphql::guard::visible::internal_flags"
    )]
    async fn internal_flags(&self) -> Option<InternalFlags> {
        Some(InternalFlags {
            fraud_review: self.0.fraud_review,
            vip: self.0.vip,
            churn_risk: self.0.churn_risk,
            beta_access: self.0.beta_access,
        })
    }
}

connection!(
    OrganizationConnection,
    OrganizationEdge,
    Organization,
    "an organization",
    "crate::graphql::guard::visible::customers"
);

/// One status or several.
#[derive(OneofObject, Clone)]
#[graphql(visible = "crate::graphql::guard::visible::customers")]
pub enum StatusMatch {
    /// Exactly this status.
    Is(OrganizationStatus),
    /// Any of these statuses.
    AnyOf(Vec<OrganizationStatus>),
}

/// Which organizations to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
#[graphql(visible = "crate::graphql::guard::visible::customers")]
pub struct OrganizationFilter {
    /// One status or a list of them.
    pub status: Option<StatusMatch>,
    /// Case-insensitive text in the name or slug.
    pub search: Option<String>,
    /// Subscribed to the plan with this code (e.g. `team`).
    pub plan_code: Option<String>,
    /// Created at or after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before this instant.
    pub created_before: Option<DateTime<Utc>>,
}

impl From<OrganizationFilter> for OrganizationQuery {
    fn from(f: OrganizationFilter) -> Self {
        OrganizationQuery {
            statuses: match f.status {
                None => Vec::new(),
                Some(StatusMatch::Is(s)) => vec![s.into()],
                Some(StatusMatch::AnyOf(list)) => list.into_iter().map(Into::into).collect(),
            },
            search: f.search,
            plan_code: f.plan_code,
            created_after: f.created_after,
            created_before: f.created_before,
        }
    }
}

/// The order of an organization list. Ties are broken by id.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[graphql(visible = "crate::graphql::guard::visible::customers")]
pub enum OrganizationOrder {
    /// Oldest first (the default): new accounts appear at the end.
    #[default]
    CreatedAtAsc,
    /// Newest first.
    CreatedAtDesc,
    /// By name, A to Z.
    NameAsc,
    /// By name, Z to A.
    NameDesc,
}

impl OrganizationOrder {
    pub fn ordering(self) -> Ordering {
        match self {
            OrganizationOrder::CreatedAtAsc => {
                Ordering::new("org:created_asc", Sort::by("created_at", false))
            }
            OrganizationOrder::CreatedAtDesc => {
                Ordering::new("org:created_desc", Sort::by("created_at", true))
            }
            OrganizationOrder::NameAsc => Ordering::new("org:name_asc", Sort::by("name", false)),
            OrganizationOrder::NameDesc => Ordering::new("org:name_desc", Sort::by("name", true)),
        }
    }
}
