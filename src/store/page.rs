//! Keyset pagination, for root lists and for per-parent pages.
//!
//! Never OFFSET: a page continues after the (sort value, id) of the last row seen,
//! which an index on `(sort column, id)` serves directly. A per-parent page
//! (`users(first: 10)` under many organizations) is one statement for all parents:
//! on PostgreSQL, `LATERAL (… LIMIT n)` per parent reads each parent's page from
//! its index; elsewhere (and when parents continue from cursors of their own)
//! `ROW_NUMBER() OVER (PARTITION BY parent …)` cuts each parent's rows, and
//! `COUNT(*) OVER (PARTITION BY parent)` gives each total when it is asked for.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, ModelTrait, QueryResult, Value,
};

use super::sql::Sql;
use super::{Store, StoreError};

/// The value of the sort column of the last row seen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SortValue {
    /// The order is by id alone.
    None,
    Text(String),
    Time(DateTime<Utc>),
}

impl SortValue {
    fn into_value(self) -> Option<Value> {
        match self {
            SortValue::None => None,
            SortValue::Text(s) => Some(s.into()),
            SortValue::Time(t) => Some(t.into()),
        }
    }
}

/// Where the next page starts: after this row.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Keyset {
    pub value: SortValue,
    pub id: i64,
}

pub use crate::catalog::Sort;

impl Keyset {
    /// The keyset of `row` under `sort`: its sort column's value and its id.
    /// `None` when the row has no such column, or it holds neither text nor
    /// an instant.
    pub fn of<M: ModelTrait>(row: &M, sort: Sort) -> Option<Keyset> {
        let Value::BigInt(Some(id)) = column_value(row, "id")? else {
            return None;
        };
        let value = match sort.column {
            None => SortValue::None,
            Some(column) => match column_value(row, column)? {
                Value::String(Some(text)) => SortValue::Text(text),
                Value::ChronoDateTimeUtc(Some(t)) => SortValue::Time(t),
                _ => return None,
            },
        };
        Some(Keyset { value, id })
    }
}

/// The value of the column named `column` of a sea-orm row.
pub fn column_value<M: ModelTrait>(row: &M, column: &str) -> Option<Value> {
    let column =
        <<M::Entity as EntityTrait>::Column as std::str::FromStr>::from_str(column).ok()?;
    Some(row.get(column))
}

/// The SQL of a [`Sort`]; the catalog holds the orders themselves.
impl Sort {
    /// `ORDER BY` terms on `alias`: the sort column, then the id.
    pub(crate) fn order_by(&self, alias: &str) -> String {
        let dir = if self.descending { "DESC" } else { "ASC" };
        match self.column {
            Some(col) => format!(
                "{} {dir}, {alias}.\"id\" {dir}",
                self.term(&format!("{alias}.\"{col}\""))
            ),
            None => format!("{alias}.\"id\" {dir}"),
        }
    }

    /// What the rows are sorted by: `value` itself, or its rank among the
    /// sort's enum values.
    fn term(&self, value: &str) -> String {
        match self.rank {
            None => value.to_owned(),
            Some(values) => {
                let mut term = format!("CASE {value}");
                for (i, v) in values.iter().enumerate() {
                    term.push_str(&format!(" WHEN '{v}' THEN {i}"));
                }
                term.push_str(" END");
                term
            }
        }
    }

    /// `(sort, id) > (?, ?)` (or `<` when descending) on `alias`.
    pub(crate) fn after(
        &self,
        alias: &str,
        keyset: &Keyset,
        sql: &mut Sql,
    ) -> Result<(), StoreError> {
        let op = if self.descending { "<" } else { ">" };
        match (self.column, keyset.value.clone().into_value()) {
            (Some(col), Some(value)) => {
                let (ours, theirs) = (
                    self.term(&format!("{alias}.\"{col}\"")),
                    match self.rank {
                        Some(_) => self.term("CAST(? AS TEXT)"),
                        None => "?".to_owned(),
                    },
                );
                let (before, after) = theirs.split_once('?').unwrap_or((&theirs, ""));
                sql.push(&format!("({ours}, {alias}.\"id\") {op} ({before}"))
                    .bind(value)
                    .push(after)
                    .push(", ")
                    .bind(keyset.id)
                    .push(")");
            }
            (None, None) => {
                sql.push(&format!("{alias}.\"id\" {op} ")).bind(keyset.id);
            }
            _ => {
                return Err(StoreError::BadCursor);
            }
        }
        Ok(())
    }
}

/// What page to read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageRequest {
    /// Rows wanted; the caller has already bounded it.
    pub first: u64,
    pub after: Option<Keyset>,
    /// Whether to count every row of the list (costs a scan of the list).
    pub with_total: bool,
    /// Read backwards (`last`, `before`): the rows just before `after`, in
    /// the reversed order (the caller turns them back).
    pub backwards: bool,
}

