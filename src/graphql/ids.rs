//! Opaque ids: a type prefix and the row id (`org_42`). Stable across databases
//! (the same seed gives the same ids), typed (an invoice id is refused where an
//! organization id is expected), and never parsed by clients.

use async_graphql::ID;

use super::error::ApiError;

/// The kinds of id, by prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Organization,
    User,
    Plan,
    Subscription,
    Invoice,
    InvoiceLine,
    CreditNote,
    Ticket,
    TicketMessage,
    Staff,
    AuditEvent,
}

impl Kind {
    /// Its catalog entity, which holds its prefix (the audit log is not in
    /// the catalog yet).
    fn entity(self) -> Option<&'static crate::catalog::Entity> {
        let name = match self {
            Kind::Organization => "Organization",
            Kind::User => "User",
            Kind::Plan => "Plan",
            Kind::Subscription => "Subscription",
            Kind::Invoice => "Invoice",
            Kind::InvoiceLine => "InvoiceLine",
            Kind::CreditNote => "CreditNote",
            Kind::Ticket => "SupportTicket",
            Kind::TicketMessage => "TicketMessage",
            Kind::Staff => "StaffMember",
            Kind::AuditEvent => return None,
        };
        Some(crate::catalog::expect_entity(name))
    }

    fn prefix(self) -> &'static str {
        match self.entity() {
            Some(entity) => entity.id_prefix.unwrap_or_default(),
            None => crate::catalog::AUDIT_EVENT_PREFIX,
        }
    }

    fn noun(self) -> &'static str {
        match self.entity() {
            Some(entity) => entity.noun,
            None => "an audit event",
        }
    }
}

pub fn encode(kind: Kind, id: i64) -> ID {
    ID(format!("{}_{id}", kind.prefix()))
}

/// The row id behind `id`, or an error naming `argument`.
pub fn decode(kind: Kind, id: &str, argument: &'static str) -> Result<i64, ApiError> {
    decode_prefixed(kind.prefix(), kind.noun(), id, argument)
}

/// The row id behind `id` of a catalog entity's, or an error naming
/// `argument`.
pub fn decode_of(
    entity: &crate::catalog::Entity,
    id: &str,
    argument: &'static str,
) -> Result<i64, ApiError> {
    let Some(prefix) = entity.id_prefix else {
        return Err(ApiError::bad_input(
            argument,
            format!("{} has no id", entity.noun),
        ));
    };
    decode_prefixed(prefix, entity.noun, id, argument)
}

fn decode_prefixed(
    prefix: &str,
    noun: &str,
    id: &str,
    argument: &'static str,
) -> Result<i64, ApiError> {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_input(argument, format!("not {noun} id")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_typed() {
        let id = encode(Kind::Organization, 42);
        assert_eq!(id.as_str(), "org_42");
        assert_eq!(decode(Kind::Organization, &id, "id").ok(), Some(42));
        assert!(decode(Kind::Invoice, &id, "id").is_err());
        for bad in ["", "org_", "org_-1", "org_x", "42", "org_0", "org_1_2"] {
            assert!(decode(Kind::Organization, bad, "id").is_err(), "{bad}");
        }
    }
}
