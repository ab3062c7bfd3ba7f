//! One filter shape for every list.
//!
//! Every list's `filter` is built from the same few kinds of condition, each
//! written the same way wherever it appears:
//!
//! - **a set of enum values or codes** (`status: [ACTIVE, TRIAL]`, `currency:
//!   ["EUR"]`): any of them; GraphQL takes a single value for a list
//!   (`status: ACTIVE`); an empty list matches nothing;
//! - **a reference** (`organizationId: ["org_4"]`): any of these ids; an
//!   empty list matches nothing; `null` matches the rows that have none
//!   (`assigneeId: null`: unassigned tickets);
//! - **a text search** (`search: "acme"`): case-insensitive text in the
//!   columns the field names;
//! - **a span of time** (`createdAt: {from: "2026-01-01", before:
//!   "2026-02-01"}`): `from` included, `before` excluded, either end open.
//!
//! Every given condition must hold. The conditions become SQL on the listed
//! table's alias `c` (`store::sql::Conditions`), the same for the executor,
//! the compiled reads and the exports.

use async_graphql::{
    ID, InputObject, InputType, InputValueError, InputValueResult, MaybeUndefined, Scalar,
    ScalarType, Value,
};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::ActiveEnum;

use super::error::ApiError;
use super::ids::{self, Kind};
use super::pagination::Ordering;
use crate::store::sql::{Conditions, Sql};

/// An instant: RFC 3339 with an offset (`2026-11-02T09:30:00Z`,
/// `2026-11-02T10:30:00+01:00`), or a date alone (`2026-11-02`), which is
/// that day's midnight in UTC. Answers are RFC 3339 in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(pub DateTime<Utc>);

#[Scalar(name = "DateTime", use_type_description)]
impl ScalarType for Instant {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::custom(
                "an instant is a string: RFC 3339 (`2026-11-02T09:30:00Z`) or a date (`2026-11-02`)",
            ));
        };
        parse_instant(text).map(Instant).ok_or_else(|| {
            InputValueError::custom(format!(
                "`{}` is not an instant: give RFC 3339 with an offset (`2026-11-02T09:30:00Z`) or a date (`2026-11-02`)",
                text.chars().take(40).collect::<String>()
            ))
        })
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339())
    }
}

impl async_graphql::Description for Instant {
    fn description() -> &'static str {
        "An instant. Accepted: RFC 3339 with an offset (`2026-11-02T09:30:00Z`, `2026-11-02T10:30:00+01:00`), or a date alone (`2026-11-02`), read as that day's midnight in UTC. Answered as RFC 3339 in UTC (`2026-11-02T09:30:00+00:00`)."
    }
}

/// `text` as an instant: RFC 3339, or a date alone at midnight UTC.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

impl From<Instant> for DateTime<Utc> {
    fn from(i: Instant) -> Self {
        i.0
    }
}

/// A span of time: from `from` (included) to `before` (excluded); leave an
/// end out to leave it open.
#[derive(InputObject, Clone, Copy, Default, Debug)]
pub struct InstantRange {
    /// At or after this instant.
    pub from: Option<Instant>,
    /// Before this instant.
    pub before: Option<Instant>,
}

/// A list's filter: its conditions as SQL on the alias `c` of its table.
pub(crate) trait ListFilter: InputType + Default {
    fn conditions(self) -> Result<Sql, ApiError>;
}

/// A list's `orderBy` enum: the catalog's ordering of each value.
pub trait ListOrder: InputType + Default + Copy {
    fn ordering(self) -> Ordering;
}

/// Each order enum's values are orderings of its catalog entity (a test
/// holds every value to one).
macro_rules! list_orders {
    ($($ty:ty => $entity:literal),+ $(,)?) => {
        $(impl ListOrder for $ty {
            fn ordering(self) -> Ordering {
                super::types::ordering_of($entity, self)
            }
        })+
    };
}

list_orders!(
    super::types::organization::OrganizationOrder => "Organization",
    super::types::user::UserOrder => "User",
    super::types::billing::InvoiceOrder => "Invoice",
    super::types::support::SupportTicketOrder => "SupportTicket",
    super::types::staff::StaffMemberOrder => "StaffMember",
);

/// The conditions of one filter, added kind by kind.
#[derive(Default)]
pub(crate) struct Where(Conditions);

impl Where {
    /// Any of `values` (the store's names of GraphQL enum values) in
    /// `column`; a given empty set matches nothing.
    pub fn any_of<G, S>(mut self, column: &str, values: Option<Vec<G>>) -> Self
    where
        G: Into<S>,
        S: ActiveEnum<Value = String>,
    {
        let values: Option<Vec<String>> =
            values.map(|v| v.into_iter().map(|g| g.into().to_value()).collect());
        self.0.in_set(column, values.as_deref());
        self
    }

    /// Any of these texts in `column`; a given empty set matches nothing.
    pub fn any_text(mut self, column: &str, values: Option<Vec<String>>) -> Self {
        self.0.in_set(column, values.as_deref());
        self
    }

    /// Any of these ids of `kind` in the foreign key `column`; `null`: rows
    /// without one.
    pub fn reference(
        mut self,
        column: &str,
        ids: MaybeUndefined<Vec<ID>>,
        kind: Kind,
        path: &'static str,
    ) -> Result<Self, ApiError> {
        match ids {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => self.0.is_null(column),
            MaybeUndefined::Value(ids) => {
                let ids = ids
                    .iter()
                    .map(|id| ids::decode(kind, id, path))
                    .collect::<Result<Vec<i64>, _>>()?;
                self.0.in_set(column, Some(&ids));
            }
        }
        Ok(self)
    }

    /// Case-insensitive text in any of `columns`.
    pub fn search(mut self, columns: &[&str], text: Option<String>) -> Self {
        self.0.contains_text(columns, text.as_deref());
        self
    }

    /// `column` within the span.
    pub fn within(mut self, column: &str, range: Option<InstantRange>) -> Self {
        if let Some(range) = range {
            self.0
                .compare(column, ">=", range.from.map(DateTime::<Utc>::from));
            self.0
                .compare(column, "<", range.before.map(DateTime::<Utc>::from));
        }
        self
    }

    /// A condition of the list's own (a join), written by its store module.
    pub fn and(mut self, condition: Sql) -> Self {
        self.0.and_sql(condition);
        self
    }

    pub fn done(self) -> Sql {
        self.0.into_sql()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_is_rfc_3339_or_a_date() {
        assert_eq!(
            parse_instant("2026-11-02").map(|t| t.to_rfc3339()),
            Some("2026-11-02T00:00:00+00:00".to_owned())
        );
        assert_eq!(
            parse_instant("2026-11-02T10:30:00+01:00").map(|t| t.to_rfc3339()),
            Some("2026-11-02T09:30:00+00:00".to_owned())
        );
        assert_eq!(parse_instant("2026-11-02T10:30:00"), None);
        assert_eq!(parse_instant("yesterday"), None);
        assert!(<Instant as ScalarType>::parse(Value::from(3)).is_err());
    }
}
