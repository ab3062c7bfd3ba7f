//! Document limits checked before anything else looks at a document: its
//! length, its size once fragments are expanded and its cost (both computed
//! with memoisation, so a chain of fragments each spreading the next twice
//! costs linear time to measure, not exponential), its aliases (`__typename`
//! included), its root fields, its directives per location and its depth.
//! async-graphql's own depth and recursion limits are set on the schema beside
//! these. People and service identities have budgets of their own.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql::{Name, Positioned, ServerError, Value, Variables};

use super::pagination::DEFAULT_PAGE_SIZE;
use super::visibility::TypeMap;

/// The limits of one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Length of the document text, in bytes.
    pub max_document_bytes: usize,
    /// Field selections once every fragment is expanded.
    pub max_expanded_fields: u64,
    /// Cost: every field counts 1, and a connection multiplies what it selects
    /// by its `first` (20 when not given), so page sizes multiply.
    pub max_complexity: u64,
    /// Aliased fields written in the document (`__typename` included).
    pub max_aliases: usize,
    /// Fields at the root of the operation.
    pub max_root_fields: usize,
    /// Directives on one field, fragment spread, inline fragment or operation.
    pub max_directives: usize,
    /// Nesting depth of selections.
    pub max_depth: usize,
    /// The largest `first` of any connection.
    pub max_page_size: i32,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        Self {
            max_document_bytes: 64 * 1024,
            max_expanded_fields: 5_000,
            max_complexity: 50_000,
            max_aliases: 30,
            max_root_fields: 20,
            max_directives: 4,
            max_depth: 24,
            max_page_size: 100,
        }
    }
}

impl DocumentLimits {
    /// The larger default budget of service identities (scripts paging through
    /// everything, bulk work).
    pub fn services() -> Self {
        Self {
            max_document_bytes: 256 * 1024,
            max_expanded_fields: 20_000,
            max_complexity: 500_000,
            max_aliases: 100,
            max_root_fields: 50,
            max_depth: 24,
            max_page_size: 1_000,
            ..Self::default()
        }
    }
}

/// The budgets of people (staff, the dev demo identity) and of service
/// identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub people: DocumentLimits,
    pub services: DocumentLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            people: DocumentLimits::default(),
            services: DocumentLimits::services(),
        }
    }
}

impl Limits {
    /// The budget of a caller (people's when nobody is known).
    pub fn of(&self, principal: Option<&crate::identity::Principal>) -> &DocumentLimits {
        match principal.map(|p| p.kind) {
            Some(crate::identity::PrincipalKind::Service) => &self.services,
            _ => &self.people,
        }
    }

    /// The deepest nesting any caller may send (async-graphql's own check).
    pub fn max_depth(&self) -> usize {
        self.people.max_depth.max(self.services.max_depth)
    }
}

pub(crate) fn limit_error(message: String) -> ServerError {
    super::error::request_error(super::error::Code::LimitExceeded, message, None)
}

/// Refuses a document text longer than `limits` allow, before it is parsed.
pub fn check_length(query: &str, limits: &DocumentLimits) -> Result<(), ServerError> {
    if query.len() > limits.max_document_bytes {
        return Err(limit_error(format!(
            "the document is {} bytes long; at most {} are allowed",
            query.len(),
            limits.max_document_bytes
        )));
    }
    Ok(())
}

