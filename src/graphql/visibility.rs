//! Per-role schemas, enforced at validation.
//!
//! async-graphql's `visible` hides a field or type from introspection but still
//! lets a query that names it through validation (its validator never consults
//! visibility). This check closes that gap (`gate` runs it on every document
//! before async-graphql sees it): it walks the document — fields, fragments, inline fragments, variable types — and refuses
//! anything the caller may not see with the very error a name that does not
//! exist gets. Neither error repeats the name (validation's own messages are
//! rewritten to match), so a response never names a hidden field and a refusal
//! does not tell a hidden field from a misspelt one. The policy table decides;
//! guards at execution remain as a second wall.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationType, Selection, SelectionSet, Type, TypeKind,
    TypeSystemDefinition, VariableDefinition,
};
use async_graphql::{Pos, Positioned, ServerError, ServerResult, Variables};

use crate::identity::Principal;
use crate::policy::{field_need, type_permission};

/// The type of every field of every object and interface type, read once from
/// the schema's SDL (which lists every field, hidden ones included).
#[derive(Debug, Default)]
pub struct TypeMap {
    query: String,
    mutation: Option<String>,
    subscription: Option<String>,
    /// Type → field → the named type it returns (lists and non-null removed).
    fields: HashMap<String, HashMap<String, String>>,
}

impl TypeMap {
    /// Reads `sdl` (as `graphql::sdl` prints it).
    pub fn from_sdl(sdl: &str) -> Result<Self, String> {
        let document = async_graphql::parser::parse_schema(sdl).map_err(|e| e.to_string())?;
        let mut map = TypeMap {
            query: "Query".into(),
            ..Default::default()
        };
        let mut roots = None;
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => roots = Some(schema.node),
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let fields = match ty.kind {
                        TypeKind::Object(object) => object.fields,
                        TypeKind::Interface(interface) => interface.fields,
                        _ => continue,
                    };
                    map.fields.insert(
                        ty.name.node.to_string(),
                        fields
                            .into_iter()
                            .map(|f| {
                                let f = f.node;
                                (f.name.node.to_string(), base_name(&f.ty.node).to_owned())
                            })
                            .collect(),
                    );
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        match roots {
            Some(schema) => {
                if let Some(q) = schema.query {
                    map.query = q.node.to_string();
                }
                map.mutation = schema.mutation.map(|m| m.node.to_string());
                map.subscription = schema.subscription.map(|s| s.node.to_string());
            }
            None => {
                map.mutation = map
                    .fields
                    .contains_key("Mutation")
                    .then(|| "Mutation".into());
                map.subscription = map
                    .fields
                    .contains_key("Subscription")
                    .then(|| "Subscription".into());
            }
        }
        Ok(map)
    }

    pub(crate) fn field_type(&self, type_name: &str, field: &str) -> Option<&str> {
        self.fields.get(type_name)?.get(field).map(String::as_str)
    }

    pub(crate) fn root(&self, ty: OperationType) -> Option<&str> {
        match ty {
            OperationType::Query => Some(&self.query),
            OperationType::Mutation => self.mutation.as_deref(),
            OperationType::Subscription => self.subscription.as_deref(),
        }
    }

