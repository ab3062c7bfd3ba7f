//! Staff: employees known from the identity provider, and the caller (`viewer`).

use async_graphql::{Context, Object, SimpleObject};

use super::child_page;
use super::support::SupportTicketConnection;
use crate::graphql::described::{Columns, FromCatalog, described};
use crate::graphql::pagination::{connection, cursors};
use crate::identity::{Principal, PrincipalKind};
use crate::store::entities::staff_member;
use crate::store::loaders::TicketsOfAssignee;

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
    ) -> async_graphql::Result<SupportTicketConnection> {
        let (page, ordering) =
            child_page::<TicketsOfAssignee>(ctx, self.0.id, first, after).await?;
        Ok(SupportTicketConnection::of(cursors(ctx)?, page, &ordering))
    }
}

connection!(
    StaffMemberConnection,
    StaffMemberEdge,
    StaffMember,
    "a staff member",
);

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
    pub name: Option<String>,
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
    pub authenticated_at: Option<chrono::DateTime<chrono::Utc>>,
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
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
            authentication_methods: p.authentication.amr.clone(),
        }
    }
}
