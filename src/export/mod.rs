//! Exports: every node of one root list, in its order, as CSV or NDJSON.
//!
//! An export is a GraphQL query with exactly one root list field
//! (`organizations`, `users`, `invoices`, `tickets`) and its selection of
//! nodes. It passes the same gate as a query (visibility, limits) and then
//! runs as a chain of keyset pages of that list: the plan here rewrites the
//! document into the query of one page (`first` and `after` as variables,
//! `pageInfo` asked for, only what the nodes need kept), which the gate runs
//! like any other (compiled to one SQL statement on PostgreSQL). Rows are
//! written as each page comes: nothing holds the whole list.

pub mod csv;
pub mod rows;

use std::collections::BTreeSet;
use std::fmt::Write;

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::{Value as ConstValue, Variables};
use async_graphql_value::Value;

use crate::catalog::{self, Lookup, Source};

/// Rows a page of an export reads at once.
pub const PAGE_SIZE: i32 = 1_000;

/// How much exporting a deployment allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Most rows one export of a person may hold.
    pub max_rows_people: u64,
    /// Most rows one export of a service identity may hold.
    pub max_rows_services: u64,
    /// Exports one principal may run at once.
    pub per_principal: usize,
    /// Exports running at once in all.
    pub in_all: usize,
    /// Rows one statement of a plain-rows export reads ([`rows`]).
    pub chunk_rows: u64,
    /// From how many rows a plain-rows export on PostgreSQL is read as a long
    /// one: on a connection of its own, joins hashed rather than looked up
    /// row by row.
    pub wide_rows: u64,
    /// How long a client may stop reading before its export is cut (and the
    /// statement it holds open ends).
    pub stall: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_rows_people: 1_000_000,
            max_rows_services: 10_000_000,
            per_principal: 2,
            in_all: 8,
            chunk_rows: 1_000_000,
            wide_rows: 100_000,
            stall: std::time::Duration::from_secs(60),
        }
    }
}

/// The exports running, by principal.
#[derive(Debug, Default)]
pub struct Slots {
    settings: Settings,
    running: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// One running export's slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: std::sync::Arc<Slots>,
    principal: String,
}

impl Slots {
    pub fn new(settings: Settings) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Slots {
            settings,
            running: Default::default(),
        })
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// A slot for `principal`, or why there is none.
    pub fn start(self: &std::sync::Arc<Self>, principal: &str) -> Result<Slot, String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let all: usize = running.values().sum();
        if all >= self.settings.in_all {
            return Err(format!(
                "{all} exports are running, the most at once; try again shortly"
            ));
        }
        let mine = running.entry(principal.to_owned()).or_default();
        if *mine >= self.settings.per_principal {
            return Err(format!(
                "you are running {mine} exports, the most one caller may run at once; wait for one to end"
            ));
        }
        *mine += 1;
        Ok(Slot {
            slots: self.clone(),
            principal: principal.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self.slots.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.principal);
            }
        }
    }
}

/// The two formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// The format `Accept` asks for, if it names one.
    pub fn negotiate(accept: Option<&str>) -> Option<Format> {
        let accept = accept.unwrap_or_default();
        accept.split(',').find_map(
            |part| match part.split(';').next().unwrap_or_default().trim() {
                "text/csv" => Some(Format::Csv),
                "application/x-ndjson" | "application/ndjson" => Some(Format::Ndjson),
                _ => None,
            },
        )
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// The variables of a page's query.
pub const FIRST_VARIABLE: &str = "backplaneExportFirst";
pub const AFTER_VARIABLE: &str = "backplaneExportAfter";
/// The response key of the list in a page's answer.
pub const LIST_KEY: &str = "export";

/// How an export runs.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The root list (`users`).
    pub list: &'static str,
    /// The query of one page, with `$backplaneExportFirst` and
    /// `$backplaneExportAfter`; `totalCount` asked for when `counted`.
    pub page_query: String,
    pub counted_query: String,
    /// Where the export starts: the `after` the document gives (a literal),
    /// or the variable holding it.
    pub after: Start,
    /// CSV's columns, in the document's order.
    pub columns: Vec<Column>,
    /// Whether every column is a catalog field reached through to-one
    /// relations and embedded objects only, with no argument, directive or
    /// fragment on another type on the way: then the export can read plain
    /// rows ([`rows`]) instead of pages of the query.
    pub plain: bool,
    /// The list's `filter` and `orderBy`, their variables given (null when
    /// absent, or a variable of no value); `None` when they have no constant
    /// value.
    pub filter_and_order: Option<(ConstValue, ConstValue)>,
    /// The arguments of the list, as the document gives them (the filter),
    /// for the audit log.
    pub arguments: String,
}