    /// The names of fields that return a connection (whose `first` multiplies
    /// the cost of what they select).
    pub fn connection_fields(&self) -> HashSet<String> {
        self.fields
            .values()
            .flat_map(|fields| fields.iter())
            .filter(|(_, ty)| ty.ends_with("Connection"))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Checks that `principal` may see every name `document` uses, in every
/// operation. A refusal carries the error for the caller and, for the audit log
/// only, the name refused.
pub fn check(
    types: &TypeMap,
    principal: Option<&Principal>,
    document: &ExecutableDocument,
) -> Result<(), Box<(ServerError, String)>> {
    let mut walker = Walker {
        types,
        principal,
        document,
        visiting: HashSet::new(),
        refused: None,
        clean: HashSet::new(),
    };
    match walker.check() {
        Ok(()) => Ok(()),
        Err(e) => Err(Box::new((e, walker.refused.unwrap_or_default()))),
    }
}

/// A required variable without a value is a request error (the operation
/// cannot start), not an error of the field that uses it.
pub fn missing_variables(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> ServerResult<()> {
    let operation = match (&document.operations, operation_name) {
        (async_graphql::parser::types::DocumentOperations::Single(op), _) => op,
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), Some(name)) => {
            match ops.get(name) {
                Some(op) => op,
                None => return Ok(()),
            }
        }
        _ => return Ok(()),
    };
    for definition in &operation.node.variable_definitions {
        let def = &definition.node;
        let given = variables
            .get(&def.name.node)
            .is_some_and(|v| *v != async_graphql::Value::Null);
        if !def.var_type.node.nullable && def.default_value.is_none() && !given {
            return Err(super::error::request_error(
                super::error::Code::GraphqlValidationFailed,
                format!(
                    "variable ${} of type {} needs a value",
                    def.name.node, def.var_type.node
                ),
                Some(definition.pos),
            ));
        }
    }
    Ok(())
}

/// Validation's messages for unknown fields and types, in the words of
/// [`unknown_field`] and [`unknown_type`]: a name that never existed and a
/// name the caller may not see get the same message. Both repeat the name
/// the client sent (which tells it nothing it did not know) and never
/// suggest another.
pub fn without_names(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("Unknown field \"")
        && let Some((field, on)) = rest.split_once("\" on type \"")
    {
        let type_name = on.split('"').next().unwrap_or_default();
        return unknown_field_message(field, type_name);
    }
    if let Some(rest) = message.strip_prefix("Unknown type \"") {
        return unknown_type_message(rest.split('"').next().unwrap_or_default());
    }
    message.to_owned()
}

struct Walker<'a> {
    types: &'a TypeMap,
    principal: Option<&'a Principal>,
    document: &'a ExecutableDocument,
    /// Fragments on the current path (cycles are validation's to report).
    visiting: HashSet<String>,
    /// What the refusal was about, for the audit log.
    refused: Option<String>,
    /// Fragments already found clean: a fragment's verdict does not depend on
    /// where it is spread, so each is walked once (no exponential blow-up).
    clean: HashSet<String>,
}

impl Walker<'_> {
    fn may_see_type(&self, name: &str) -> bool {
        if crate::policy::WRITE_TYPES.contains(&name) {
            return self
                .principal
                .is_some_and(|p| crate::policy::WRITE_PERMISSIONS.iter().any(|w| p.can(*w)));
        }
        match type_permission(name) {
            None => true,
            Some(p) => self.principal.is_some_and(|pr| pr.can(p)),
        }
    }

    fn may_see_field(&self, type_name: &str, field: &str) -> bool {
        match field_need(type_name, field) {
            None => true,
            Some(need) => self.principal.is_some_and(|pr| need.met_by(|p| pr.can(p))),
        }
    }

    /// Every operation is checked: a document is refused as a whole.
    fn check(&mut self) -> ServerResult<()> {
        for (_, operation) in self.document.operations.iter() {
            let op = &operation.node;
            for var in &op.variable_definitions {
                self.check_variable(var)?;
            }
            if let Some(root) = self.types.root(op.ty) {
                let root = root.to_owned();
                self.check_selection_set(&root, &op.selection_set)?;
            }
        }
        Ok(())
    }

    fn check_variable(&mut self, var: &Positioned<VariableDefinition>) -> ServerResult<()> {
        let name = base_name(&var.node.var_type.node);
        if !self.may_see_type(name) {
            self.refused = Some(name.to_owned());
            return Err(unknown_type(name, var.node.var_type.pos));
        }
        Ok(())
    }

    fn check_selection_set(
        &mut self,
        type_name: &str,
        set: &Positioned<SelectionSet>,
    ) -> ServerResult<()> {
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if name.starts_with("__") {
                        // Introspection: async-graphql applies `visible` there.
                        continue;
                    }
                    if !self.may_see_type(type_name) || !self.may_see_field(type_name, name) {
                        self.refused = Some(format!("{type_name}.{name}"));
                        return Err(unknown_field(name, type_name, field.pos));
                    }
                    let Some(field_type) = self.types.field_type(type_name, name) else {
                        // Unknown to the schema: validation will say so.
                        continue;
                    };
                    let field_type = field_type.to_owned();
                    self.check_selection_set(&field_type, &field.node.selection_set)?;
                }
                Selection::InlineFragment(fragment) => {
                    let on = match &fragment.node.type_condition {
                        Some(cond) => {
                            let on = cond.node.on.node.as_str();
                            if !self.may_see_type(on) {
                                self.refused = Some(on.to_owned());
                                return Err(unknown_type(on, cond.pos));
                            }
                            on.to_owned()
                        }
                        None => type_name.to_owned(),
                    };
                    self.check_selection_set(&on, &fragment.node.selection_set)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.to_string();
                    let Some(fragment) = self.document.fragments.get(name.as_str()) else {
                        continue;
                    };
                    if self.clean.contains(&name) || !self.visiting.insert(name.clone()) {
                        continue;
                    }
                    let on = fragment.node.type_condition.node.on.node.to_string();
                    if !self.may_see_type(&on) {
                        self.refused = Some(on.clone());
                        return Err(unknown_type(&on, fragment.node.type_condition.pos));
                    }
                    let result = self.check_selection_set(&on, &fragment.node.selection_set);
                    self.visiting.remove(&name);
                    result?;
                    self.clean.insert(name);
                }
            }
        }
        Ok(())
    }
}