impl PageRequest {
    /// The order the rows are read in: `sort`, reversed for a page read
    /// backwards.
    pub fn reads(&self, sort: Sort) -> Sort {
        if self.backwards {
            sort.reversed()
        } else {
            sort
        }
    }
}

/// One page of rows.
#[derive(Clone, Debug)]
pub struct Page<M> {
    pub items: Vec<M>,
    pub has_next_page: bool,
    /// Whether rows come before the page (set by the caller that knows how
    /// the page was asked for).
    pub has_previous_page: bool,
    /// Rows in the whole list, when asked for.
    pub total: Option<i64>,
}

impl<M> Page<M> {
    pub fn empty(with_total: bool) -> Self {
        Page {
            items: Vec::new(),
            has_next_page: false,
            has_previous_page: false,
            total: with_total.then_some(0),
        }
    }
}

fn total_of(row: &QueryResult) -> Result<i64, StoreError> {
    Ok(row.try_get::<i64>("", "__total")?)
}

/// A page of a catalog entity's list under `filter` (a SQL condition on
/// alias `c`; empty for none), in `sort`'s order.
pub(crate) async fn list<M: FromQueryResult>(
    store: &Store,
    entity: &str,
    filter: &Sql,
    sort: Sort,
    req: &PageRequest,
) -> Result<Page<M>, StoreError> {
    root_page(store, crate::catalog::table(entity), filter, sort, req).await
}

/// A page of a whole table under `filter` (a SQL condition on alias `c`; empty for
/// none). One statement, with the total when asked.
pub(crate) async fn root_page<M: FromQueryResult>(
    store: &Store,
    table: &str,
    filter: &Sql,
    sort: Sort,
    req: &PageRequest,
) -> Result<Page<M>, StoreError> {
    let mut page_sql = Sql::default();
    page_sql.push(&format!("SELECT c.* FROM \"{table}\" c WHERE "));
    if filter.is_empty() {
        page_sql.push("1=1");
    } else {
        page_sql.append(filter);
    }
    if let Some(after) = &req.after {
        page_sql.push(" AND ");
        sort.after("c", after, &mut page_sql)?;
    }
    page_sql
        .push(&format!(" ORDER BY {} LIMIT ", sort.order_by("c")))
        .bind(req.first as i64 + 1);

    let sql = if req.with_total {
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT tc.\"__total\", p.* FROM (SELECT COUNT(*) AS \"__total\" FROM \"{table}\" c WHERE "
        ));
        if filter.is_empty() {
            sql.push("1=1");
        } else {
            sql.append(filter);
        }
        sql.push(") tc LEFT JOIN (")
            .append(&page_sql)
            .push(&format!(") p ON 1=1 ORDER BY {}", sort.order_by("p")));
        sql
    } else {
        page_sql
    };

    let db = store.db();
    let rows = db
        .query_all_raw(sql.build(db.get_database_backend()))
        .await?;
    let mut total = None;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        if req.with_total {
            total = Some(total_of(row)?);
            // The LEFT JOIN yields one row of NULLs for an empty page.
            if row.try_get::<Option<i64>>("", "id")?.is_none() {
                continue;
            }
        }
        items.push(M::from_query_result(row, "")?);
    }
    let has_next_page = items.len() as u64 > req.first;
    items.truncate(req.first as usize);
    Ok(Page {
        items,
        has_next_page,
        has_previous_page: false,
        total: total.or(req.with_total.then_some(0)),
    })
}

