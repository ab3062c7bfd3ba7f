//! The role matrix: the one table that schema visibility, guards and
//! `viewer { roles permissions }` read. Adding a role or a field group is one edit
//! here.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

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
    WriteTickets,
    WriteInvoices,
    BulkOrganizations,
    ReadAuditLog,
}

impl Permission {
    pub const ALL: [Permission; 9] = [
        Permission::ReadCustomers,
        Permission::ReadBilling,
        Permission::ReadCostData,
        Permission::ReadInternalFlags,
        Permission::WriteInternalFlags,
        Permission::WriteTickets,
        Permission::WriteInvoices,
        Permission::BulkOrganizations,
        Permission::ReadAuditLog,
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
        Role::Support => &[ReadCustomers, ReadBilling, WriteTickets],
        Role::Billing => &[ReadCustomers, ReadBilling, WriteInvoices],
        Role::Finance => &[ReadCustomers, ReadBilling, ReadCostData],
        Role::Ops => &[
            ReadCustomers,
            ReadInternalFlags,
            WriteInternalFlags,
            BulkOrganizations,
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
        ],
        Role::Auditor => &[ReadAuditLog],
    }
}

/// The union of what `roles` grant.
pub fn permissions_of(roles: &BTreeSet<Role>) -> BTreeSet<Permission> {
    roles
        .iter()
        .flat_map(|r| grants(*r).iter().copied())
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
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::from_name(p.as_str()), Some(p));
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
    }
}
