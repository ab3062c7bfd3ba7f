//! Organizations: customer accounts, with their cost data and internal flags.

use async_graphql::{Context, InputObject, Object};

use super::billing::{InvoiceConnection, Plan, Subscription};
use super::support::SupportTicketConnection;
use super::user::UserConnection;
use super::{child_page, load_one, mirror_enum};
use crate::graphql::described::{Columns, FromCatalog, columns_only, described};
use crate::graphql::error::ApiError;
use crate::graphql::filter::{InstantRange, ListFilter, Where};
use crate::graphql::pagination::{connection, cursors};
use crate::store::entities::organization;
use crate::store::loaders::{
    BillingOfOrganization, InvoicesOfOrganization, TicketsOfOrganization, UsersOfOrganization,
};
use crate::store::sql::Sql;

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
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let (page, ordering) =
            child_page::<UsersOfOrganization>(ctx, self.0.id, (first, after), (last, before))
                .await?;
        Ok(UserConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Organization\")")]
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<InvoiceConnection> {
        let (page, ordering) =
            child_page::<InvoicesOfOrganization>(ctx, self.0.id, (first, after), (last, before))
                .await?;
        Ok(InvoiceConnection::of(cursors(ctx)?, page, &ordering))
    }

    #[graphql(guard = "FromCatalog(\"Organization\")")]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<SupportTicketConnection> {
        let (page, ordering) =
            child_page::<TicketsOfOrganization>(ctx, self.0.id, (first, after), (last, before))
                .await?;
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

/// Which organizations to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
pub struct OrganizationFilter {
    /// Any of these statuses (`status: ACTIVE` for one); an empty list
    /// matches nothing.
    pub status: Option<Vec<OrganizationStatus>>,
    /// Case-insensitive text in the name or slug.
    pub search: Option<String>,
    /// Subscribed to any of the plans of these codes (e.g. `team`); an empty
    /// list matches nothing.
    pub plan_code: Option<Vec<String>>,
    /// Created within this span.
    pub created_at: Option<InstantRange>,
}

impl ListFilter for OrganizationFilter {
    fn conditions(self) -> Result<Sql, ApiError> {
        let mut w = Where::default()
            .any_of::<_, organization::OrganizationStatus>("status", self.status)
            .search(&["name", "slug"], self.search)
            .within("created_at", self.created_at);
        if let Some(codes) = self.plan_code {
            w = w.and(crate::store::organizations::on_plans(&codes));
        }
        Ok(w.done())
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