/// One CSV column.
#[derive(Clone, Debug)]
pub struct Column {
    /// Its path of response keys (`organization.plan.code`'s parts).
    pub keys: Vec<String>,
    /// The catalog's fields along the path, from the list's entity: the
    /// to-one relations and embedded objects, then the leaf (`None` for
    /// `__typename` or a field the catalog lacks).
    pub fields: Vec<Option<&'static catalog::Field>>,
}

impl Column {
    /// The header: the response keys joined by `.`.
    pub fn header(&self) -> String {
        self.keys.join(".")
    }
}

/// Where an export starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    Beginning,
    Cursor(String),
    Variable(String),
}

impl Start {
    /// The cursor text the export starts after, with `variables`: `None` from
    /// the beginning (no cursor, or the variable null or not given); `Err`
    /// when the variable holds something other than text (the executor's
    /// validation refuses it).
    pub fn cursor<'a>(&'a self, variables: &'a Variables) -> Result<Option<&'a str>, NotACursor> {
        match self {
            Start::Beginning => Ok(None),
            Start::Cursor(cursor) => Ok(Some(cursor)),
            Start::Variable(name) => match variables.get(name.as_str()) {
                None | Some(ConstValue::Null) => Ok(None),
                Some(ConstValue::String(cursor)) => Ok(Some(cursor)),
                Some(_) => Err(NotACursor),
            },
        }
    }
}

/// A cursor variable that holds something other than text.
#[derive(Debug, PartialEq, Eq)]
pub struct NotACursor;

/// Why a document cannot be exported (`BAD_USER_INPUT`, with the field).
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        field,
        message: message.into(),
    }
}