/// Refuses a document over `limits`, before validation or execution, and
/// returns the cost of the operation that runs (`operation_name`, or the
/// first). Every operation is measured with what will run: fragments
/// expanded wherever they are spread (root fields and aliases inside them
/// included), and each `first` as the executor will read it — a literal, a
/// variable's value, the variable's declared default when the request omits
/// it, and the default page size when none of these gives a number. `types`
/// is the caller's own schema (`visibility::TypeMap` of its role set): a
/// field the caller may not see is measured as any unknown name is, so a
/// limit never tells a hidden connection from a misspelt field.
pub fn check(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    types: &TypeMap,
    limits: &DocumentLimits,
) -> Result<u64, ServerError> {
    let mut running = None;
    let mut costliest = 0u64;
    let mut aliases = 0u64;
    for (name, operation) in document.operations.iter() {
        let op = &operation.node;
        if op.directives.len() > limits.max_directives {
            return Err(too_many_directives(op.directives.len(), limits));
        }
        // Variables as the executor reads them: the request's value, else the
        // declared default.
        let mut values = HashMap::new();
        for definition in &op.variable_definitions {
            let def = &definition.node;
            let value = match variables.get(&def.name.node) {
                Some(value) => Some(value.clone()),
                None => def.default_value.as_ref().map(|d| d.node.clone()),
            };
            if let Some(value) = value {
                values.insert(def.name.node.to_string(), value);
            }
        }
        let mut sizer = Sizer {
            document,
            variables: &values,
            types,
            memo: HashMap::new(),
            on_path: Vec::new(),
            max_page: limits.max_page_size,
            max_directives: limits.max_directives,
            too_many_directives: None,
        };
        let root = types.root(op.ty).map(str::to_owned);
        let measure = sizer.measure(&op.selection_set, root.as_deref());
        if let Some(count) = sizer.too_many_directives {
            return Err(too_many_directives(count, limits));
        }
        if measure.roots > limits.max_root_fields as u64 {
            return Err(limit_error(format!(
                "the operation selects {} root fields once its fragments are expanded; at most {} are allowed",
                measure.roots, limits.max_root_fields
            )));
        }
        if measure.size > limits.max_expanded_fields {
            return Err(limit_error(format!(
                "the document selects {} fields once its fragments are expanded; at most {} are allowed",
                measure.size, limits.max_expanded_fields
            )));
        }
        if measure.depth > limits.max_depth {
            return Err(limit_error(format!(
                "the document nests {} levels deep; at most {} are allowed",
                measure.depth, limits.max_depth
            )));
        }
        if measure.cost > limits.max_complexity {
            return Err(limit_error(format!(
                "the operation costs {} (each field 1, times the page sizes above it); at most {} is allowed",
                measure.cost, limits.max_complexity
            )));
        }
        aliases = aliases.max(measure.aliases);
        costliest = costliest.max(measure.cost);
        let runs = match (operation_name, name) {
            (Some(wanted), Some(name)) => wanted == name.as_str(),
            (None, _) => running.is_none(),
            _ => false,
        };
        if runs {
            running = Some(measure.cost);
        }
    }
    // Aliases written in fragments no operation spreads still count: they
    // are part of the document validation reads.
    for (_, fragment) in document.fragments.iter() {
        aliases = aliases.max(count_aliases(&fragment.node.selection_set));
    }
    if aliases > limits.max_aliases as u64 {
        return Err(limit_error(format!(
            "the operation has {aliases} aliased fields once its fragments are expanded; at most {} are allowed",
            limits.max_aliases
        )));
    }
    Ok(running.unwrap_or(costliest))
}

fn too_many_directives(count: usize, limits: &DocumentLimits) -> ServerError {
    limit_error(format!(
        "a selection carries {count} directives; at most {} are allowed",
        limits.max_directives
    ))
}

/// Aliases written in one selection set, fragments not expanded.
fn count_aliases(set: &Positioned<SelectionSet>) -> u64 {
    set.node
        .items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => {
                u64::from(f.node.alias.is_some()) + count_aliases(&f.node.selection_set)
            }
            Selection::InlineFragment(i) => count_aliases(&i.node.selection_set),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// What a selection set amounts to once its fragments are expanded.
#[derive(Clone, Copy, Debug, Default)]
struct Measure {
    /// Fields directly in the set (through fragments and inline fragments):
    /// at the root, the operation's root fields.
    roots: u64,
    /// Fields, fragments expanded.
    size: u64,
    /// Aliased fields, fragments expanded (`__typename` included).
    aliases: u64,
    /// Levels of nesting.
    depth: usize,
    /// Fields, each multiplied by the page sizes above it.
    cost: u64,
}

impl Measure {
    fn add(&mut self, other: Measure) {
        self.roots = self.roots.saturating_add(other.roots);
        self.size = self.size.saturating_add(other.size);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.cost = self.cost.saturating_add(other.cost);
        self.depth = self.depth.max(other.depth);
    }
}

struct Sizer<'a> {
    document: &'a ExecutableDocument,
    /// The operation's variables as they will run (defaults applied).
    variables: &'a HashMap<String, Value>,
    /// The caller's schema.
    types: &'a TypeMap,
    /// What each fragment amounts to, computed once per operation (its type is
    /// its type condition, so where it is spread does not change it).
    memo: HashMap<String, Measure>,
    /// Fragments being measured (a cycle counts as nothing; validation reports it).
    on_path: Vec<String>,
    max_page: i32,
    max_directives: usize,
    too_many_directives: Option<usize>,
}

