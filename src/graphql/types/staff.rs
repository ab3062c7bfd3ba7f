//! Staff: employees known from the identity provider, and the caller (`viewer`).

use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::child_page;
use super::support::SupportTicketConnection;
use crate::graphql::described::{Columns, FromCatalog, described};
use crate::graphql::error::ApiError;
use crate::graphql::filter::{Instant, InstantRange, ListFilter, Where};
use crate::graphql::pagination::{connection, cursors};
use crate::identity::{Principal, PrincipalKind};
use crate::store::entities::staff_member;
use crate::store::loaders::TicketsOfAssignee;
use crate::store::sql::Sql;

/// An employee, as last seen in a token from the identity provider.
#[derive(Clone)]
pub struct StaffMember(pub staff_member::Model);

described!(StaffMember, "StaffMember", staff_member::Model);

#[Object]
impl StaffMember {
    #[graphql(flatten)]
    async fn columns(&self) -> Columns<'_, Self> {
        Columns(self)
    }

    #[graphql(guard = "FromCatalog(\"StaffMember\")")]
    async fn assigned_tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<SupportTicketConnection> {
        let (page, ordering) =
            child_page::<TicketsOfAssignee>(ctx, self.0.id, (first, after), (last, before)).await?;
        Ok(SupportTicketConnection::of(cursors(ctx)?, page, &ordering))
    }
}

connection!(
    StaffMemberConnection,
    StaffMemberEdge,
    StaffMember,
    "a staff member",
);

/// Which staff members to list; every given condition must hold.
#[derive(InputObject, Clone, Default)]
pub struct StaffMemberFilter {
    /// Case-insensitive text in the email or name.
    pub search: Option<String>,
    /// Last seen (signed in or called) within this span.
    pub last_seen_at: Option<InstantRange>,
}

impl ListFilter for StaffMemberFilter {
    fn conditions(self) -> Result<Sql, ApiError> {
        Ok(Where::default()
            .search(&["email", "name"], self.search)
            .within("last_seen_at", self.last_seen_at)
            .done())
    }
}

/// The order of a staff list. Ties are broken by id.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StaffMemberOrder {
    /// First seen first (the default).
    #[default]
    CreatedAtAsc,
    /// By name, A to Z.
    NameAsc,
    /// By name, Z to A.
    NameDesc,
    /// By email, A to Z.
    EmailAsc,
}

/// What kind of caller.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewerKind {
    /// A person signed in through the identity provider.
    Staff,
    /// A script with a client-credentials token.
    Service,
    /// The demo identity of `backplane dev`.
    Demo,
}

/// The caller, as authenticated for this request.
#[derive(SimpleObject)]
pub struct Viewer {
    /// The identity provider's subject.
    pub subject: String,
    /// Null for service identities.
    pub email: Option<String>,
    /// The person's name; null for service identities.
    pub name: Option<String>,
    /// A person, a script, or the dev demo identity.
    pub kind: ViewerKind,
    /// Roles held (`support`, `billing`, `finance`, `ops`, `admin`, `auditor`).
    pub roles: Vec<String>,
    /// Everything the caller may do, by the role matrix (e.g. `read:cost_data`):
    /// a UI shows or hides its controls by these.
    pub permissions: Vec<String>,
    /// The permissions among `permissions` the caller may use only after
    /// signing in again with a second factor (a step-up): an operation that
    /// uses one now is refused with `INSUFFICIENT_AUTHENTICATION`. Empty for
    /// a recent strong sign-in, and always for service identities.
    pub step_up_required: Vec<String>,
    /// When the person last authenticated at the identity provider (the
    /// token's `auth_time`), when it says.
    pub authenticated_at: Option<Instant>,
    /// How they authenticated (the token's `amr`, RFC 8176: `pwd`, `otp`,
    /// `hwk`, …), when it says.
    pub authentication_methods: Vec<String>,
}

impl From<&Principal> for Viewer {
    fn from(p: &Principal) -> Self {
        Viewer {
            subject: p.subject.clone(),
            email: p.email.clone(),
            name: p.name.clone(),
            kind: match p.kind {
                PrincipalKind::Staff => ViewerKind::Staff,
                PrincipalKind::Service => ViewerKind::Service,
                PrincipalKind::Demo => ViewerKind::Demo,
            },
            roles: p.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            permissions: p
                .permissions()
                .into_iter()
                .map(|x| x.as_str().to_owned())
                .collect(),
            step_up_required: p.step_up.iter().map(|x| x.as_str().to_owned()).collect(),
            authenticated_at: p
                .authentication
                .auth_time
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(Instant),
            authentication_methods: p.authentication.amr.clone(),
        }
    }
}
