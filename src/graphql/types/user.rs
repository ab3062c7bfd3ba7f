//! Users: people in customer organizations. Email and name are personal data.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};

use super::organization::Organization;
use super::support::SupportTicketConnection;
use super::{child_page, link, mirror_enum};
use crate::catalog;
use crate::graphql::described::{Columns, FromCatalog, described};
use crate::graphql::error::ApiError;
use crate::graphql::filter::{InstantRange, ListFilter, Where};
use crate::graphql::ids::Kind;
use crate::graphql::pagination::{connection, cursors};
use crate::store::entities::user;
use crate::store::loaders::{OrganizationId, TicketsOfRequester};
use crate::store::sql::Sql;

mirror_enum! {
    /// A user's role inside their own organization.
    UserOrgRole <=> user::UserOrgRole {
        /// Owns the account; can close it.
        Owner,
        /// Manages users and billing.
        Admin,
        /// Uses the product.
        Member,
    }
}

mirror_enum! {
    /// Whether a user can sign in.
    UserStatus <=> user::UserStatus {
        /// Signed up and can sign in.
        Active,
        /// Invited, has not accepted yet.
        Invited,
        /// Can no longer sign in.
        Disabled,
    }
}

/// A person in a customer organization.
#[derive(Clone)]
pub struct User(pub user::Model);

described!(User, "User", user::Model, UserOrgRole, UserStatus);

#[Object]
impl User {
    #[graphql(flatten)]
    async fn columns(&self) -> Columns<'_, Self> {
        Columns(self)
    }

    #[graphql(guard = "FromCatalog(\"User\")")]
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        link::<_, OrganizationId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"User\")")]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<SupportTicketConnection> {
        let (page, ordering) =
            child_page::<TicketsOfRequester>(ctx, self.0.id, (first, after), (last, before))
                .await?;
        Ok(SupportTicketConnection::of(cursors(ctx)?, page, &ordering))
    }
}

connection!(UserConnection, UserEdge, User, "a user",);

/// Which users to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
pub struct UserFilter {
    /// Any of these statuses; an empty list matches nothing.
    pub status: Option<Vec<UserStatus>>,
    /// Any of these roles in their organization; an empty list matches
    /// nothing.
    pub org_role: Option<Vec<UserOrgRole>>,
    /// Case-insensitive text in the email or name.
    pub search: Option<String>,
    /// Users of any of these organizations; an empty list matches nothing.
    pub organization_id: MaybeUndefined<Vec<ID>>,
    /// Joined within this span.
    pub created_at: Option<InstantRange>,
}

impl ListFilter for UserFilter {
    fn conditions(self) -> Result<Sql, ApiError> {
        Ok(Where::default()
            .any_of::<_, user::UserStatus>("status", self.status)
            .any_of::<_, user::UserOrgRole>("org_role", self.org_role)
            .search(&["email", "name"], self.search)
            .reference(
                catalog::foreign_key("User", "organization"),
                self.organization_id,
                Kind::Organization,
                "filter.organizationId",
            )?
            .within("created_at", self.created_at)
            .done())
    }
}

/// The order of a user list. Ties are broken by id.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UserOrder {
    /// Oldest first (the default).
    #[default]
    CreatedAtAsc,
    /// Newest first.
    CreatedAtDesc,
    /// By email, A to Z.
    EmailAsc,
    /// By email, Z to A.
    EmailDesc,
    /// By name, A to Z.
    NameAsc,
}
