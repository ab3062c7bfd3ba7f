//! The role matrix: the one table that schema visibility, guards and
//! `viewer { roles permissions }` read. Adding a role or a field group is one edit
//! here. Which field needs which permission follows from the catalog's
//! classes (`catalog`); the fields outside it (the audit log, the changes)
//! are listed here.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::catalog::{self, Need};

/// A role a principal may hold; what it may do is the union of its roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Support,
    Billing,
    Finance,
    Ops,
    Admin,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Support,
        Role::Billing,
        Role::Finance,
        Role::Ops,
        Role::Admin,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Support => "support",
            Role::Billing => "billing",
            Role::Finance => "finance",
            Role::Ops => "ops",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or(())
    }
}

/// A named right. Service identities are granted these directly by scope
/// (`backplane:<name>`), staff get them through roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Organizations, users, tickets, staff.
    ReadCustomers,
    /// Invoices, subscriptions.
    ReadBilling,
    /// Cost to serve, margins, unit costs, processing fees.
    ReadCostData,
    /// Fraud review, VIP, churn risk, beta access.
    ReadInternalFlags,
    WriteInternalFlags,
    /// Replies, internal notes, status, priority and assignee of tickets.
    WriteTickets,
    /// Marking paid, voiding, credit notes.
    WriteInvoices,
    BulkOrganizations,
    ReadAuditLog,
    /// One organization's status.
    WriteOrganizations,
    /// Trial extensions.
    WriteTrials,
    /// Plan and seats of a subscription.
    WriteSubscriptions,
}

impl Permission {
    pub const ALL: [Permission; 12] = [
        Permission::ReadCustomers,
        Permission::ReadBilling,
        Permission::ReadCostData,
        Permission::ReadInternalFlags,
        Permission::WriteInternalFlags,
        Permission::WriteTickets,
        Permission::WriteInvoices,
        Permission::BulkOrganizations,
        Permission::ReadAuditLog,
        Permission::WriteOrganizations,
        Permission::WriteTrials,
        Permission::WriteSubscriptions,
    ];

    /// The stable name: `viewer.permissions` and service scopes use it.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadCustomers => "read:customers",
            Permission::ReadBilling => "read:billing",
            Permission::ReadCostData => "read:cost_data",
            Permission::ReadInternalFlags => "read:internal_flags",
            Permission::WriteInternalFlags => "write:internal_flags",
            Permission::WriteTickets => "write:tickets",
            Permission::WriteInvoices => "write:invoices",
            Permission::BulkOrganizations => "bulk:organizations",
            Permission::ReadAuditLog => "read:audit_log",
            Permission::WriteOrganizations => "write:organizations",
            Permission::WriteTrials => "write:trials",
            Permission::WriteSubscriptions => "write:subscriptions",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Permission::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// The matrix of `shared/DESIGN.md`: which permissions a role grants.
pub fn grants(role: Role) -> &'static [Permission] {
    use Permission::*;
    match role {
        Role::Support => &[ReadCustomers, ReadBilling, WriteTickets, WriteTrials],
        Role::Billing => &[
            ReadCustomers,
            ReadBilling,
            WriteInvoices,
            WriteSubscriptions,
        ],
        Role::Finance => &[ReadCustomers, ReadBilling, ReadCostData],
        Role::Ops => &[
            ReadCustomers,
            ReadInternalFlags,
            WriteInternalFlags,
            BulkOrganizations,
            WriteOrganizations,
        ],
        Role::Admin => &[
            ReadCustomers,
            ReadBilling,
            ReadCostData,
            ReadInternalFlags,
            WriteInternalFlags,
            WriteTickets,
            WriteInvoices,
            BulkOrganizations,
            ReadAuditLog,
            WriteOrganizations,
            WriteTrials,
            WriteSubscriptions,
        ],
        Role::Auditor => &[ReadAuditLog],
    }
}

