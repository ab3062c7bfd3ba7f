//! Guards: each field or mutation outside the catalog that needs a
//! permission declares it from the policy table (catalog fields are guarded
//! by `described`); no role checks in resolvers.

use async_graphql::{Context, Guard};

use super::error::ApiError;
use crate::policy::Permission;

/// Requires a permission of the policy.
pub struct Need(pub Permission);

impl Guard for Need {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let principal = super::principal(ctx)?;
        if principal.can(self.0) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(self.0.as_str()).into())
        }
    }
}

/// Whether the caller holds `permission`; false when no caller is known (e.g.
/// the schema is printed without one).
pub fn can(ctx: &Context<'_>, permission: Permission) -> bool {
    ctx.data_opt::<crate::identity::Principal>()
        .is_some_and(|p| p.can(permission))
}

/// Whether the caller holds `permission`, usable now or once they step up:
/// what the schema shows them.
pub fn holds(ctx: &Context<'_>, permission: Permission) -> bool {
    ctx.data_opt::<crate::identity::Principal>()
        .is_some_and(|p| p.holds(permission))
}

/// `visible` functions: which callers see a field or type at all. Each reads the
/// policy; the catalog's types and fields get theirs from `described`, the
/// others name theirs (`policy::GUARDED_FIELDS` and `GUARDED_TYPES` list
/// them; a test holds the schema to the lists).
pub mod visible {
    use async_graphql::Context;

    use super::holds as can;
    use crate::policy::Permission;

    pub fn customers(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::ReadCustomers)
    }

    pub fn billing(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::ReadBilling)
    }

    pub fn cost_data(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::ReadCostData)
    }

    pub fn internal_flags(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::ReadInternalFlags)
    }

    pub fn audit_log(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::ReadAuditLog)
    }

    pub fn bulk_organizations(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::BulkOrganizations)
    }

    pub fn write_internal_flags(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::WriteInternalFlags)
    }

    pub fn write_tickets(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::WriteTickets)
    }

    pub fn write_invoices(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::WriteInvoices)
    }

    pub fn write_organizations(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::WriteOrganizations)
    }

    pub fn write_trials(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::WriteTrials)
    }

    pub fn write_subscriptions(ctx: &Context<'_>) -> bool {
        can(ctx, Permission::WriteSubscriptions)
    }

    /// Every permission there is (an unclassified catalog field: admin).
    pub fn everything(ctx: &Context<'_>) -> bool {
        Permission::ALL.into_iter().all(|p| can(ctx, p))
    }

    /// Any change at all: the mutation root and its shared result types.
    pub fn any_write(ctx: &Context<'_>) -> bool {
        crate::policy::WRITE_PERMISSIONS
            .iter()
            .any(|p| can(ctx, *p))
    }
}