impl Sizer<'_> {
    fn fragment(&mut self, name: &str) -> Measure {
        if let Some(known) = self.memo.get(name) {
            return *known;
        }
        if self.on_path.iter().any(|n| n == name) {
            return Measure::default();
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return Measure::default();
        };
        self.on_path.push(name.to_owned());
        let on = fragment.node.type_condition.node.on.node.to_string();
        let measure = self.measure(&fragment.node.selection_set, Some(&on));
        self.on_path.pop();
        self.memo.insert(name.to_owned(), measure);
        measure
    }

    fn directives(&mut self, count: usize) {
        if count > self.max_directives {
            self.too_many_directives = Some(count);
        }
    }

    /// The page size a connection field will run with: its `first` or `last`
    /// (a literal or a variable, defaults applied; the larger when both are
    /// given), the default page size when that gives no number, and at most
    /// the largest allowed (a larger one is refused when the field runs).
    fn page_size(&self, field: &Field) -> u64 {
        let sizes = field
            .arguments
            .iter()
            .filter(|(name, _)| matches!(name.node.as_str(), "first" | "last"))
            .map(|(_, value)| {
                match value
                    .node
                    .clone()
                    .into_const_with(|name: Name| {
                        Ok::<_, ()>(
                            self.variables
                                .get(name.as_str())
                                .cloned()
                                .unwrap_or(Value::Null),
                        )
                    })
                    .unwrap_or(Value::Null)
                {
                    Value::Number(n) => n.as_i64().unwrap_or(i64::from(DEFAULT_PAGE_SIZE)),
                    _ => i64::from(DEFAULT_PAGE_SIZE),
                }
            });
        let n = sizes.max().unwrap_or(i64::from(DEFAULT_PAGE_SIZE));
        n.clamp(1, i64::from(self.max_page.max(1))) as u64
    }

    /// `set`, selected on `on` (None when the caller's schema has no such
    /// type: its fields are measured as plain fields).
    fn measure(&mut self, set: &Positioned<SelectionSet>, on: Option<&str>) -> Measure {
        let mut total = Measure::default();
        for selection in &set.node.items {
            let m = match &selection.node {
                Selection::Field(f) => {
                    self.directives(f.node.directives.len());
                    let name = f.node.name.node.as_str();
                    let returns = on
                        .and_then(|on| self.types.field_type(on, name))
                        .map(str::to_owned);
                    let inner = self.measure(&f.node.selection_set, returns.as_deref());
                    let page = if returns.as_deref().is_some_and(is_connection) {
                        self.page_size(&f.node)
                    } else {
                        1
                    };
                    Measure {
                        roots: 1,
                        size: inner.size.saturating_add(1),
                        aliases: inner
                            .aliases
                            .saturating_add(u64::from(f.node.alias.is_some())),
                        depth: inner.depth + 1,
                        cost: inner.cost.saturating_mul(page).saturating_add(1),
                    }
                }
                Selection::InlineFragment(i) => {
                    self.directives(i.node.directives.len());
                    let on = match &i.node.type_condition {
                        Some(cond) => Some(cond.node.on.node.to_string()),
                        None => on.map(str::to_owned),
                    };
                    self.measure(&i.node.selection_set, on.as_deref())
                }
                Selection::FragmentSpread(s) => {
                    self.directives(s.node.directives.len());
                    self.fragment(s.node.fragment_name.node.as_str())
                }
            };
            total.add(m);
        }
        total
    }
}