/// The plan of `document`'s operation `wanted` (already validated against the
/// caller's schema).
pub fn plan(
    document: &ExecutableDocument,
    wanted: Option<&str>,
    variables: &Variables,
    format: Format,
) -> Result<Plan, Refusal> {
    let (_, operation) = crate::graphql::gate::operation_to_run(document, wanted)
        .ok_or_else(|| refuse("query", "no operation to run"))?;
    if operation.ty != OperationType::Query {
        return Err(refuse("query", "an export runs a query, not a mutation"));
    }
    let fields: Vec<&Field> = operation
        .selection_set
        .node
        .items
        .iter()
        .filter_map(|s| match &s.node {
            Selection::Field(f) if f.node.name.node.as_str() != "__typename" => Some(&f.node),
            _ => None,
        })
        .collect();
    let lists: Vec<&str> = catalog::ROOTS
        .iter()
        .filter(|r| matches!(r.lookup, Lookup::List { .. }))
        .map(|r| r.name)
        .collect();
    let [root] = fields.as_slice() else {
        return Err(refuse(
            "query",
            format!(
                "an export selects exactly one root list ({}); this query selects {}",
                lists.join(", "),
                fields.len()
            ),
        ));
    };
    if operation.selection_set.node.items.len() != 1 {
        return Err(refuse(
            "query",
            "an export selects its list alone: no fragment or other field at the root",
        ));
    }
    let root_def = catalog::ROOTS
        .iter()
        .find(|r| r.name == root.name.node.as_str() && matches!(r.lookup, Lookup::List { .. }))
        .ok_or_else(|| {
            refuse(
                "query",
                format!(
                    "`{}` is not a list that can be exported; export one of {}",
                    root.name.node,
                    lists.join(", ")
                ),
            )
        })?;
    if !root.directives.is_empty() {
        return Err(refuse("query", "the exported list takes no directive"));
    }
    let mut after = Start::Beginning;
    let mut arguments = Vec::new();
    for (name, value) in &root.arguments {
        match name.node.as_str() {
            "first" => {
                return Err(refuse(
                    "first",
                    "an export streams every row of the list; leave `first` out",
                ));
            }
            "after" => {
                after = match &value.node {
                    Value::String(cursor) => Start::Cursor(cursor.clone()),
                    Value::Variable(v) => Start::Variable(v.to_string()),
                    Value::Null => Start::Beginning,
                    _ => return Err(refuse("after", "a cursor is a string")),
                }
            }
            _ => arguments.push((name.node.to_string(), value.node.to_string())),
        }
    }
    let nodes = node_selection(&root.selection_set.node)?;
    let entity = catalog::expect_entity(root_def.entity);
    let mut walk = Walk {
        document,
        columns: Vec::new(),
        plain: root.directives.is_empty(),
    };
    if format == Format::Csv {
        walk.columns_of(nodes, entity, &mut Path::default(), 0)?;
        if walk.columns.is_empty() {
            return Err(refuse("query", "select at least one field of the nodes"));
        }
    }
    let given = |name: &str| -> Option<ConstValue> {
        let Some((_, value)) = root.arguments.iter().find(|(n, _)| n.node == name) else {
            return Some(ConstValue::Null);
        };
        value
            .node
            .clone()
            .into_const_with(|var| {
                variables
                    .get(&var)
                    .cloned()
                    .or_else(|| {
                        operation
                            .variable_definitions
                            .iter()
                            .find(|d| d.node.name.node == var)
                            .and_then(|d| d.node.default_value.as_ref())
                            .map(|v| v.node.clone())
                    })
                    // Validation has refused a missing non-null one: a
                    // missing variable is null, as the executor takes it.
                    .map_or(Ok::<_, ()>(ConstValue::Null), Ok)
            })
            .ok()
    };
    let filter_and_order = given("filter").zip(given("orderBy"));

    // The page's query: the variables and fragments the nodes and the
    // arguments use, and the list with our `first` and `after`.
    let mut selection = String::new();
    print_selection_set(&mut selection, nodes);
    let mut used_fragments = BTreeSet::new();
    fragments_used(document, nodes, &mut used_fragments);
    let mut used_variables = BTreeSet::new();
    for (_, value) in root.arguments.iter().filter(|(n, _)| n.node != "after") {
        variables_in(&value.node, &mut used_variables);
    }
    variables_of_set(nodes, &mut used_variables);
    for name in &used_fragments {
        if let Some(f) = document.fragments.get(&async_graphql::Name::new(name)) {
            variables_of_set(&f.node.selection_set.node, &mut used_variables);
        }
    }
    let mut definitions: Vec<String> = operation
        .variable_definitions
        .iter()
        .filter(|d| used_variables.contains(d.node.name.node.as_str()))
        .map(|d| {
            let mut text = format!("${}: {}", d.node.name.node, d.node.var_type.node);
            if let Some(default) = &d.node.default_value {
                let _ = write!(text, " = {}", default.node);
            }
            text
        })
        .collect();
    definitions.push(format!("${FIRST_VARIABLE}: Int!"));
    definitions.push(format!("${AFTER_VARIABLE}: String"));
    let mut args: Vec<String> = arguments
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    args.push(format!("first: ${FIRST_VARIABLE}"));
    args.push(format!("after: ${AFTER_VARIABLE}"));
    let mut fragments = String::new();
    for name in &used_fragments {
        if let Some(f) = document.fragments.get(&async_graphql::Name::new(name)) {
            let _ = write!(
                fragments,
                " fragment {} on {}",
                name, f.node.type_condition.node.on.node
            );
            print_directives(&mut fragments, &f.node.directives);
            fragments.push(' ');
            print_selection_set(&mut fragments, &f.node.selection_set.node);
        }
    }
    let query = |counted: bool| {
        format!(
            "query BackplaneExport({}) {{ {LIST_KEY}: {}({}) {{ {}pageInfo {{ hasNextPage endCursor }} nodes {selection} }} }}{fragments}",
            definitions.join(", "),
            root_def.name,
            args.join(", "),
            if counted { "totalCount " } else { "" },
        )
    };
    Ok(Plan {
        list: root_def.name,
        page_query: query(false),
        counted_query: query(true),
        after,
        columns: walk.columns,
        plain: walk.plain,
        filter_and_order,
        arguments: arguments
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The selection of the nodes: `nodes { … }` or `edges { node { … } }`.
fn node_selection(list: &SelectionSet) -> Result<&SelectionSet, Refusal> {
    let mut found = None;
    for item in &list.items {
        let Selection::Field(f) = &item.node else {
            return Err(refuse(
                "query",
                "select the nodes of the list as `nodes { … }` (no fragment on the connection)",
            ));
        };
        let set = match f.node.name.node.as_str() {
            "nodes" => &f.node.selection_set.node,
            "edges" => {
                let node = f
                    .node
                    .selection_set
                    .node
                    .items
                    .iter()
                    .find_map(|s| match &s.node {
                        Selection::Field(n) if n.node.name.node == "node" => {
                            Some(&n.node.selection_set.node)
                        }
                        _ => None,
                    });
                node.ok_or_else(|| {
                    refuse("query", "select `edges { node { … } }` or `nodes { … }`")
                })?
            }
            // Every row is exported: a count or a page's end says nothing more.
            "totalCount" | "pageInfo" | "__typename" => continue,
            other => {
                return Err(refuse(
                    "query",
                    format!("`{other}` is not part of an export"),
                ));
            }
        };
        if found.replace(set).is_some() {
            return Err(refuse("query", "select the nodes once"));
        }
    }
    found.ok_or_else(|| refuse("query", "select the nodes of the list: `nodes { … }`"))
}

/// The walk over the nodes' selection that finds CSV's columns.
struct Walk<'d> {
    document: &'d ExecutableDocument,
    columns: Vec<Column>,
    /// Nothing outside the plain rows' subset met so far.
    plain: bool,
}

/// Where the walk is: the response keys and the catalog fields to here.
#[derive(Default)]
struct Path {
    keys: Vec<String>,
    fields: Vec<Option<&'static catalog::Field>>,
}

impl Walk<'_> {
    /// CSV's columns under `set` (of `entity`): a leaf field is a column
    /// named by its path of response keys; a to-one object adds its leaves by
    /// path (`plan.code`); a list cannot be a column.
    fn columns_of(
        &mut self,
        set: &SelectionSet,
        entity: &'static catalog::Entity,
        path: &mut Path,
        depth: usize,
    ) -> Result<(), Refusal> {
        if depth > 16 {
            return Err(refuse("query", "fragments nest too deep"));
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let described = entity.field(name);
                    if !f.node.directives.is_empty() || !f.node.arguments.is_empty() {
                        self.plain = false;
                    }
                    path.keys.push(f.node.response_key().node.to_string());
                    path.fields.push(described);
                    if f.node.selection_set.node.items.is_empty() {
                        let plain_leaf = match described.map(|d| d.source) {
                            Some(Source::Column { .. }) => true,
                            None => name == "__typename",
                            Some(_) => false,
                        };
                        self.plain &= plain_leaf;
                        if !self.columns.iter().any(|c| c.keys == path.keys) {
                            self.columns.push(Column {
                                keys: path.keys.clone(),
                                fields: path.fields.clone(),
                            });
                        }
                    } else {
                        let target = described
                            .and_then(|field| match field.source {
                                Source::Embedded(_) | Source::ToOne { .. } => field.target(),
                                _ => None,
                            })
                            .ok_or_else(|| {
                                refuse(
                                    "query",
                                    format!(
                                        "`{}` is a list: a CSV export has one row per node and cannot hold it; leave it out, or export NDJSON",
                                        path.keys.join(".")
                                    ),
                                )
                            })?;
                        self.columns_of(&f.node.selection_set.node, target, path, depth + 1)?;
                    }
                    path.keys.pop();
                    path.fields.pop();
                }
                Selection::FragmentSpread(s) => {
                    if let Some(f) = self.document.fragments.get(&s.node.fragment_name.node) {
                        self.plain &= s.node.directives.is_empty()
                            && f.node.directives.is_empty()
                            && f.node.type_condition.node.on.node == entity.name;
                        self.columns_of(&f.node.selection_set.node, entity, path, depth + 1)?;
                    }
                }
                Selection::InlineFragment(i) => {
                    self.plain &= i.node.directives.is_empty()
                        && i.node
                            .type_condition
                            .as_ref()
                            .is_none_or(|t| t.node.on.node == entity.name);
                    self.columns_of(&i.node.selection_set.node, entity, path, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

fn fragments_used(document: &ExecutableDocument, set: &SelectionSet, out: &mut BTreeSet<String>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => fragments_used(document, &f.node.selection_set.node, out),
            Selection::FragmentSpread(s) => {
                let name = s.node.fragment_name.node.to_string();
                if out.insert(name)
                    && let Some(f) = document.fragments.get(&s.node.fragment_name.node)
                {
                    fragments_used(document, &f.node.selection_set.node, out);
                }
            }
            Selection::InlineFragment(i) => {
                fragments_used(document, &i.node.selection_set.node, out)
            }
        }
    }
}

fn variables_in(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Variable(name) => {
            out.insert(name.to_string());
        }
        Value::List(items) => items.iter().for_each(|v| variables_in(v, out)),
        Value::Object(map) => map.values().for_each(|v| variables_in(v, out)),
        _ => {}
    }
}

fn variables_of_directives(
    directives: &[async_graphql::Positioned<async_graphql::parser::types::Directive>],
    out: &mut BTreeSet<String>,
) {
    for d in directives {
        for (_, v) in &d.node.arguments {
            variables_in(&v.node, out);
        }
    }
}

fn variables_of_set(set: &SelectionSet, out: &mut BTreeSet<String>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                for (_, v) in &f.node.arguments {
                    variables_in(&v.node, out);
                }
                variables_of_directives(&f.node.directives, out);
                variables_of_set(&f.node.selection_set.node, out);
            }
            Selection::FragmentSpread(s) => variables_of_directives(&s.node.directives, out),
            Selection::InlineFragment(i) => {
                variables_of_directives(&i.node.directives, out);
                variables_of_set(&i.node.selection_set.node, out);
            }
        }
    }
}

