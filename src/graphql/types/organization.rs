//! Organizations: customer accounts, with their cost data and internal flags.

use async_graphql::{Context, InputObject, Object, OneofObject};
use chrono::{DateTime, Utc};

use super::billing::{InvoiceConnection, Plan, Subscription};
use super::support::SupportTicketConnection;
use super::user::UserConnection;
use super::{child_page, load_one, mirror_enum};
use crate::graphql::described::{Columns, FromCatalog, columns_only, described};
use crate::graphql::pagination::{Ordering, connection, cursors};
use crate::store::entities::organization;
use crate::store::loaders::{
    BillingOfOrganization, InvoicesOfOrganization, TicketsOfOrganization, UsersOfOrganization,
};
use crate::store::organizations::OrganizationQuery;

mirror_enum! {
    /// Where a customer account is in its lifecycle.
    OrganizationStatus <=> organization::OrganizationStatus {
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

described!(
    Organization,
    "Organization",
    organization::Model,
    OrganizationStatus
);

/// The internal flags of an account, over its row.
#[derive(Clone)]
pub struct InternalFlags(pub organization::Model);

described!(InternalFlags, "InternalFlags", organization::Model);
columns_only!(InternalFlags);

#[Object]
impl Organization {
    #[graphql(flatten)]
    async fn columns(&self) -> Columns<'_, Self> {
        Columns(self)
    }

    #[graphql(guard = "FromCatalog(\"Organization\")")]
    async fn plan(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Plan>> {
        Ok(load_one(ctx, BillingOfOrganization(self.0.id))
            .await?
            .map(|(_, plan)| Plan(plan)))
    }

    #[graphql(guard = "FromCatalog(\"Organization\")")]
    async fn subscription(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Subscription>> {
        Ok(load_one(ctx, BillingOfOrganization(self.0.id))
            .await?
            .map(|(subscription, _)| Subscription(subscription)))
    }

    #[graphql(guard = "FromCatalog(\"Organization\")")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let (page, ordering) =
            child_page::<UsersOfOrganization>(ctx, self.0.id, first, after).await?;
        Ok(UserConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Organization\")")]
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<InvoiceConnection> {
        let (page, ordering) =
            child_page::<InvoicesOfOrganization>(ctx, self.0.id, first, after).await?;
        Ok(InvoiceConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Organization\")")]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SupportTicketConnection> {
        let (page, ordering) =
            child_page::<TicketsOfOrganization>(ctx, self.0.id, first, after).await?;
        Ok(SupportTicketConnection::of(cursors(ctx)?, page, &ordering))
    }

    /// Every change to this account, newest first, bulk ones included, read
    /// from the audit log; a field's change is listed only to callers who may
    /// read the field.
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<super::history::ChangeConnection> {
        super::history::of(ctx, "Organization", self.0.id, first, after).await
    }

    #[graphql(guard = "FromCatalog(\"Organization\")")]
    async fn internal_flags(&self) -> Option<InternalFlags> {
        Some(InternalFlags(self.0.clone()))
    }
}

connection!(
    OrganizationConnection,
    OrganizationEdge,
    Organization,
    "an organization",
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
        super::ordering_of("Organization", self)
    }
}
