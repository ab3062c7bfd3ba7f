//! Users: people in customer organizations. Email and name are personal data.

use async_graphql::{Context, ID, InputObject, Object};

use super::organization::Organization;
use super::support::SupportTicketConnection;
use super::{child_page, mirror_enum, to_one};
use crate::graphql::described::{Columns, FromCatalog, described};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Ordering, connection, cursors};
use crate::store::entities::user;
use crate::store::loaders::{OrganizationId, TicketsOfRequester};
use crate::store::people::UserQuery;

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
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        to_one::<_, OrganizationId, _, _>(ctx, self).await
    }

    #[graphql(guard = "FromCatalog(\"User\")")]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SupportTicketConnection> {
        let (page, ordering) =
            child_page::<TicketsOfRequester>(ctx, self.0.id, first, after).await?;
        Ok(SupportTicketConnection::of(cursors(ctx)?, page, &ordering))
    }
}

connection!(UserConnection, UserEdge, User, "a user",);

/// Which users to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
pub struct UserFilter {
    /// Any of these statuses.
    pub status: Option<Vec<UserStatus>>,
    /// Case-insensitive text in the email or name.
    pub search: Option<String>,
    /// Users of this organization.
    pub organization_id: Option<ID>,
}

impl UserFilter {
    pub fn into_query(self) -> Result<UserQuery, crate::graphql::error::ApiError> {
        Ok(UserQuery {
            statuses: self
                .status
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            search: self.search,
            organization_id: self
                .organization_id
                .map(|id| ids::decode(Kind::Organization, &id, "filter.organizationId"))
                .transpose()?,
        })
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
}

impl UserOrder {
    pub fn ordering(self) -> Ordering {
        super::ordering_of("User", self)
    }
}