/// Whether a field returning `type_name` is a connection (its `first`
/// multiplies the cost of what it selects).
fn is_connection(type_name: &str) -> bool {
    type_name.ends_with("Connection")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(q: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(q).expect("parse")
    }

    fn types() -> TypeMap {
        let schema = crate::graphql::build_schema(None, Default::default(), Default::default());
        TypeMap::from_sdl(&crate::graphql::sdl(&schema)).expect("the SDL parses")
    }

    fn check_with(d: &ExecutableDocument, limits: &DocumentLimits) -> Result<u64, ServerError> {
        check(d, None, &Variables::default(), &types(), limits)
    }

    fn check_default(d: &ExecutableDocument) -> Result<u64, ServerError> {
        check_with(d, &DocumentLimits::default())
    }

    fn vars(value: serde_json::Value) -> Variables {
        Variables::from_json(value)
    }

    #[test]
    fn exponential_fragments_are_measured_in_linear_time_and_refused() {
        // F0 spreads F1 twice, F1 spreads F2 twice, … 2^40 fields expanded.
        let mut q = String::from("{ viewer { ...F0 } }\n");
        for i in 0..40 {
            q.push_str(&format!(
                "fragment F{i} on Viewer {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        q.push_str("fragment F40 on Viewer { subject }\n");
        let err = check_default(&doc(&q)).expect_err("refused");
        assert!(
            err.message
                .contains("fields once its fragments are expanded"),
            "{}",
            err.message
        );
    }

    #[test]
    fn aliases_and_root_fields_are_counted() {
        let many: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
        let err = check_default(&doc(&format!("{{ viewer {{ {many} }} }}"))).expect_err("aliases");
        assert!(err.message.contains("aliased fields"), "{}", err.message);
        let roots: String = (0..21).map(|_| "__typename ".to_string()).collect();
        let err = check_default(&doc(&format!("{{ {roots} }}"))).expect_err("roots");
        assert!(err.message.contains("root fields"), "{}", err.message);
        assert!(check_default(&doc("{ viewer { subject } }")).is_ok());
    }

    #[test]
    fn depth_counts_through_fragments() {
        let q = "{ a { b { ...F } } } fragment F on X { c { d { e } } }";
        let limits = DocumentLimits {
            max_depth: 4,
            ..Default::default()
        };
        assert!(check_with(&doc(q), &limits).is_err());
        let limits = DocumentLimits {
            max_depth: 5,
            ..Default::default()
        };
        assert!(check_with(&doc(q), &limits).is_ok());
    }

    #[test]
    fn page_sizes_multiply_the_cost() {
        // 100 × (1 + 100 × (1 + 100 × 2)) ≈ 2 million: refused.
        let q = "{ organizations(first: 100) { nodes { users(first: 100) { nodes { organization { invoices(first: 100) { nodes { id number } } } } } } } }";
        let err = check_default(&doc(q)).expect_err("cost");
        assert!(err.message.contains("costs"), "{}", err.message);
        // The same shape with small pages is fine.
        let q = "{ organizations(first: 10) { nodes { users(first: 5) { nodes { organization { invoices(first: 2) { nodes { id number } } } } } } } }";
        assert!(check_default(&doc(q)).is_ok());
        // A variable counts like a literal; a missing `first` counts as 20.
        let q = "query($n: Int) { organizations(first: $n) { nodes { users { nodes { organization { invoices(first: 100) { nodes { id } } } } } } } }";
        let err = check(
            &doc(q),
            None,
            &vars(serde_json::json!({ "n": 100 })),
            &types(),
            &DocumentLimits::default(),
        )
        .expect_err("variable first");
        assert!(err.message.contains("costs"), "{}", err.message);
        // Services have a larger budget.
        let q = "{ organizations(first: 1000) { nodes { users(first: 10) { nodes { id } } } } }";
        assert!(check_default(&doc(q)).is_ok(), "clamped to 100 for people");
        assert!(check_with(&doc(q), &DocumentLimits::services()).is_ok());
    }

    #[test]
    fn an_omitted_variable_is_measured_at_its_declared_default() {
        let q = "query($n: Int = 100) { organizations(first: $n) { nodes { users(first: $n) { nodes { organization { invoices(first: $n) { nodes { id } } } } } } } }";
        let err = check_default(&doc(q)).expect_err("measured at the default, 100");
        assert!(err.message.contains("costs"), "{}", err.message);
        // An explicit null runs as the default page size, as the executor reads it.
        let cost = check(
            &doc(q),
            None,
            &vars(serde_json::json!({ "n": null })),
            &types(),
            &DocumentLimits::default(),
        )
        .expect("null is the default page size");
        assert!(cost < 20 * 20 * 20 * 4, "{cost}");
        // The in-flight reservation is the cost that runs.
        let q = "query($n: Int = 7) { organizations(first: $n) { nodes { id } } }";
        assert_eq!(check_default(&doc(q)).expect("fine"), 1 + 7 * 2);
    }

    #[test]
    fn a_hidden_connection_is_measured_as_an_unknown_field() {
        let q = "{ invoices(first: 100) { nodes { id } } }";
        let full = check_default(&doc(q)).expect("fine");
        let without = TypeMap::from_sdl("type Query { organizations: Int }").expect("sdl");
        let hidden = check(
            &doc(q),
            None,
            &Variables::default(),
            &without,
            &DocumentLimits::default(),
        )
        .expect("fine");
        let unknown =
            check_default(&doc("{ frobnicate(first: 100) { nodes { id } } }")).expect("fine");
        assert!(full > hidden);
        assert_eq!(hidden, unknown);
    }

    #[test]
    fn root_fields_and_aliases_inside_fragments_count_where_they_are_spread() {
        let limits = DocumentLimits::default();
        // 21 root fields, all inside a fragment on Query.
        let roots: String = (0..21)
            .map(|i| format!("r{i}: viewer {{ subject }} "))
            .collect();
        let q = format!("{{ ...R }} fragment R on Query {{ {roots} }}");
        let err = check_with(
            &doc(&q),
            &DocumentLimits {
                max_aliases: 1000,
                ..limits
            },
        )
        .expect_err("root fields through a fragment");
        assert!(err.message.contains("root fields"), "{}", err.message);
        let q = format!("{{ ... on Query {{ {roots} }} }}");
        let err = check_with(
            &doc(&q),
            &DocumentLimits {
                max_aliases: 1000,
                ..limits
            },
        )
        .expect_err("root fields through an inline fragment");
        assert!(err.message.contains("root fields"), "{}", err.message);
        // Ten aliases in a fragment spread under four aliased parents: 44.
        let q = "{ viewer { a: subject ...A } v2: viewer { ...A } v3: viewer { ...A } v4: viewer { ...A } } \
                 fragment A on Viewer { a0: subject a1: subject a2: subject a3: subject a4: subject a5: subject a6: subject a7: subject a8: subject a9: subject }";
        let err = check_default(&doc(q)).expect_err("aliases through spreads");
        assert!(err.message.contains("44 aliased fields"), "{}", err.message);
    }

    #[test]
    fn directives_per_location_are_counted() {
        let many = "@include(if: true) ".repeat(5);
        let q = format!("{{ viewer {{ subject {many} }} }}");
        let err = check_default(&doc(&q)).expect_err("directives");
        assert!(err.message.contains("directives"), "{}", err.message);
        let q = format!("{{ viewer {{ ...F {many} }} }} fragment F on Viewer {{ subject }}");
        assert!(check_default(&doc(&q)).is_err());
        let q = "{ viewer { subject @include(if: true) @skip(if: false) } }";
        assert!(check_default(&doc(q)).is_ok());
    }

    #[test]
    fn length_is_checked_before_parsing() {
        let limits = DocumentLimits::default();
        assert!(check_length(&"#".repeat(limits.max_document_bytes + 1), &limits).is_err());
        assert!(check_length("{ viewer { subject } }", &limits).is_ok());
    }
}