fn print_directives(
    out: &mut String,
    directives: &[async_graphql::Positioned<async_graphql::parser::types::Directive>],
) {
    for d in directives {
        let _ = write!(out, " @{}", d.node.name.node);
        print_arguments(out, &d.node.arguments);
    }
}

fn print_arguments(
    out: &mut String,
    arguments: &[(
        async_graphql::Positioned<async_graphql::Name>,
        async_graphql::Positioned<Value>,
    )],
) {
    if arguments.is_empty() {
        return;
    }
    out.push('(');
    for (i, (name, value)) in arguments.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}: {}", name.node, value.node);
    }
    out.push(')');
}

/// Prints a selection set as GraphQL text.
fn print_selection_set(out: &mut String, set: &SelectionSet) {
    out.push('{');
    for item in &set.items {
        out.push(' ');
        match &item.node {
            Selection::Field(f) => {
                if let Some(alias) = &f.node.alias {
                    let _ = write!(out, "{}: ", alias.node);
                }
                out.push_str(f.node.name.node.as_str());
                print_arguments(out, &f.node.arguments);
                print_directives(out, &f.node.directives);
                if !f.node.selection_set.node.items.is_empty() {
                    out.push(' ');
                    print_selection_set(out, &f.node.selection_set.node);
                }
            }
            Selection::FragmentSpread(s) => {
                let _ = write!(out, "...{}", s.node.fragment_name.node);
                print_directives(out, &s.node.directives);
            }
            Selection::InlineFragment(i) => {
                out.push_str("...");
                if let Some(on) = &i.node.type_condition {
                    let _ = write!(out, " on {}", on.node.on.node);
                }
                print_directives(out, &i.node.directives);
                out.push(' ');
                print_selection_set(out, &i.node.selection_set.node);
            }
        }
    }
    out.push_str(" }");
}