fn base_name(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => base_name(inner),
    }
}

fn unknown_type_message(type_name: &str) -> String {
    format!("Unknown type \"{type_name}\": no such type in this schema.")
}

fn unknown_field_message(field: &str, type_name: &str) -> String {
    format!("Unknown field \"{field}\" on type \"{type_name}\": no such field in this schema.")
}

/// The error for a field that does not exist (or that the caller may not see).
fn unknown_field(field: &str, type_name: &str, pos: Pos) -> ServerError {
    ServerError::new(unknown_field_message(field, type_name), Some(pos))
}

/// The error for a type that does not exist (or that the caller may not see).
fn unknown_type(type_name: &str, pos: Pos) -> ServerError {
    ServerError::new(unknown_type_message(type_name), Some(pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> TypeMap {
        let schema = crate::graphql::build_schema(None, Default::default(), Default::default());
        TypeMap::from_sdl(&crate::graphql::sdl(&schema)).expect("the SDL parses")
    }

    fn principal(roles: &[crate::policy::Role]) -> Principal {
        Principal {
            subject: "t".into(),
            email: None,
            name: None,
            kind: crate::identity::PrincipalKind::Staff,
            roles: roles.iter().copied().collect(),
            scopes: Default::default(),
            authentication: Default::default(),
            step_up: Default::default(),
        }
    }

    #[test]
    fn the_type_map_reads_every_field_hidden_ones_too() {
        let types = types();
        assert_eq!(types.root(OperationType::Query), Some("Query"));
        assert_eq!(types.root(OperationType::Mutation), Some("Mutation"));
        assert_eq!(
            types.field_type("Query", "organization"),
            Some("Organization")
        );
        assert_eq!(
            types.field_type("Organization", "internalFlags"),
            Some("InternalFlags")
        );
        let connections = types.connection_fields();
        assert!(connections.contains("organizations") && connections.contains("users"));
    }

    #[test]
    fn a_document_is_refused_when_any_operation_names_a_hidden_field() {
        let types = types();
        let doc = async_graphql::parser::parse_query(
            "query A { organization(id: \"org_1\") { ...F users { nodes { email } } } }
             query B { organization(id: \"org_1\") { internalFlags { betaAccess } } }
             fragment F on Organization { name }",
        )
        .expect("parses");
        let admin = principal(&[crate::policy::Role::Admin]);
        assert!(check(&types, Some(&admin), &doc).is_ok());
        let support = principal(&[crate::policy::Role::Support]);
        let (error, refused) = *check(&types, Some(&support), &doc).expect_err("refused");
        assert_eq!(refused, "Organization.internalFlags");
        // The message a field that never existed gets.
        assert_eq!(
            error.message,
            unknown_field_message("internalFlags", "Organization")
        );
    }

    #[test]
    fn unknown_names_are_told_in_one_way() {
        assert_eq!(
            without_names("Unknown field \"monthlyCostCents\" on type \"Organization\"."),
            unknown_field_message("monthlyCostCents", "Organization")
        );
        assert_eq!(
            without_names("Unknown type \"InternalFlags\""),
            unknown_type_message("InternalFlags")
        );
        assert_eq!(without_names("Something else"), "Something else");
    }
}
