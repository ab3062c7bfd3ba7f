//! Compiled statements kept for the next request of their document.
//!
//! A script or an admin page sends the same few documents over and over, with
//! other values: another organization's slug, the next page's cursor. The
//! statement's text does not change with those values, only its parameters
//! do. So the compiler notes, as it binds them, which parameters came from
//! which variable (the *slots*), and the statement is kept with the values of
//! the variables that did shape its text (a page size, a filter, an order, an
//! `@include`): the next request whose shaping values are the same binds its
//! own values into the slots, and sends the statement, without compiling.
//!
//! A variable is a slot only when every use of it in the document is the
//! whole value of a `slug`, `id` or `after` argument (which the compiler binds
//! and never writes into the text), and only when the compiler did bind it
//! through a slot: any other use makes its value part of the key. A slot's
//! value is checked as the compiler checks it (a slug is text, trimmed; an id
//! is one of the entity's; a cursor opens under the list's order); one that
//! fails sends the request to the executor, which gives the error, as a fresh
//! compilation would. Kept per document, operation, permission set and page
//! limit (see `CompiledReads`): nothing is shared between callers who may read
//! different things.

use std::collections::HashSet;

use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Positioned, Value as ConstValue, Variables};
use sea_orm::{DbBackend, Statement, Value};

use super::Compiled;
use super::answer::{Growth, Node};
use crate::catalog::Entity;
use crate::graphql::ids;
use crate::graphql::pagination::{Cursors, Ordering};
use crate::store::sql::Sql;

/// What a slot takes from its variable.
#[derive(Debug, Clone, Copy)]
pub(super) enum SlotKind {
    /// `organizationBySlug(slug:)`: text, trimmed.
    Slug,
    /// `organization(id:)` and the other lookups by id: one of the entity's.
    Id(&'static Entity),
    /// `after:` of a list in this order: the cursor's sort value and id (as
    /// `Sort::after` binds them).
    After(Ordering),
}

/// Parameters `at..at + len` of the statement come from `variable`.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub variable: String,
    pub at: usize,
    pub len: usize,
    pub kind: SlotKind,
}

/// What a template was compiled with, for one declared variable.
#[derive(Debug, PartialEq)]
pub(super) enum KeyPart {
    /// The value the request gave (none: not given), which shaped the text.
    Given(Option<ConstValue>),
    /// A slot variable: only whether its value was null (a page with no
    /// cursor has no keyset condition).
    Slot { null: bool },
}

/// A compiled statement and the answer's shape, with its slots.
#[derive(Debug)]
pub(super) struct Template {
    /// One part per declared variable, in the order declared.
    pub key: Vec<KeyPart>,
    /// The text in the backend's placeholder syntax.
    pub text: String,
    pub values: Vec<Value>,
    pub slots: Vec<Slot>,
    pub shape: Node,
    /// How much longer than the statement's text its answers come out.
    pub growth: Growth,
}

/// A variable's value as the compiler reads it: given, else its default, else
/// null.
pub(super) fn resolved(
    operation: &OperationDefinition,
    variables: &Variables,
    name: &str,
) -> ConstValue {
    if let Some(value) = variables.get(name) {
        return value.clone();
    }
    operation
        .variable_definitions
        .iter()
        .find(|d| d.node.name.node.as_str() == name)
        .and_then(|d| d.node.default_value.as_ref())
        .map(|v| v.node.clone())
        .unwrap_or(ConstValue::Null)
}

impl Template {
    /// The template of a statement compiled for `variables`.
    pub(super) fn new(
        backend: DbBackend,
        operation: &OperationDefinition,
        variables: &Variables,
        compiled: Compiled,
    ) -> Self {
        let Compiled {
            sql,
            shape,
            slots,
            pure,
        } = compiled;
        let key = operation
            .variable_definitions
            .iter()
            .map(|d| {
                let name = d.node.name.node.as_str();
                if pure.contains(name) {
                    KeyPart::Slot {
                        null: resolved(operation, variables, name) == ConstValue::Null,
                    }
                } else {
                    KeyPart::Given(variables.get(name).cloned())
                }
            })
            .collect();
        let (text, values) = sql.into_parts(backend);
        Self {
            key,
            text,
            values,
            slots,
            shape,
            growth: Growth::default(),
        }
    }