/// One page per parent of the rows of `table` whose `parent` column is one of the
/// keys' parents: one statement for all of them. Keys may carry their own cursor
/// but share `first` and `with_total` (the loader groups them so).
pub(crate) async fn child_pages<M: FromQueryResult>(
    store: &Store,
    table: &str,
    parent: &str,
    sort: Sort,
    first: u64,
    with_total: bool,
    parents: &[(i64, Option<Keyset>)],
) -> Result<HashMap<i64, Page<M>>, StoreError> {
    let mut out: HashMap<i64, Page<M>> = HashMap::new();
    if parents.is_empty() {
        return Ok(out);
    }
    let ids: Vec<i64> = parents.iter().map(|(id, _)| *id).collect();
    let db = store.db();
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres && parents.iter().all(|(_, a)| a.is_none()) {
        lateral_pages(table, parent, &sort, first, with_total, &ids)
    } else {
        windowed_pages(table, parent, &sort, first, with_total, parents, &ids)?
    };
    let rows = db.query_all_raw(sql.build(backend)).await?;
    for row in &rows {
        let parent_id: i64 = row.try_get("", parent)?;
        let page = out
            .entry(parent_id)
            .or_insert_with(|| Page::empty(with_total));
        if with_total {
            page.total = Some(total_of(row)?);
        }
        if page.items.len() as u64 >= first {
            page.has_next_page = true;
        } else {
            page.items.push(M::from_query_result(row, "")?);
        }
    }
    // A parent whose page after its cursor is empty came back without a row to
    // carry its total: count its whole list apart.
    let uncounted: Vec<i64> = parents
        .iter()
        .filter(|(id, after)| with_total && after.is_some() && !out.contains_key(id))
        .map(|(id, _)| *id)
        .collect();
    if !uncounted.is_empty() {
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT c.\"{parent}\" AS \"__parent\", COUNT(*) AS \"__total\" FROM \"{table}\" c WHERE c.\"{parent}\" IN "
        ))
        .bind_list(&uncounted)
        .push(&format!(" GROUP BY c.\"{parent}\""));
        for row in db.query_all_raw(sql.build(backend)).await? {
            let parent_id: i64 = row.try_get("", "__parent")?;
            let mut page = Page::empty(true);
            page.total = Some(total_of(&row)?);
            out.insert(parent_id, page);
        }
    }
    Ok(out)
}

/// PostgreSQL, first pages: for each parent, an index range scan of its page
/// alone (`LATERAL … LIMIT`), and its total from the index when asked for. The
/// parents come as one array, so the statement is the same whatever their
/// number. Rows come parent by parent, each parent's in the page's order.
fn lateral_pages(
    table: &str,
    parent: &str,
    sort: &Sort,
    first: u64,
    with_total: bool,
    ids: &[i64],
) -> Sql {
    let mut sql = Sql::default();
    sql.push("SELECT c.*");
    if with_total {
        sql.push(", t.\"__total\"");
    }
    sql.push(" FROM UNNEST(")
        .bind_bigint_array(ids)
        .push("::int8[]) WITH ORDINALITY AS k(\"__key\", \"__ord\")");
    if with_total {
        sql.push(&format!(
            " CROSS JOIN LATERAL (SELECT COUNT(*) AS \"__total\" FROM \"{table}\" c WHERE c.\"{parent}\" = k.\"__key\") t"
        ));
    }
    sql.push(&format!(
        " CROSS JOIN LATERAL (SELECT c.* FROM \"{table}\" c WHERE c.\"{parent}\" = k.\"__key\" ORDER BY {} LIMIT ",
        sort.order_by("c")
    ))
    .bind(first as i64 + 1)
    .push(&format!(") c ORDER BY k.\"__ord\", {}", sort.order_by("c")));
    sql
}

/// Every backend, any cursors: `ROW_NUMBER()` over each parent's rows cuts the
/// pages, `COUNT(*) OVER` gives the totals.
fn windowed_pages(
    table: &str,
    parent: &str,
    sort: &Sort,
    first: u64,
    with_total: bool,
    parents: &[(i64, Option<Keyset>)],
    ids: &[i64],
) -> Result<Sql, StoreError> {
    let mut sql = Sql::default();
    sql.push(&format!(
        "SELECT * FROM (SELECT i.*, ROW_NUMBER() OVER (PARTITION BY i.\"{parent}\" ORDER BY {}) AS \"__rn\" FROM (SELECT c.*",
        sort.order_by("i")
    ));
    if with_total {
        sql.push(&format!(
            ", COUNT(*) OVER (PARTITION BY c.\"{parent}\") AS \"__total\""
        ));
    }
    sql.push(&format!(" FROM \"{table}\" c WHERE c.\"{parent}\" IN "))
        .bind_list(ids)
        .push(") i");
    let with_cursor: Vec<&(i64, Option<Keyset>)> = parents
        .iter()
        .filter(|(_, after)| after.is_some())
        .collect();
    if !with_cursor.is_empty() {
        let plain: Vec<i64> = parents
            .iter()
            .filter(|(_, after)| after.is_none())
            .map(|(id, _)| *id)
            .collect();
        sql.push(" WHERE (");
        if plain.is_empty() {
            sql.push("1=0");
        } else {
            sql.push(&format!("i.\"{parent}\" IN ")).bind_list(&plain);
        }
        for (id, after) in with_cursor {
            sql.push(&format!(" OR (i.\"{parent}\" = "))
                .bind(*id)
                .push(" AND ");
            if let Some(after) = after {
                sort.after("i", after, &mut sql)?;
            }
            sql.push(")");
        }
        sql.push(")");
    }
    sql.push(") p WHERE p.\"__rn\" <= ")
        .bind(first as i64 + 1)
        .push(&format!(" ORDER BY p.\"{parent}\", p.\"__rn\""));
    Ok(sql)
}
