//! Relay-style connections over keyset pages: opaque cursors, a bounded `first`.

use async_graphql::{Context, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::error::ApiError;
use crate::store::page::{Keyset, PageRequest, Sort, SortValue};

/// Rows a connection returns when `first` is not given.
pub const DEFAULT_PAGE_SIZE: i32 = 20;

/// Where a page is in its list.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// Whether rows follow this page.
    pub has_next_page: bool,
    /// The cursor of the last row of the page, to pass as `after`; null when the
    /// page is empty.
    pub end_cursor: Option<String>,
}

/// One ordering of one list: the cursor tag that binds a cursor to it, and the
/// store's sort.
#[derive(Clone, Copy, Debug)]
pub struct Ordering {
    pub tag: &'static str,
    pub sort: Sort,
}

impl Ordering {
    pub const fn new(tag: &'static str, sort: Sort) -> Self {
        Self { tag, sort }
    }
}

/// The cursor of a row: its ordering's tag, sort value and id.
pub fn encode_cursor(ordering: &Ordering, keyset: &Keyset) -> String {
    let value = match &keyset.value {
        SortValue::None => Value::Null,
        SortValue::Text(s) => Value::String(s.clone()),
        SortValue::Time(t) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
    };
    URL_SAFE_NO_PAD.encode(json!([ordering.tag, value, keyset.id]).to_string())
}

/// The row a cursor of `ordering` stands for.
pub(crate) fn decode_cursor(ordering: &Ordering, cursor: &str) -> Result<Keyset, ApiError> {
    let bad = || ApiError::bad_input("after", "not a cursor of this list and order");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let parts: Vec<Value> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let [tag, value, id] = parts.as_slice() else {
        return Err(bad());
    };
    if tag.as_str() != Some(ordering.tag) {
        return Err(bad());
    }
    let id = id.as_i64().ok_or_else(bad)?;
    let value = match (ordering.sort.column, value) {
        (None, Value::Null) => SortValue::None,
        (Some(col), Value::String(s)) if col.ends_with("_at") => SortValue::Time(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| bad())?
                .with_timezone(&Utc),
        ),
        (Some(_), Value::String(s)) => SortValue::Text(s.clone()),
        _ => return Err(bad()),
    };
    Ok(Keyset { value, id })
}

/// Checks `first` and `after` and reads from the selection whether `totalCount`
/// is wanted.
pub fn page_request(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<&str>,
    ordering: &Ordering,
) -> Result<PageRequest, ApiError> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    let max = ctx
        .data_opt::<super::limits::Limits>()
        .copied()
        .unwrap_or_default()
        .of(ctx.data_opt::<crate::identity::Principal>())
        .max_page_size;
    if !(0..=max).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("must be between 0 and {max}"),
        ));
    }
    let after = after.map(|c| decode_cursor(ordering, c)).transpose()?;
    Ok(PageRequest {
        first: first as u64,
        after,
        with_total: ctx.look_ahead().field("totalCount").exists(),
    })
}

/// A Relay connection type with `nodes`, `edges { node cursor }`, `pageInfo` and
/// `totalCount`, built from a store page.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ident, $what:literal, $visible:literal) => {
        #[doc = concat!("An edge to ", $what, ".")]
        #[derive(async_graphql::SimpleObject, Clone)]
        #[graphql(visible = $visible)]
        pub struct $edge {
            pub node: $node,
            /// Pass as `after` to continue after this row.
            pub cursor: String,
        }

        #[doc = concat!("A page of ", $what, "s.")]
        pub struct $conn {
            edges: Vec<$edge>,
            page_info: $crate::graphql::pagination::PageInfo,
            total: i64,
        }

        #[async_graphql::Object(visible = $visible)]
        impl $conn {
            /// The rows of this page, in order.
            async fn nodes(&self) -> Vec<$node> {
                self.edges.iter().map(|e| e.node.clone()).collect()
            }

            /// The rows of this page with their cursors.
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            /// Whether more rows follow, and where to continue.
            async fn page_info(&self) -> &$crate::graphql::pagination::PageInfo {
                &self.page_info
            }

            /// Rows in the whole list under the filter, all pages together.
            async fn total_count(&self) -> i64 {
                self.total
            }
        }

        impl $conn {
            pub fn from_page<M>(
                page: $crate::store::page::Page<M>,
                ordering: &$crate::graphql::pagination::Ordering,
                keyset: impl Fn(&M) -> $crate::store::page::Keyset,
                wrap: impl Fn(M) -> $node,
            ) -> Self {
                let edges: Vec<$edge> = page
                    .items
                    .into_iter()
                    .map(|m| {
                        let cursor =
                            $crate::graphql::pagination::encode_cursor(ordering, &keyset(&m));
                        $edge {
                            node: wrap(m),
                            cursor,
                        }
                    })
                    .collect();
                let end_cursor = edges.last().map(|e| e.cursor.clone());
                Self {
                    page_info: $crate::graphql::pagination::PageInfo {
                        has_next_page: page.has_next_page,
                        end_cursor,
                    },
                    total: page.total.unwrap_or(0),
                    edges,
                }
            }
        }
    };
}
pub(crate) use connection;

/// How a row gives its sort value for a cursor.
pub trait SortKey {
    fn id(&self) -> i64;
    /// The value of `column` (one of the columns the row's orderings use).
    fn sort_value(&self, column: &str) -> SortValue;
}

/// The keyset of `row` under `ordering`.
pub fn keyset_of<M: SortKey>(ordering: &Ordering) -> impl Fn(&M) -> Keyset + '_ {
    move |row| Keyset {
        value: match ordering.sort.column {
            Some(col) => row.sort_value(col),
            None => SortValue::None,
        },
        id: row.id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BY_NAME: Ordering = Ordering::new("org:name", Sort::by("name", false));
    const BY_TIME: Ordering = Ordering::new("org:created", Sort::by("created_at", true));

    #[test]
    fn cursors_round_trip() {
        let k = Keyset {
            value: SortValue::Text("Acme".into()),
            id: 7,
        };
        let c = encode_cursor(&BY_NAME, &k);
        assert_eq!(decode_cursor(&BY_NAME, &c).ok(), Some(k));
        let t = Keyset {
            value: SortValue::Time(Utc::now()),
            id: 3,
        };
        let c = encode_cursor(&BY_TIME, &t);
        assert_eq!(decode_cursor(&BY_TIME, &c).ok(), Some(t));
    }

    #[test]
    fn foreign_or_broken_cursors_are_refused() {
        let k = Keyset {
            value: SortValue::Text("Acme".into()),
            id: 7,
        };
        let c = encode_cursor(&BY_NAME, &k);
        assert!(decode_cursor(&BY_TIME, &c).is_err());
        for bad in ["", "!!!", "bnVsbA", "WzEsMiwzXQ"] {
            assert!(decode_cursor(&BY_NAME, bad).is_err(), "{bad}");
        }
    }
}
