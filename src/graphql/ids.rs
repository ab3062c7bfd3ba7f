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
    Ticket,
    TicketMessage,
    Staff,
    AuditEvent,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Organization => "org",
            Kind::User => "usr",
            Kind::Plan => "pln",
            Kind::Subscription => "sub",
            Kind::Invoice => "inv",
            Kind::InvoiceLine => "inl",
            Kind::Ticket => "tkt",
            Kind::TicketMessage => "msg",
            Kind::Staff => "stf",
            Kind::AuditEvent => "aud",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Organization => "an organization",
            Kind::User => "a user",
            Kind::Plan => "a plan",
            Kind::Subscription => "a subscription",
            Kind::Invoice => "an invoice",
            Kind::InvoiceLine => "an invoice line",
            Kind::Ticket => "a ticket",
            Kind::TicketMessage => "a ticket message",
            Kind::Staff => "a staff member",
            Kind::AuditEvent => "an audit event",
        }
    }
}

pub fn encode(kind: Kind, id: i64) -> ID {
    ID(format!("{}_{id}", kind.prefix()))
}

/// The row id behind `id`, or an error naming `argument`.
pub fn decode(kind: Kind, id: &str, argument: &'static str) -> Result<i64, ApiError> {
    id.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_input(argument, format!("not {} id", kind.noun())))
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