    /// Whether a request with `variables` has this template's text.
    pub(super) fn fits(&self, operation: &OperationDefinition, variables: &Variables) -> bool {
        operation.variable_definitions.len() == self.key.len()
            && operation
                .variable_definitions
                .iter()
                .zip(&self.key)
                .all(|(d, part)| {
                    let name = d.node.name.node.as_str();
                    match part {
                        KeyPart::Given(value) => variables.get(name) == value.as_ref(),
                        KeyPart::Slot { null } => {
                            (resolved(operation, variables, name) == ConstValue::Null) == *null
                        }
                    }
                })
    }

    /// The statement for `variables`: the slots' values bound in; `None` when
    /// a slot's value is not what the compiler would have bound (the executor
    /// answers, with its error).
    pub(super) fn bind(
        &self,
        backend: DbBackend,
        operation: &OperationDefinition,
        variables: &Variables,
        cursors: &Cursors,
    ) -> Option<Statement> {
        Some(Statement::from_sql_and_values(
            backend,
            self.text.clone(),
            self.values_for(operation, variables, cursors)?,
        ))
    }

    /// The parameters for `variables`.
    pub(super) fn values_for(
        &self,
        operation: &OperationDefinition,
        variables: &Variables,
        cursors: &Cursors,
    ) -> Option<Vec<Value>> {
        let mut values = self.values.clone();
        for slot in &self.slots {
            let value = resolved(operation, variables, &slot.variable);
            let filled: Vec<Value> = match (slot.kind, value) {
                (SlotKind::Slug, ConstValue::String(slug)) => vec![slug.trim().to_owned().into()],
                (SlotKind::Id(entity), ConstValue::String(id)) => {
                    vec![ids::decode_of(entity, &id, "id").ok()?.into()]
                }
                (SlotKind::After(ordering), ConstValue::String(cursor)) => {
                    let keyset = cursors.open(&ordering, &cursor).ok()?;
                    let mut scratch = Sql::default();
                    ordering.sort.after("c", &keyset, &mut scratch).ok()?;
                    scratch.into_values()
                }
                _ => return None,
            };
            if filled.len() != slot.len {
                return None;
            }
            values.splice(slot.at..slot.at + slot.len, filled);
        }
        Some(values)
    }
}

/// The variables of `operation` that may be slots: every use of each, in the
/// operation and the document's fragments, is the whole value of a `slug`,
/// `id` or `after` argument.
pub(super) fn slot_candidates(
    document: &ExecutableDocument,
    operation: &OperationDefinition,
) -> HashSet<String> {
    let mut only_slots = HashSet::new();
    let mut elsewhere = HashSet::new();
    let mut sets: Vec<&SelectionSet> = vec![&operation.selection_set.node];
    sets.extend(
        document
            .fragments
            .values()
            .map(|f| &f.node.selection_set.node),
    );
    let note = |directives: &[Positioned<async_graphql::parser::types::Directive>],
                elsewhere: &mut HashSet<String>| {
        for directive in directives {
            for (_, value) in &directive.node.arguments {
                variables_in(&value.node, elsewhere);
            }
        }
    };
    for fragment in document.fragments.values() {
        note(&fragment.node.directives, &mut elsewhere);
    }
    note(&operation.directives, &mut elsewhere);
    while let Some(set) = sets.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    note(&field.directives, &mut elsewhere);
                    for (name, value) in &field.arguments {
                        match &value.node {
                            async_graphql_value::Value::Variable(variable)
                                if matches!(name.node.as_str(), "slug" | "id" | "after") =>
                            {
                                only_slots.insert(variable.to_string());
                            }
                            other => variables_in(other, &mut elsewhere),
                        }
                    }
                    sets.push(&field.selection_set.node);
                }
                Selection::FragmentSpread(spread) => note(&spread.node.directives, &mut elsewhere),
                Selection::InlineFragment(inline) => {
                    note(&inline.node.directives, &mut elsewhere);
                    sets.push(&inline.node.selection_set.node);
                }
            }
        }
    }
    only_slots.retain(|v| !elsewhere.contains(v));
    only_slots
}

/// Every variable named in `value`.
fn variables_in(value: &async_graphql_value::Value, out: &mut HashSet<String>) {
    // The conversion visits every variable of the value, however nested.
    let _ = value.clone().into_const_with(|name| {
        out.insert(name.to_string());
        Ok::<_, ()>(ConstValue::Null)
    });
}
