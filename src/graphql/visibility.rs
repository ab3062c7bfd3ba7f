//! Per-role schemas, enforced at validation.
//!
//! async-graphql's `visible` hides a field or type from introspection but still
//! lets a query that names it through validation (its validator never consults
//! visibility). This extension closes that gap: after parsing, it walks the
//! document — fields, fragments, inline fragments, variable types — and refuses
//! anything the caller may not see with the very error a name that does not
//! exist gets. Neither error repeats the name (validation's own messages are
//! rewritten to match), so a response never names a hidden field and a refusal
//! does not tell a hidden field from a misspelt one. The policy table decides;
//! guards at execution remain as a second wall.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::ValidationResult;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Selection, SelectionSet, Type, VariableDefinition,
};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{Pos, Positioned, ServerError, ServerResult, Variables};

use crate::identity::Principal;
use crate::policy::{field_permission, type_permission};

/// Installs the check on a schema.
pub struct PerRoleVisibility;

impl ExtensionFactory for PerRoleVisibility {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(VisibilityCheck::default())
    }
}

#[derive(Default)]
struct VisibilityCheck {
    /// The operation the request names, seen before the document is parsed.
    operation_name: std::sync::Mutex<Option<String>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for VisibilityCheck {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        if let Ok(mut name) = self.operation_name.lock() {
            name.clone_from(&request.operation_name);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // Limits first, on a parse of our own: async-graphql's parse step checks
        // recursion depth by expanding fragments without memoisation, which a
        // chain of doubling fragments turns exponential. A document that does
        // not parse is left to async-graphql, which reports the syntax error.
        let principal = ctx.data_opt::<Principal>();
        let all = ctx
            .data_opt::<super::limits::Limits>()
            .copied()
            .unwrap_or_default();
        let limits = all.of(principal);
        super::limits::check_length(query, limits)?;
        if let Ok(parsed) = async_graphql::parser::parse_query(query) {
            let connections = connection_fields(&ctx.schema_env.registry);
            super::limits::check(&parsed, variables, connections, limits)?;
        }
        let document = next.run(ctx, query, variables).await?;
        let wanted = self.operation_name.lock().ok().and_then(|n| n.clone());
        missing_variables(&document, wanted.as_deref(), variables)?;
        let checked = Walker {
            registry: &ctx.schema_env.registry,
            principal,
            document: &document,
            visiting: HashSet::new(),
            refused: None,
            clean: HashSet::new(),
        }
        .check_and_name();
        if let Err(refusal) = checked {
            let (error, name) = *refusal;
            // The audit log, unlike the caller, learns what was asked for.
            if let Some(operation) = ctx.data_opt::<Arc<crate::audit::OperationAudit>>() {
                operation.deny(&name);
            }
            return Err(error);
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|mut e| {
                    e.message = without_names(&e.message);
                    e
                })
                .collect()
        })
    }
}

/// A required variable without a value is a request error (the operation
/// cannot start), not an error of the field that uses it.
fn missing_variables(
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
            let mut error = ServerError::new(
                format!(
                    "variable ${} of type {} needs a value",
                    def.name.node, def.var_type.node
                ),
                Some(definition.pos),
            );
            let mut ext = async_graphql::ErrorExtensionValues::default();
            ext.set("code", "BAD_USER_INPUT");
            error.extensions = Some(ext);
            return Err(error);
        }
    }
    Ok(())
}

/// The names of fields that return a connection (whose `first` multiplies the
/// cost of what they select), read once from the schema.
fn connection_fields(registry: &Registry) -> &'static HashSet<String> {
    static NAMES: std::sync::OnceLock<HashSet<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        registry
            .types
            .values()
            .filter_map(|t| t.fields())
            .flat_map(|fields| fields.values())
            .filter(|f| MetaTypeName::concrete_typename(&f.ty).ends_with("Connection"))
            .map(|f| f.name.clone())
            .collect()
    })
}

/// Validation's messages for unknown fields and types, without the unknown name.
fn without_names(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("Unknown field \"")
        && let Some((_, on)) = rest.split_once("\" on type \"")
    {
        let type_name = on.split('"').next().unwrap_or_default();
        return unknown_field_message(type_name);
    }
    if message.starts_with("Unknown type \"") {
        return UNKNOWN_TYPE.to_owned();
    }
    message.to_owned()
}

struct Walker<'a> {
    registry: &'a Registry,
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
        match field_permission(type_name, field) {
            None => true,
            Some(p) => self.principal.is_some_and(|pr| pr.can(p)),
        }
    }

    fn check_and_name(mut self) -> Result<(), Box<(ServerError, String)>> {
        match self.check() {
            Ok(()) => Ok(()),
            Err(e) => Err(Box::new((e, self.refused.unwrap_or_default()))),
        }
    }

    fn check(&mut self) -> ServerResult<()> {
        for (_, operation) in self.document.operations.iter() {
            let op = &operation.node;
            for var in &op.variable_definitions {
                self.check_variable(var)?;
            }
            let root = match op.ty {
                async_graphql::parser::types::OperationType::Query => {
                    self.registry.query_type.clone()
                }
                async_graphql::parser::types::OperationType::Mutation => {
                    match &self.registry.mutation_type {
                        Some(m) => m.clone(),
                        None => continue,
                    }
                }
                async_graphql::parser::types::OperationType::Subscription => {
                    match &self.registry.subscription_type {
                        Some(s) => s.clone(),
                        None => continue,
                    }
                }
            };
            self.check_selection_set(&root, &op.selection_set)?;
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
                    let Some(field_type) = self
                        .registry
                        .concrete_type_by_name(type_name)
                        .and_then(|t| t.field_by_name(name))
                        .map(|f| MetaTypeName::concrete_typename(&f.ty).to_owned())
                    else {
                        // Unknown to the schema: validation will say so.
                        continue;
                    };
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

const UNKNOWN_TYPE: &str = "Unknown type: no such type in this schema.";

fn unknown_field_message(type_name: &str) -> String {
    format!("Unknown field on type \"{type_name}\": no such field in this schema.")
}

/// The error for a field that does not exist (or that the caller may not see).
fn unknown_field(_field: &str, type_name: &str, pos: Pos) -> ServerError {
    ServerError::new(unknown_field_message(type_name), Some(pos))
}

/// The error for a type that does not exist (or that the caller may not see).
fn unknown_type(_type_name: &str, pos: Pos) -> ServerError {
    ServerError::new(UNKNOWN_TYPE, Some(pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_not_repeated() {
        assert_eq!(
            without_names("Unknown field \"monthlyCostCents\" on type \"Organization\"."),
            unknown_field_message("Organization")
        );
        assert_eq!(
            without_names("Unknown type \"InternalFlags\""),
            UNKNOWN_TYPE
        );
        assert_eq!(without_names("Something else"), "Something else");
    }
}
