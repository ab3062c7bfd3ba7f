//! Users: people in customer organizations. Email and name are personal data.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::organization::Organization;
use super::support::{SupportTicket, SupportTicketConnection, TICKETS_NEWEST_FIRST};
use super::{child_page, load_one, mirror_enum};
use crate::graphql::guard::Audited;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Ordering, SortKey, connection, cursors, keyset_of};
use crate::store::entities::user;
use crate::store::loaders::{OrganizationId, TicketsOfRequester};
use crate::store::page::{Sort, SortValue};
use crate::store::people::UserQuery;

mirror_enum! {
    /// A user's role inside their own organization.
    UserOrgRole <=> user::UserOrgRole, visible = "crate::graphql::guard::visible::customers" {
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
    UserStatus <=> user::UserStatus, visible = "crate::graphql::guard::visible::customers" {
        /// Signed up and can sign in.
        Active,
        /// Invited, has not accepted yet.
        Invited,
        /// Can no longer sign in.
        Disabled,
    }
}

/// The order of users under an organization: oldest first.
pub const USERS_OLDEST_FIRST: Ordering = Ordering::new("usr:id", Sort::ID_ASC);

/// A person in a customer organization.
#[derive(Clone)]
pub struct User(pub user::Model);

impl SortKey for user::Model {
    fn id(&self) -> i64 {
        self.id
    }
    fn sort_value(&self, column: &str) -> SortValue {
        match column {
            "email" => SortValue::Text(self.email.clone()),
            "created_at" => SortValue::Time(self.created_at),
            _ => SortValue::None,
        }
    }
}

#[Object(visible = "crate::graphql::guard::visible::customers")]
impl User {
    /// Opaque, stable id.
    async fn id(&self) -> ID {
        ids::encode(Kind::User, self.0.id)
    }

    /// Personal data: the sign-in email, lower-case.
    #[graphql(guard = "Audited(\"User.email\")")]
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// Personal data: the full name.
    #[graphql(guard = "Audited(\"User.name\")")]
    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn org_role(&self) -> UserOrgRole {
        self.0.org_role.into()
    }

    async fn status(&self) -> UserStatus {
        self.0.status.into()
    }

    /// Last activity; null when the user never signed in.
    async fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_seen_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The organization the user belongs to.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organization>> {
        Ok(load_one(ctx, OrganizationId(self.0.organization_id))
            .await?
            .map(Organization))
    }

    /// Tickets this user opened, newest first. `first`: default 20, at most 100 (1,000 for service identities) unless configured.
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SupportTicketConnection> {
        let page =
            child_page::<TicketsOfRequester>(ctx, self.0.id, first, after, &TICKETS_NEWEST_FIRST)
                .await?;
        Ok(SupportTicketConnection::from_page(
            cursors(ctx)?,
            page,
            &TICKETS_NEWEST_FIRST,
            keyset_of(&TICKETS_NEWEST_FIRST),
            SupportTicket,
        ))
    }
}

connection!(
    UserConnection,
    UserEdge,
    User,
    "a user",
    "crate::graphql::guard::visible::customers"
);

/// Which users to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
#[graphql(visible = "crate::graphql::guard::visible::customers")]
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
#[graphql(visible = "crate::graphql::guard::visible::customers")]
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
        match self {
            UserOrder::CreatedAtAsc => {
                Ordering::new("usr:created_asc", Sort::by("created_at", false))
            }
            UserOrder::CreatedAtDesc => {
                Ordering::new("usr:created_desc", Sort::by("created_at", true))
            }
            UserOrder::EmailAsc => Ordering::new("usr:email_asc", Sort::by("email", false)),
        }
    }
}
