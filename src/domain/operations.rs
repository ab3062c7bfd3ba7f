//! The bulk operations and their rules.

use sea_orm::{ActiveEnum, Value};
use serde_json::json;

use super::bulk::{BulkOperation, Check};
use crate::catalog;
use crate::store::entities::invoice::InvoiceStatus;
use crate::store::entities::organization::OrganizationStatus;

/// Whether an organization may go from `from` to `to`. Trials convert, pause or
/// end; active accounts pause or end; suspended ones resume or end; churned ones
/// may come back. Nothing goes back to a trial.
pub fn organization_transition_allowed(from: OrganizationStatus, to: OrganizationStatus) -> bool {
    use OrganizationStatus::*;
    matches!(
        (from, to),
        (Trial, Active | Suspended | Churned)
            | (Active, Suspended | Churned)
            | (Suspended, Active | Churned)
            | (Churned, Active)
    )
}

/// Changes organizations' status.
pub struct OrganizationStatusChange {
    pub to: OrganizationStatus,
}

impl BulkOperation for OrganizationStatusChange {
    fn name(&self) -> &'static str {
        "bulkUpdateOrganizationStatus"
    }
    fn table(&self) -> &'static str {
        catalog::table("Organization")
    }
    fn state_expr(&self) -> String {
        "c.\"status\"".to_owned()
    }
    fn check(&self, state: &str) -> Check {
        let Ok(from) = OrganizationStatus::try_from_value(&state.to_owned()) else {
            return Check::Fail(format!("unknown current status {state}"));
        };
        if from == self.to {
            Check::Unchanged
        } else if organization_transition_allowed(from, self.to) {
            Check::Change
        } else {
            Check::Fail(format!(
                "cannot go from {} to {}",
                from.to_value(),
                self.to.to_value()
            ))
        }
    }
    fn assignment(&self) -> (&'static str, Value) {
        ("status", Value::String(Some(self.to.to_value())))
    }
    fn stamps_updated_at(&self) -> bool {
        true
    }
    fn describe(&self) -> serde_json::Value {
        json!({ "status": self.to.to_value() })
    }
    fn malformed(&self) -> &'static str {
        "not an organization id"
    }
    fn entity(&self) -> &'static str {
        "Organization"
    }
    fn field(&self) -> String {
        "status".into()
    }
    fn before(&self, state: &str) -> serde_json::Value {
        json!(state)
    }
    fn after(&self) -> serde_json::Value {
        json!(self.to.to_value())
    }
}

/// An internal flag of an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Flag {
    FraudReview,
    Vip,
    ChurnRisk,
    BetaAccess,
}

impl Flag {
    /// Its path from an organization, as a change names it
    /// (`internalFlags.vip`).
    pub fn path(self) -> String {
        format!("internalFlags.{}", self.field())
    }

    /// Its field of the catalog's `InternalFlags`.
    fn field(self) -> &'static str {
        match self {
            Flag::FraudReview => "fraudReview",
            Flag::Vip => "vip",
            Flag::ChurnRisk => "churnRisk",
            Flag::BetaAccess => "betaAccess",
        }
    }

    /// Its column, from the catalog.
    fn column(self) -> &'static str {
        catalog::column_of("InternalFlags", self.field())
    }
}

/// Sets or clears one internal flag.
pub struct OrganizationFlagChange {
    pub flag: Flag,
    pub value: bool,
}

impl BulkOperation for OrganizationFlagChange {
    fn name(&self) -> &'static str {
        "bulkSetOrganizationFlag"
    }
    fn table(&self) -> &'static str {
        catalog::table("Organization")
    }
    fn state_expr(&self) -> String {
        format!(
            "CASE WHEN c.\"{}\" THEN 'true' ELSE 'false' END",
            self.flag.column()
        )
    }
    fn check(&self, state: &str) -> Check {
        if (state == "true") == self.value {
            Check::Unchanged
        } else {
            Check::Change
        }
    }
    fn assignment(&self) -> (&'static str, Value) {
        (self.flag.column(), Value::Bool(Some(self.value)))
    }
    fn stamps_updated_at(&self) -> bool {
        true
    }
    fn describe(&self) -> serde_json::Value {
        json!({ "flag": self.flag.column(), "value": self.value })
    }
    fn malformed(&self) -> &'static str {
        "not an organization id"
    }
    fn entity(&self) -> &'static str {
        "Organization"
    }
    fn field(&self) -> String {
        self.flag.path()
    }
    fn before(&self, state: &str) -> serde_json::Value {
        json!(state == "true")
    }
    fn after(&self) -> serde_json::Value {
        json!(self.value)
    }
}

