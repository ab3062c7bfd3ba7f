//! Document limits checked before anything else looks at a document: its
//! length, its size once fragments are expanded and its cost (both computed
//! with memoisation, so a chain of fragments each spreading the next twice
//! costs linear time to measure, not exponential), its aliases (`__typename`
//! included), its root fields, its directives per location and its depth.
//! async-graphql's own depth and recursion limits are set on the schema beside
//! these. People and service identities have budgets of their own.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, Name, Positioned, ServerError, Value, Variables};

use super::pagination::DEFAULT_PAGE_SIZE;

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
    let mut error = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", "LIMIT_EXCEEDED");
    error.extensions = Some(ext);
    error
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

/// Refuses a document over `limits`, before validation or execution.
/// `connections` names the fields whose `first` multiplies the cost of what
/// they select. Returns the cost of the costliest operation.
pub fn check(
    document: &ExecutableDocument,
    variables: &Variables,
    connections: &HashSet<String>,
    limits: &DocumentLimits,
) -> Result<u64, ServerError> {
    let mut costliest = 0u64;
    let mut sizer = Sizer {
        document,
        variables,
        connections,
        memo: HashMap::new(),
        on_path: Vec::new(),
        max_directives: limits.max_directives,
        too_many_directives: None,
    };
    let mut aliases = 0usize;
    for (_, fragment) in document.fragments.iter() {
        aliases += count_aliases(&fragment.node.selection_set);
    }
    for (_, operation) in document.operations.iter() {
        if operation.node.directives.len() > limits.max_directives {
            sizer.too_many_directives = Some(operation.node.directives.len());
        }
        let set = &operation.node.selection_set;
        let roots = set
            .node
            .items
            .iter()
            .filter(|s| matches!(s.node, Selection::Field(_)))
            .count();
        if roots > limits.max_root_fields {
            return Err(limit_error(format!(
                "the operation selects {roots} root fields; at most {} are allowed",
                limits.max_root_fields
            )));
        }
        aliases += count_aliases(set);
        let measure = sizer.measure(set, limits.max_page_size);
        if let Some(count) = sizer.too_many_directives {
            return Err(limit_error(format!(
                "a selection carries {count} directives; at most {} are allowed",
                limits.max_directives
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
        costliest = costliest.max(measure.cost);
    }
    if aliases > limits.max_aliases {
        return Err(limit_error(format!(
            "the document has {aliases} aliases; at most {} are allowed",
            limits.max_aliases
        )));
    }
    Ok(costliest)
}

fn count_aliases(set: &Positioned<SelectionSet>) -> usize {
    set.node
        .items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + count_aliases(&f.node.selection_set)
            }
            Selection::InlineFragment(i) => count_aliases(&i.node.selection_set),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// What a selection set amounts to.
#[derive(Clone, Copy, Debug, Default)]
struct Measure {
    /// Fields, fragments expanded.
    size: u64,
    /// Levels of nesting.
    depth: usize,
    /// Fields, each multiplied by the page sizes above it.
    cost: u64,
}

struct Sizer<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    connections: &'a HashSet<String>,
    /// What each fragment amounts to, computed once.
    memo: HashMap<String, Measure>,
    /// Fragments being measured (a cycle counts as nothing; validation reports it).
    on_path: Vec<String>,
    max_directives: usize,
    too_many_directives: Option<usize>,
}

impl Sizer<'_> {
    fn fragment(&mut self, name: &str, max_page: i32) -> Measure {
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
        let measure = self.measure(&fragment.node.selection_set, max_page);
        self.on_path.pop();
        self.memo.insert(name.to_owned(), measure);
        measure
    }

    fn directives(&mut self, count: usize) {
        if count > self.max_directives {
            self.too_many_directives = Some(count);
        }
    }

    /// The page size a connection field asks for: its `first` (a literal or a
    /// variable), the default when absent, and at most the largest allowed
    /// (a larger one is refused when the field runs).
    fn page_size(&self, field: &Field, max_page: i32) -> u64 {
        if !self.connections.contains(field.name.node.as_str()) {
            return 1;
        }
        let first = field
            .arguments
            .iter()
            .find(|(name, _)| name.node.as_str() == "first")
            .map(|(_, value)| &value.node);
        let n = match first {
            None => i64::from(DEFAULT_PAGE_SIZE),
            Some(value) => match value
                .clone()
                .into_const_with(|name: Name| {
                    Ok::<_, ()>(self.variables.get(&name).cloned().unwrap_or(Value::Null))
                })
                .unwrap_or(Value::Null)
            {
                Value::Number(n) => n.as_i64().unwrap_or(i64::from(DEFAULT_PAGE_SIZE)),
                _ => i64::from(DEFAULT_PAGE_SIZE),
            },
        };
        n.clamp(1, i64::from(max_page.max(1))) as u64
    }

    fn measure(&mut self, set: &Positioned<SelectionSet>, max_page: i32) -> Measure {
        let mut total = Measure::default();
        for selection in &set.node.items {
            let m = match &selection.node {
                Selection::Field(f) => {
                    self.directives(f.node.directives.len());
                    let inner = self.measure(&f.node.selection_set, max_page);
                    let page = self.page_size(&f.node, max_page);
                    Measure {
                        size: inner.size.saturating_add(1),
                        depth: inner.depth + 1,
                        cost: inner.cost.saturating_mul(page).saturating_add(1),
                    }
                }
                Selection::InlineFragment(i) => {
                    self.directives(i.node.directives.len());
                    self.measure(&i.node.selection_set, max_page)
                }
                Selection::FragmentSpread(s) => {
                    self.directives(s.node.directives.len());
                    self.fragment(s.node.fragment_name.node.as_str(), max_page)
                }
            };
            total.size = total.size.saturating_add(m.size);
            total.cost = total.cost.saturating_add(m.cost);
            total.depth = total.depth.max(m.depth);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(q: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(q).expect("parse")
    }

    fn connections() -> HashSet<String> {
        ["organizations", "users", "invoices"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn check_with(d: &ExecutableDocument, limits: &DocumentLimits) -> Result<u64, ServerError> {
        check(d, &Variables::default(), &connections(), limits)
    }

    fn check_default(d: &ExecutableDocument) -> Result<u64, ServerError> {
        check_with(d, &DocumentLimits::default())
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
        assert!(err.message.contains("aliases"), "{}", err.message);
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
        let q = "{ organizations(first: 100) { nodes { users(first: 100) { nodes { invoices(first: 100) { nodes { id number } } } } } } }";
        let err = check_default(&doc(q)).expect_err("cost");
        assert!(err.message.contains("costs"), "{}", err.message);
        // The same shape with small pages is fine.
        let q = "{ organizations(first: 10) { nodes { users(first: 5) { nodes { invoices(first: 2) { nodes { id number } } } } } } }";
        assert!(check_default(&doc(q)).is_ok());
        // A variable counts like a literal; a missing `first` counts as 20.
        let q = "query($n: Int) { organizations(first: $n) { nodes { users { nodes { invoices(first: 100) { nodes { id } } } } } } }";
        let mut vars = Variables::default();
        vars.insert(Name::new("n"), Value::from(100));
        let err = check(&doc(q), &vars, &connections(), &DocumentLimits::default())
            .expect_err("variable first");
        assert!(err.message.contains("costs"), "{}", err.message);
        // Services have a larger budget.
        let q = "{ organizations(first: 1000) { nodes { users(first: 10) { nodes { id } } } } }";
        assert!(check_default(&doc(q)).is_ok(), "clamped to 100 for people");
        assert!(check_with(&doc(q), &DocumentLimits::services()).is_ok());
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
