//! Staff: employees known from the identity provider, and the caller (`viewer`).

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::child_page;
use super::support::{SupportTicket, SupportTicketConnection, TICKETS_NEWEST_FIRST};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{SortKey, connection, cursors, keyset_of};
use crate::identity::{Principal, PrincipalKind};
use crate::store::entities::staff_member;
use crate::store::loaders::TicketsOfAssignee;
use crate::store::page::SortValue;

/// An employee, as last seen in a token from the identity provider.
#[derive(Clone)]
pub struct StaffMember(pub staff_member::Model);

/// The order of the staff list: by id.
pub const STAFF_BY_ID: crate::graphql::pagination::Ordering =
    crate::graphql::pagination::Ordering::new("stf:id", crate::store::page::Sort::ID_ASC);

impl SortKey for staff_member::Model {
    fn id(&self) -> i64 {
        self.id
    }
    fn sort_value(&self, _column: &str) -> SortValue {
        SortValue::None
    }
}

#[Object(visible = "crate::graphql::guard::visible::customers")]
impl StaffMember {
    /// Opaque, stable id.
    async fn id(&self) -> ID {
        ids::encode(Kind::Staff, self.0.id)
    }

    /// The identity provider's subject (`sub`).
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Roles as last seen in a token.
    async fn roles(&self) -> Vec<String> {
        self.0
            .roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Last request; null when never seen.
    async fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_seen_at
    }

    /// Tickets assigned to this person, newest first. `first`: default 20, at most 100 (1,000 for service identities) unless configured.
    async fn assigned_tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SupportTicketConnection> {
        let page =
            child_page::<TicketsOfAssignee>(ctx, self.0.id, first, after, &TICKETS_NEWEST_FIRST)
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
    StaffMemberConnection,
    StaffMemberEdge,
    StaffMember,
    "a staff member",
    "crate::graphql::guard::visible::customers"
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
        }
    }
}
