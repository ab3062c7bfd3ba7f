//! Document limits checked before anything else looks at a document: its size
//! once fragments are expanded (computed with memoisation, so a chain of
//! fragments each spreading the next twice costs linear time to measure, not
//! exponential), its aliases, and its root fields. async-graphql's own depth
//! and recursion limits are set on the schema beside these.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, Positioned, ServerError};

/// The limits of one document.
#[derive(Clone, Copy, Debug)]
pub struct DocumentLimits {
    /// Field selections once every fragment is expanded.
    pub max_expanded_fields: u64,
    /// Aliased fields written in the document (`__typename` included).
    pub max_aliases: usize,
    /// Fields at the root of the operation.
    pub max_root_fields: usize,
    /// Nesting depth of selections.
    pub max_depth: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        Self {
            max_expanded_fields: 5_000,
            max_aliases: 30,
            max_root_fields: 20,
            max_depth: 24,
        }
    }
}

fn limit_error(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", "LIMIT_EXCEEDED");
    error.extensions = Some(ext);
    error
}

/// Refuses a document over `limits`, before validation or execution.
pub fn check(document: &ExecutableDocument, limits: &DocumentLimits) -> Result<(), ServerError> {
    let mut sizer = Sizer {
        document,
        memo: HashMap::new(),
        on_path: Vec::new(),
    };
    let mut aliases = 0usize;
    for (_, fragment) in document.fragments.iter() {
        aliases += count_aliases(&fragment.node.selection_set);
    }
    for (_, operation) in document.operations.iter() {
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
        let size = sizer.size(set);
        if size > limits.max_expanded_fields {
            return Err(limit_error(format!(
                "the document selects {size} fields once its fragments are expanded; at most {} are allowed",
                limits.max_expanded_fields
            )));
        }
        let depth = sizer.depth(set, 0);
        if depth > limits.max_depth {
            return Err(limit_error(format!(
                "the document nests {depth} levels deep; at most {} are allowed",
                limits.max_depth
            )));
        }
    }
    if aliases > limits.max_aliases {
        return Err(limit_error(format!(
            "the document has {aliases} aliases; at most {} are allowed",
            limits.max_aliases
        )));
    }
    Ok(())
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

struct Sizer<'a> {
    document: &'a ExecutableDocument,
    /// Expanded size and depth of each fragment, computed once.
    memo: HashMap<String, (u64, usize)>,
    /// Fragments being measured (a cycle counts as nothing; validation reports it).
    on_path: Vec<String>,
}

impl Sizer<'_> {
    fn fragment(&mut self, name: &str) -> (u64, usize) {
        if let Some(known) = self.memo.get(name) {
            return *known;
        }
        if self.on_path.iter().any(|n| n == name) {
            return (0, 0);
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return (0, 0);
        };
        self.on_path.push(name.to_owned());
        let size = self.size(&fragment.node.selection_set);
        let depth = self.depth(&fragment.node.selection_set, 0);
        self.on_path.pop();
        self.memo.insert(name.to_owned(), (size, depth));
        (size, depth)
    }

    fn size(&mut self, set: &Positioned<SelectionSet>) -> u64 {
        let mut total = 0u64;
        for selection in &set.node.items {
            let add = match &selection.node {
                Selection::Field(f) => 1u64.saturating_add(self.size(&f.node.selection_set)),
                Selection::InlineFragment(i) => self.size(&i.node.selection_set),
                Selection::FragmentSpread(s) => self.fragment(s.node.fragment_name.node.as_str()).0,
            };
            total = total.saturating_add(add);
        }
        total
    }

    fn depth(&mut self, set: &Positioned<SelectionSet>, here: usize) -> usize {
        let mut deepest = here;
        for selection in &set.node.items {
            let d = match &selection.node {
                Selection::Field(f) if f.node.selection_set.node.items.is_empty() => here + 1,
                Selection::Field(f) => self.depth(&f.node.selection_set, here + 1),
                Selection::InlineFragment(i) => self.depth(&i.node.selection_set, here),
                Selection::FragmentSpread(s) => {
                    here + self.fragment(s.node.fragment_name.node.as_str()).1
                }
            };
            deepest = deepest.max(d);
        }
        deepest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(q: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(q).expect("parse")
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
        let err = check(&doc(&q), &DocumentLimits::default()).expect_err("refused");
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
        let err = check(
            &doc(&format!("{{ viewer {{ {many} }} }}")),
            &DocumentLimits::default(),
        )
        .expect_err("aliases");
        assert!(err.message.contains("aliases"), "{}", err.message);
        let roots: String = (0..21).map(|_| "__typename ".to_string()).collect();
        let err =
            check(&doc(&format!("{{ {roots} }}")), &DocumentLimits::default()).expect_err("roots");
        assert!(err.message.contains("root fields"), "{}", err.message);
        assert!(check(&doc("{ viewer { subject } }"), &DocumentLimits::default()).is_ok());
    }

    #[test]
    fn depth_counts_through_fragments() {
        let q = "{ a { b { ...F } } } fragment F on X { c { d { e } } }";
        let limits = DocumentLimits {
            max_depth: 4,
            ..Default::default()
        };
        assert!(check(&doc(q), &limits).is_err());
        let limits = DocumentLimits {
            max_depth: 5,
            ..Default::default()
        };
        assert!(check(&doc(q), &limits).is_ok());
    }
}
