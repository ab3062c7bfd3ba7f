//! Guards: each field or mutation that needs a permission declares it from the
//! policy table; no role checks in resolvers.

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

/// Notes in the operation's audit record that a sensitive field was resolved
/// (`Type.field`, as `policy::AUDITED_FIELDS` lists it). Never refuses; placed
/// after a field's `Need`, so only fields actually read are noted.
pub struct Audited(pub &'static str);

impl Guard for Audited {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if let Some(operation) = crate::audit::operation(ctx) {
            operation.sensitive(self.0);
        }
        Ok(())
    }
}

/// Whether the caller holds `permission`; false when no caller is known (e.g.
/// the schema is printed without one).
pub fn can(ctx: &Context<'_>, permission: Permission) -> bool {
    ctx.data_opt::<crate::identity::Principal>()
        .is_some_and(|p| p.can(permission))
}

/// `visible` functions: which callers see a field or type at all. Each reads the
/// policy; `policy::GUARDED_FIELDS` and `GUARDED_TYPES` list where they are used
/// (a test holds the two together).
pub mod visible {
    use async_graphql::Context;

    use super::can;
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

    /// Any change at all: the mutation root and its shared result types.
    pub fn any_write(ctx: &Context<'_>) -> bool {
        crate::policy::WRITE_PERMISSIONS
            .iter()
            .any(|p| can(ctx, *p))
    }
}