/// Assigns tickets to a staff member (or unassigns them).
pub struct TicketAssignment {
    /// The staff member's row id; none to unassign.
    pub assignee: Option<i64>,
}

impl BulkOperation for TicketAssignment {
    fn name(&self) -> &'static str {
        "bulkAssignTickets"
    }
    fn table(&self) -> &'static str {
        catalog::table("SupportTicket")
    }
    fn state_expr(&self) -> String {
        format!(
            "COALESCE(CAST(c.\"{}\" AS TEXT), '')",
            catalog::foreign_key("SupportTicket", "assignee")
        )
    }
    fn check(&self, state: &str) -> Check {
        let current = state.parse::<i64>().ok();
        if current == self.assignee {
            Check::Unchanged
        } else {
            Check::Change
        }
    }
    fn assignment(&self) -> (&'static str, Value) {
        (
            catalog::foreign_key("SupportTicket", "assignee"),
            Value::BigInt(self.assignee),
        )
    }
    fn stamps_updated_at(&self) -> bool {
        true
    }
    fn describe(&self) -> serde_json::Value {
        json!({ "assigneeId": self.assignee })
    }
    fn malformed(&self) -> &'static str {
        "not a ticket id"
    }
    fn entity(&self) -> &'static str {
        "SupportTicket"
    }
    fn field(&self) -> String {
        "assignee".into()
    }
    fn before(&self, state: &str) -> serde_json::Value {
        json!(
            state
                .parse::<i64>()
                .ok()
                .map(|id| catalog::public_id("StaffMember", id))
        )
    }
    fn after(&self) -> serde_json::Value {
        json!(
            self.assignee
                .map(|id| catalog::public_id("StaffMember", id))
        )
    }
}

/// Voids invoices. Paid invoices are refunded, not voided.
pub struct InvoiceVoiding;

impl BulkOperation for InvoiceVoiding {
    fn name(&self) -> &'static str {
        "bulkVoidInvoices"
    }
    fn table(&self) -> &'static str {
        catalog::table("Invoice")
    }
    fn state_expr(&self) -> String {
        "c.\"status\"".to_owned()
    }
    fn check(&self, state: &str) -> Check {
        match InvoiceStatus::try_from_value(&state.to_owned()) {
            Ok(InvoiceStatus::Void) => Check::Unchanged,
            Ok(InvoiceStatus::Paid) => {
                Check::Fail("a paid invoice cannot be voided; refund it instead".into())
            }
            Ok(_) => Check::Change,
            Err(_) => Check::Fail(format!("unknown current status {state}")),
        }
    }
    fn assignment(&self) -> (&'static str, Value) {
        (
            "status",
            Value::String(Some(InvoiceStatus::Void.to_value())),
        )
    }
    fn stamps_updated_at(&self) -> bool {
        false
    }
    fn describe(&self) -> serde_json::Value {
        json!({ "status": "VOID" })
    }
    fn malformed(&self) -> &'static str {
        "not an invoice id"
    }
    fn entity(&self) -> &'static str {
        "Invoice"
    }
    fn field(&self) -> String {
        "status".into()
    }
    fn before(&self, state: &str) -> serde_json::Value {
        json!(state)
    }
    fn after(&self) -> serde_json::Value {
        json!(InvoiceStatus::Void.to_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrganizationStatus::*;

    #[test]
    fn organization_transitions() {
        assert!(organization_transition_allowed(Trial, Active));
        assert!(organization_transition_allowed(Suspended, Active));
        assert!(organization_transition_allowed(Churned, Active));
        assert!(!organization_transition_allowed(Active, Trial));
        assert!(!organization_transition_allowed(Churned, Suspended));
        let op = OrganizationStatusChange { to: Suspended };
        assert_eq!(op.check("SUSPENDED"), Check::Unchanged);
        assert_eq!(op.check("ACTIVE"), Check::Change);
        assert!(matches!(op.check("CHURNED"), Check::Fail(_)));
    }

    #[test]
    fn paid_invoices_are_not_voided() {
        assert!(matches!(InvoiceVoiding.check("PAID"), Check::Fail(_)));
        assert_eq!(InvoiceVoiding.check("OPEN"), Check::Change);
        assert_eq!(InvoiceVoiding.check("VOID"), Check::Unchanged);
    }
}
