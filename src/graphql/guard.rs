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