/// Schema fields outside the catalog that need a permission, as `(type,
/// field, permission)`: the audit log and the changes. (Every catalog
/// field's permission follows from its class: `catalog::needs`.) For a
/// caller without it the field does not exist: introspection leaves it out,
/// a query naming it fails validation as an unknown field would, and a guard
/// refuses it at execution as a second wall.
pub const GUARDED_FIELDS: &[(&str, &str, Permission)] = &[
    // The audit log.
    ("Query", "auditEvents", Permission::ReadAuditLog),
    // Changes.
    (
        "Mutation",
        "bulkUpdateOrganizationStatus",
        Permission::BulkOrganizations,
    ),
    (
        "Mutation",
        "bulkSetOrganizationFlag",
        Permission::WriteInternalFlags,
    ),
    ("Mutation", "bulkAssignTickets", Permission::WriteTickets),
    ("Mutation", "bulkVoidInvoices", Permission::WriteInvoices),
    (
        "Mutation",
        "setOrganizationStatus",
        Permission::WriteOrganizations,
    ),
    (
        "Mutation",
        "setOrganizationFlag",
        Permission::WriteInternalFlags,
    ),
    ("Mutation", "extendTrial", Permission::WriteTrials),
    (
        "Mutation",
        "changeSubscription",
        Permission::WriteSubscriptions,
    ),
    ("Mutation", "markInvoicePaid", Permission::WriteInvoices),
    ("Mutation", "voidInvoice", Permission::WriteInvoices),
    ("Mutation", "issueCreditNote", Permission::WriteInvoices),
    ("Mutation", "replyToTicket", Permission::WriteTickets),
    ("Mutation", "addInternalNote", Permission::WriteTickets),
    ("Mutation", "updateTicket", Permission::WriteTickets),
];

/// The permissions that change data: a caller with none of them has no
/// mutation root at all.
pub const WRITE_PERMISSIONS: &[Permission] = &[
    Permission::BulkOrganizations,
    Permission::WriteInternalFlags,
    Permission::WriteTickets,
    Permission::WriteInvoices,
    Permission::WriteOrganizations,
    Permission::WriteTrials,
    Permission::WriteSubscriptions,
];

/// Types every writer shares (the mutation root, bulk results): visible with any
/// of [`WRITE_PERMISSIONS`].
pub const WRITE_TYPES: &[&str] = &[
    "Mutation",
    "BulkResult",
    "BulkFailure",
    "BulkFailureCode",
    "BulkMode",
];

/// Schema types outside the catalog that exist only for callers with a
/// permission: the types that only guarded fields lead to. (A catalog
/// entity's types are visible with it: `catalog::Entity::types`.)
pub const GUARDED_TYPES: &[(&str, Permission)] = &[
    ("AuditEvent", Permission::ReadAuditLog),
    ("AuditEventConnection", Permission::ReadAuditLog),
    ("AuditEventEdge", Permission::ReadAuditLog),
    ("AuditEventFilter", Permission::ReadAuditLog),
    ("BulkOrganizationStatusInput", Permission::BulkOrganizations),
    ("BulkOrganizationFlagInput", Permission::WriteInternalFlags),
    ("InternalFlag", Permission::WriteInternalFlags),
    ("BulkTicketAssignmentInput", Permission::WriteTickets),
    ("BulkInvoiceVoidInput", Permission::WriteInvoices),
    ("Change", Permission::ReadCustomers),
    ("ChangeConnection", Permission::ReadCustomers),
    ("ChangeEdge", Permission::ReadCustomers),
    ("FieldChange", Permission::ReadCustomers),
    ("SetOrganizationStatusInput", Permission::WriteOrganizations),
    (
        "SetOrganizationStatusPayload",
        Permission::WriteOrganizations,
    ),
    ("SetOrganizationFlagInput", Permission::WriteInternalFlags),
    ("SetOrganizationFlagPayload", Permission::WriteInternalFlags),
    ("ExtendTrialInput", Permission::WriteTrials),
    ("ExtendTrialPayload", Permission::WriteTrials),
    ("ChangeSubscriptionInput", Permission::WriteSubscriptions),
    ("ChangeSubscriptionPayload", Permission::WriteSubscriptions),
    ("MarkInvoicePaidInput", Permission::WriteInvoices),
    ("MarkInvoicePaidPayload", Permission::WriteInvoices),
    ("VoidInvoiceInput", Permission::WriteInvoices),
    ("VoidInvoicePayload", Permission::WriteInvoices),
    ("IssueCreditNoteInput", Permission::WriteInvoices),
    ("IssueCreditNotePayload", Permission::WriteInvoices),
    ("ReplyToTicketInput", Permission::WriteTickets),
    ("ReplyToTicketPayload", Permission::WriteTickets),
    ("AddInternalNoteInput", Permission::WriteTickets),
    ("AddInternalNotePayload", Permission::WriteTickets),
    ("UpdateTicketInput", Permission::WriteTickets),
    ("UpdateTicketPayload", Permission::WriteTickets),
];

