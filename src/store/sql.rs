//! A small SQL text builder for the statements sea-query cannot say simply
//! (window functions over sub-selects): values are always bound, never inlined.

use sea_orm::{DbBackend, Statement, Value};

#[derive(Default, Debug)]
pub(crate) struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.text.push('?');
        self.values.push(value.into());
        self
    }

    /// Appends `(?, ?, …)` for the values.
    pub(crate) fn bind_list<V: Into<Value> + Clone>(&mut self, values: &[V]) -> &mut Self {
        self.text.push('(');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(v.clone());
        }
        self.text.push(')');
        self
    }

    /// Appends one placeholder bound to `ids` as a PostgreSQL `bigint[]`: one
    /// statement text whatever the number of ids.
    pub(crate) fn bind_bigint_array(&mut self, ids: &[i64]) -> &mut Self {
        let values: Vec<Value> = ids.iter().map(|i| Value::BigInt(Some(*i))).collect();
        self.bind(Value::Array(
            sea_orm::sea_query::ArrayType::BigInt,
            Some(Box::new(values)),
        ))
    }

    /// Appends another fragment with its values.
    pub(crate) fn append(&mut self, other: &Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.values.extend(other.values.iter().cloned());
        self
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// How many values are bound so far (where the next one will be).
    pub(crate) fn value_count(&self) -> usize {
        self.values.len()
    }

    /// The values bound, in order.
    pub(crate) fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// The statement in the backend's placeholder syntax (`?` or `$n`). Our SQL text
    /// never contains a literal `?`: every value is bound.
    pub(crate) fn build(self, backend: DbBackend) -> Statement {
        let (text, values) = self.into_parts(backend);
        Statement::from_sql_and_values(backend, text, values)
    }

    /// The text in the backend's placeholder syntax, and the values.
    pub(crate) fn into_parts(self, backend: DbBackend) -> (String, Vec<Value>) {
        let text = match backend {
            DbBackend::Postgres => {
                let mut out = String::with_capacity(self.text.len() + 16);
                let mut n = 0;
                for ch in self.text.chars() {
                    if ch == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
            _ => self.text,
        };
        (text, self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        let mut sql = Sql::default();
        sql.push("a = ")
            .bind(1i64)
            .push(" AND b IN ")
            .bind_list(&[2i64, 3]);
        assert_eq!(
            sql.build(DbBackend::Postgres).sql,
            "a = $1 AND b IN ($2, $3)"
        );
        let mut sql = Sql::default();
        sql.push("a = ").bind(1i64);
        assert_eq!(sql.build(DbBackend::Sqlite).sql, "a = ?");
    }
}

/// Conditions joined with AND, on the alias `c` of the listed table.
#[derive(Default, Debug)]
pub(crate) struct Conditions {
    sql: Sql,
}

impl Conditions {
    /// Starts a new condition; returns the builder to append it to.
    pub(crate) fn and(&mut self) -> &mut Sql {
        if !self.sql.is_empty() {
            self.sql.push(" AND ");
        }
        &mut self.sql
    }

    /// `c."column" IN (…)` when a set is given; an empty set matches nothing
    /// (a script filtering by a computed set that came out empty must not get
    /// every row).
    pub(crate) fn in_set<V: Into<Value> + Clone>(&mut self, column: &str, values: Option<&[V]>) {
        match values {
            None => {}
            Some([]) => {
                self.and().push("1 = 0");
            }
            Some(values) => {
                self.and()
                    .push(&format!("c.\"{column}\" IN "))
                    .bind_list(values);
            }
        }
    }

    /// `c."column" IS NULL`.
    pub(crate) fn is_null(&mut self, column: &str) {
        self.and().push(&format!("c.\"{column}\" IS NULL"));
    }

    /// Another condition, already written.
    pub(crate) fn and_sql(&mut self, condition: Sql) {
        if !condition.is_empty() {
            self.and().append(&condition);
        }
    }

    /// `c."column" <op> value` when a value is given.
    pub(crate) fn compare<V: Into<Value>>(&mut self, column: &str, op: &str, value: Option<V>) {
        if let Some(value) = value {
            self.and()
                .push(&format!("c.\"{column}\" {op} "))
                .bind(value);
        }
    }

    /// Case-insensitive substring match on any of `columns`.
    pub(crate) fn contains_text(&mut self, columns: &[&str], needle: Option<&str>) {
        let Some(needle) = needle.map(str::trim).filter(|n| !n.is_empty()) else {
            return;
        };
        let pattern = format!("%{}%", escape_like(&needle.to_lowercase()));
        let sql = self.and();
        sql.push("(");
        for (i, col) in columns.iter().enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            sql.push(&format!("LOWER(c.\"{col}\") LIKE "))
                .bind(pattern.clone())
                .push(" ESCAPE '\\'");
        }
        sql.push(")");
    }

    pub(crate) fn into_sql(self) -> Sql {
        self.sql
    }
}

/// Escapes LIKE's wildcards so that user text matches literally.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod like_tests {
    #[test]
    fn wildcards_match_literally() {
        assert_eq!(super::escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}