/// The value at `path` under `node` (null when absent).
pub fn at<'a>(node: &'a serde_json::Value, path: &[String]) -> &'a serde_json::Value {
    path.iter()
        .try_fold(node, |v, key| v.get(key))
        .unwrap_or(&serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(query: &str, format: Format) -> Result<Plan, Refusal> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        plan(&document, None, &Variables::default(), format)
    }

    #[test]
    fn a_list_becomes_the_query_of_one_page() {
        let p = plan_of(
            "query Q($s: [UserStatus!]) { users(filter: {status: $s}, orderBy: EMAIL_ASC) { totalCount nodes { email name organization { slug plan { code } } } } }",
            Format::Csv,
        )
        .expect("a plan");
        assert_eq!(p.list, "users");
        assert_eq!(
            p.page_query,
            "query BackplaneExport($s: [UserStatus!], $backplaneExportFirst: Int!, $backplaneExportAfter: String) { export: users(filter: {status: $s}, orderBy: EMAIL_ASC, first: $backplaneExportFirst, after: $backplaneExportAfter) { pageInfo { hasNextPage endCursor } nodes { email name organization { slug plan { code } } } } }"
        );
        let headers: Vec<String> = p.columns.iter().map(Column::header).collect();
        assert_eq!(
            headers,
            [
                "email",
                "name",
                "organization.slug",
                "organization.plan.code"
            ]
        );
        assert_eq!(p.after, Start::Beginning);
        assert!(p.plain, "catalog columns through to-one relations");
        let (filter, order) = p.filter_and_order.expect("the arguments");
        assert_eq!(filter.to_string(), "{status: null}", "$s is given no value");
        assert_eq!(order.to_string(), "EMAIL_ASC");
        // What plain rows do not read goes the pages' way.
        for query in [
            "{ users { nodes { email @include(if: true) } } }",
            "{ users { nodes { ... on Organization { name } } } }",
            "{ users { nodes { tickets(first: 1) { totalCount } } } }",
        ] {
            let p = plan_of(query, Format::Csv);
            assert!(p.as_ref().is_ok_and(|p| !p.plain) || p.is_err(), "{query}");
        }
        let p = plan_of(
            "query($o: UserOrder = EMAIL_ASC) { users(orderBy: $o) { nodes { __typename id } } }",
            Format::Csv,
        )
        .expect("a plan");
        assert!(p.plain);
        assert_eq!(
            p.filter_and_order,
            Some((
                ConstValue::Null,
                ConstValue::Enum(async_graphql::Name::new("EMAIL_ASC"))
            ))
        );
    }

    #[test]
    fn what_cannot_be_exported_is_refused_with_its_reason() {
        for (query, field, says) in [
            (
                "{ users(first: 10) { nodes { email } } }",
                "first",
                "leave `first` out",
            ),
            (
                "{ users { nodes { email } } organizations { nodes { id } } }",
                "query",
                "exactly one root list",
            ),
            (
                "{ organization(id: \"org_1\") { id } }",
                "query",
                "not a list",
            ),
            (
                "{ organizations { nodes { id users { nodes { email } } } } }",
                "query",
                "`users` is a list",
            ),
            (
                "mutation { bulkVoidInvoices(input: {ids: [], reason: \"x\"}) { changed } }",
                "query",
                "not a mutation",
            ),
        ] {
            let refusal = plan_of(query, Format::Csv).expect_err(query);
            assert_eq!(refusal.field, field, "{query}");
            assert!(
                refusal.message.contains(says),
                "{query}: {}",
                refusal.message
            );
        }
        // NDJSON keeps nested pages.
        assert!(
            plan_of(
                "{ organizations { nodes { id users(first: 5) { nodes { email } } } } }",
                Format::Ndjson
            )
            .is_ok()
        );
    }

    #[test]
    fn only_the_fragments_and_variables_the_nodes_use_are_kept() {
        let p = plan_of(
            "query Q($after: String, $n: Int, $x: Boolean!) { users(after: $after) { totalCount nodes { ...U } } } fragment U on User { email tickets(first: $n) { nodes { id } } } fragment Unused on User { id }",
            Format::Ndjson,
        )
        .expect("a plan");
        assert_eq!(p.after, Start::Variable("after".into()));
        // Where it starts, by the variable's value.
        let with = |value: Option<ConstValue>| {
            let mut variables = Variables::default();
            if let Some(value) = value {
                variables.insert(async_graphql::Name::new("after"), value);
            }
            variables
        };
        let cursor =
            |variables: &Variables| p.after.cursor(variables).map(|c| c.map(str::to_owned));
        assert_eq!(cursor(&with(None)), Ok(None));
        assert_eq!(cursor(&with(Some(ConstValue::Null))), Ok(None));
        assert_eq!(
            cursor(&with(Some(ConstValue::String("abc".into())))),
            Ok(Some("abc".to_owned()))
        );
        assert_eq!(cursor(&with(Some(ConstValue::from(3)))), Err(NotACursor));
        assert_eq!(Start::Beginning.cursor(&with(None)), Ok(None));
        assert_eq!(
            Start::Cursor("xyz".into()).cursor(&with(None)),
            Ok(Some("xyz"))
        );
        assert!(p.page_query.contains("$n: Int"), "{}", p.page_query);
        assert!(!p.page_query.contains("$x"), "{}", p.page_query);
        assert!(!p.page_query.contains("$after:"), "{}", p.page_query);
        assert!(
            p.page_query
                .ends_with("fragment U on User { email tickets(first: $n) { nodes { id } } }"),
            "{}",
            p.page_query
        );
    }

    #[test]
    fn exports_at_once_are_bounded_per_caller_and_in_all() {
        let slots = Slots::new(Settings {
            per_principal: 2,
            in_all: 3,
            ..Settings::default()
        });
        let a1 = slots.start("a").expect("a's first");
        let _a2 = slots.start("a").expect("a's second");
        assert!(
            slots
                .start("a")
                .expect_err("a third")
                .contains("most one caller")
        );
        let _b1 = slots.start("b").expect("b's first");
        assert!(
            slots
                .start("c")
                .expect_err("a fourth")
                .contains("most at once")
        );
        drop(a1);
        assert!(slots.start("c").is_ok());
    }

    #[test]
    fn accept_names_the_format() {
        assert_eq!(Format::negotiate(Some("text/csv")), Some(Format::Csv));
        assert_eq!(
            Format::negotiate(Some("application/x-ndjson; q=1")),
            Some(Format::Ndjson)
        );
        assert_eq!(Format::negotiate(Some("application/json")), None);
        assert_eq!(Format::negotiate(None), None);
    }
}