/// Every schema field that needs more than its type does, catalog fields
/// and root fields included, with what it needs: the list the visibility
/// checks and the tests are generated from.
pub fn guarded_fields() -> Vec<(&'static str, &'static str, Need)> {
    let catalog_fields = catalog::ENTITIES.iter().flat_map(|e| {
        e.fields().filter_map(move |f| {
            let need = catalog::extra_need(e.name, f.name).flatten()?;
            Some((e.name, f.name, need))
        })
    });
    let roots = catalog::ROOTS.iter().filter_map(|r| {
        let need = catalog::root_needs(r.name)?;
        Some(("Query", r.name, Need::One(need)))
    });
    catalog_fields
        .chain(roots)
        .chain(
            GUARDED_FIELDS
                .iter()
                .map(|(t, f, p)| (*t, *f, Need::One(*p))),
        )
        .collect()
}

/// Every schema type that exists only for callers with a permission, the
/// catalog's included.
pub fn guarded_types() -> Vec<(String, Permission)> {
    catalog::ENTITIES
        .iter()
        .flat_map(|e| e.types().map(move |t| (t.into_owned(), e.read)))
        .chain(GUARDED_TYPES.iter().map(|(t, p)| ((*t).to_owned(), *p)))
        .collect()
}

/// What a field needs beyond its type, if anything.
pub fn field_need(type_name: &str, field: &str) -> Option<Need> {
    if type_name == "Query"
        && let Some(p) = catalog::root_needs(field)
    {
        return Some(Need::One(p));
    }
    if let Some(extra) = catalog::extra_need(type_name, field) {
        return extra;
    }
    GUARDED_FIELDS
        .iter()
        .find(|(t, f, _)| *t == type_name && *f == field)
        .map(|(_, _, p)| Need::One(*p))
}

/// The permission a type needs, if any.
pub fn type_permission(type_name: &str) -> Option<Permission> {
    catalog::ENTITIES
        .iter()
        .find(|e| e.types().any(|t| t == type_name))
        .map(|e| e.read)
        .or_else(|| {
            GUARDED_TYPES
                .iter()
                .find(|(t, _)| *t == type_name)
                .map(|(_, p)| *p)
        })
}

/// The union of what `roles` grant.
pub fn permissions_of(roles: &BTreeSet<Role>) -> BTreeSet<Permission> {
    roles
        .iter()
        .flat_map(|r| grants(*r).iter().copied())
        .collect()
}

/// What a right to change something requires its holder to read: writing a
/// class of data needs reading it. A change answers with counts and objects
/// (a dry run says how many records would change), so a write without its
/// read would reveal what its holder may not see (the current flags, say).
/// Every role of the matrix satisfies this; a service's scopes may not, and
/// then the write is not granted.
pub fn requires(permission: Permission) -> &'static [Permission] {
    use Permission::*;
    match permission {
        WriteInternalFlags => &[ReadCustomers, ReadInternalFlags],
        WriteTickets | BulkOrganizations | WriteOrganizations | WriteTrials => &[ReadCustomers],
        WriteInvoices | WriteSubscriptions => &[ReadCustomers, ReadBilling],
        ReadCostData | ReadInternalFlags | ReadBilling => &[ReadCustomers],
        ReadCustomers | ReadAuditLog => &[],
    }
}

/// The rights `granted` amounts to: those whose [`requires`] are granted too
/// (a permission without what it requires is dropped, never widened).
pub fn effective(granted: &BTreeSet<Permission>) -> BTreeSet<Permission> {
    granted
        .iter()
        .copied()
        .filter(|p| requires(*p).iter().all(|r| granted.contains(r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_never_sees_cost_data_or_flags() {
        let p = permissions_of(&BTreeSet::from([Role::Support]));
        assert!(p.contains(&Permission::ReadCustomers));
        assert!(!p.contains(&Permission::ReadCostData));
        assert!(!p.contains(&Permission::ReadInternalFlags));
    }

    #[test]
    fn roles_are_a_union() {
        let p = permissions_of(&BTreeSet::from([Role::Finance, Role::Ops]));
        assert!(p.contains(&Permission::ReadCostData));
        assert!(p.contains(&Permission::ReadInternalFlags));
        assert!(!p.contains(&Permission::ReadAuditLog));
    }

    #[test]
    fn every_role_holds_what_its_rights_require() {
        for role in Role::ALL {
            let granted = permissions_of(&BTreeSet::from([role]));
            assert_eq!(effective(&granted), granted, "{role}");
        }
    }

    #[test]
    fn a_write_without_its_read_is_not_granted() {
        let granted = BTreeSet::from([Permission::ReadCustomers, Permission::WriteInternalFlags]);
        assert_eq!(
            effective(&granted),
            BTreeSet::from([Permission::ReadCustomers])
        );
        let granted = BTreeSet::from([Permission::ReadCostData]);
        assert!(effective(&granted).is_empty());
    }

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::from_name(p.as_str()), Some(p));
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
    }
}
