//! Each role set's own schema, which every document is validated against.
//!
//! async-graphql's `visible` hides fields and types from introspection, but
//! its validator reads the whole registry: a document naming a hidden field
//! gets other errors (in number and in wording) than one naming a field that
//! never existed, and the parts of a document a hand-written walk does not
//! cover (an unused fragment, a subselection rule, an enum value, an input
//! field) are checked against the full schema, whose messages name what is
//! hidden. So the gate validates each document against the schema of the
//! caller's permission set instead: the introspection of the real schema as
//! that set sees it (the same print as `backplane schema --role`), rebuilt as
//! an async-graphql dynamic schema whose resolvers never run. async-graphql's
//! own validator then answers, rule for rule as it would for the real schema;
//! what the caller may not see simply does not exist there, so its errors are
//! those of a name that never existed — count, order, messages, locations.
//!
//! One schema per distinct permission set, built on first use and kept for
//! the process's life (at most 2⁹ sets; in practice a handful of roles and
//! scope sets). The policy and the schema change only with a new binary.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use async_graphql::dynamic::{
    self, Enum, Field, FieldFuture, InputObject, InputValue, Interface, InterfaceField, Object,
    Scalar, TypeRef, Union,
};
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::{Request, Response, ServerError, Value};

use super::BackplaneSchema;
use super::visibility::TypeMap;
use crate::identity::Principal;
use crate::policy::Permission;

/// The schema one permission set sees: its type map (for limits) and a
/// validator.
pub struct RoleSchema {
    /// The caller's types and fields, for measuring documents.
    pub types: TypeMap,
    validator: dynamic::Schema,
    /// Documents (by the audit record's document hash and operation name)
    /// found valid here: a script or an admin page sends the same few over
    /// and over. Only this permission set's verdicts are kept here. Variable
    /// values are not part of the key: what they can break (a value of a
    /// visible type) the executor's own validation and coercion still check.
    valid: Mutex<HashSet<String>>,
}

/// Most documents remembered as valid per permission set (the set starts
/// over when full).
const MAX_VALID: usize = 10_000;

/// Why a role set's schema could not be built (a policy that makes a visible
/// field return a hidden type, say). Requests of that set are refused.
#[derive(Debug, thiserror::Error)]
#[error("the schema of permissions {permissions} could not be built: {reason}")]
pub struct RoleSchemaError {
    permissions: String,
    reason: String,
}

impl RoleSchema {
    /// The schema `sdl` describes (as `role_sdl` prints it).
    pub fn from_sdl(sdl: &str) -> Result<Self, String> {
        let types = TypeMap::from_sdl(sdl)?;
        let document = async_graphql::parser::parse_schema(sdl).map_err(|e| e.to_string())?;
        let mut query = "Query".to_owned();
        let mut mutation = None;
        let mut registered: Vec<dynamic::Type> = Vec::new();
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    if let Some(q) = schema.node.query {
                        query = q.node.to_string();
                    }
                    mutation = schema.node.mutation.map(|m| m.node.to_string());
                }
                TypeSystemDefinition::Directive(_) => {}
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let name = ty.name.node.to_string();
                    registered.push(match ty.kind {
                        TypeKind::Scalar => Scalar::new(name).into(),
                        TypeKind::Enum(e) => Enum::new(name)
                            .items(e.values.iter().map(|v| v.node.value.node.to_string()))
                            .into(),
                        TypeKind::Union(u) => u
                            .members
                            .iter()
                            .fold(Union::new(name), |u, m| u.possible_type(m.node.to_string()))
                            .into(),
                        TypeKind::InputObject(input) => {
                            let oneof = ty.directives.iter().any(|d| d.node.name.node == "oneOf");
                            let mut object = input
                                .fields
                                .iter()
                                .fold(InputObject::new(name), |o, f| o.field(input_value(&f.node)));
                            if oneof {
                                object = object.oneof();
                            }
                            object.into()
                        }
                        TypeKind::Object(object) => {
                            let mut o = Object::new(name);
                            for interface in &object.implements {
                                o = o.implement(interface.node.to_string());
                            }
                            for f in &object.fields {
                                let f = &f.node;
                                let field = Field::new(
                                    f.name.node.to_string(),
                                    type_ref(&f.ty.node),
                                    // Never called: the validator stops before execution.
                                    |_| FieldFuture::new(async { Ok(None::<dynamic::FieldValue>) }),
                                );
                                o =
                                    o.field(f.arguments.iter().fold(field, |field, a| {
                                        field.argument(input_value(&a.node))
                                    }));
                            }
                            o.into()
                        }
                        TypeKind::Interface(interface) => {
                            let mut i = Interface::new(name);
                            for parent in &interface.implements {
                                i = i.implement(parent.node.to_string());
                            }
                            for f in &interface.fields {
                                let f = &f.node;
                                let field = InterfaceField::new(
                                    f.name.node.to_string(),
                                    type_ref(&f.ty.node),
                                );
                                i =
                                    i.field(f.arguments.iter().fold(field, |field, a| {
                                        field.argument(input_value(&a.node))
                                    }));
                            }
                            i.into()
                        }
                    });
                }
            }
        }
        let builder = registered
            .into_iter()
            .fold(
                dynamic::Schema::build(&query, mutation.as_deref(), None),
                |b, t| b.register(t),
            )
            // Suggestions would be drawn from this set's names only, but the
            // real schema gives none either: both answer alike.
            .disable_suggestions()
            .extension(ValidateOnly);
        let validator = builder.finish().map_err(|e| e.0)?;
        Ok(Self {
            types,
            validator,
            valid: Mutex::new(HashSet::new()),
        })
    }

    /// async-graphql's validation errors for `document` against this schema
    /// (none when it is valid here). `key` names the document and operation.
    pub async fn validate(
        &self,
        request: &Request,
        document: &ExecutableDocument,
        key: &str,
    ) -> Vec<ServerError> {
        let known = |valid: &HashSet<String>| valid.contains(key);
        if self.valid.lock().is_ok_and(|v| known(&v)) {
            return Vec::new();
        }
        let mut check = Request::new(request.query.clone()).variables(request.variables.clone());
        if let Some(name) = &request.operation_name {
            check = check.operation_name(name.clone());
        }
        check.set_parsed_query(document.clone());
        let errors = self.validator.execute(check).await.errors;
        if errors.is_empty()
            && let Ok(mut valid) = self.valid.lock()
        {
            if valid.len() >= MAX_VALID {
                valid.clear();
            }
            valid.insert(key.to_owned());
        }
        errors
    }
}

fn type_ref(ty: &Type) -> TypeRef {
    let base = match &ty.base {
        BaseType::Named(name) => TypeRef::Named(name.to_string().into()),
        BaseType::List(inner) => TypeRef::List(Box::new(type_ref(inner))),
    };
    if ty.nullable {
        base
    } else {
        TypeRef::NonNull(Box::new(base))
    }
}

fn input_value(definition: &async_graphql::parser::types::InputValueDefinition) -> InputValue {
    let value = InputValue::new(
        definition.name.node.to_string(),
        type_ref(&definition.ty.node),
    );
    match &definition.default_value {
        Some(default) => value.default_value(default.node.clone()),
        None => value,
    }
}

/// Stops a request after validation: the validator's resolvers never run.
struct ValidateOnly;

impl ExtensionFactory for ValidateOnly {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ValidateOnlyExtension)
    }
}

struct ValidateOnlyExtension;

#[async_trait::async_trait]
impl Extension for ValidateOnlyExtension {
    async fn execute(
        &self,
        _ctx: &ExtensionContext<'_>,
        _operation_name: Option<&str>,
        _next: NextExecute<'_>,
    ) -> Response {
        Response::new(Value::Null)
    }
}

/// The schemas of the permission sets seen so far.
#[derive(Default)]
pub struct RoleSchemas {
    built: RwLock<HashMap<BTreeSet<Permission>, Arc<RoleSchema>>>,
}

impl RoleSchemas {
    /// The schema `principal`'s permissions see, built on first use from the
    /// introspection of `schema` as a caller with exactly those permissions.
    pub async fn of(
        &self,
        schema: &BackplaneSchema,
        principal: &Principal,
    ) -> Result<Arc<RoleSchema>, RoleSchemaError> {
        let permissions = principal.permissions();
        if let Some(known) = self
            .built
            .read()
            .ok()
            .and_then(|b| b.get(&permissions).cloned())
        {
            return Ok(known);
        }
        let built = Arc::new(build(schema, &permissions).await?);
        if let Ok(mut all) = self.built.write() {
            all.insert(permissions, built.clone());
        }
        Ok(built)
    }
}

/// The schema of `permissions`, from the real schema's introspection.
pub async fn build(
    schema: &BackplaneSchema,
    permissions: &BTreeSet<Permission>,
) -> Result<RoleSchema, RoleSchemaError> {
    let failed = |reason: String| RoleSchemaError {
        permissions: permissions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(","),
        reason,
    };
    let sdl = super::role_sdl::sdl_for_permissions(schema, permissions)
        .await
        .map_err(|e| failed(e.to_string()))?;
    RoleSchema::from_sdl(&sdl).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subset of the permissions, generated from the policy's own list:
    /// each builds (no visible field returns a hidden type) and its validator
    /// knows exactly the fields its introspection lists.
    #[tokio::test]
    async fn every_permission_set_has_a_schema_that_builds() {
        let schema = crate::graphql::build_schema(None, Default::default(), Default::default());
        let all = Permission::ALL;
        let sets: BTreeSet<BTreeSet<Permission>> = (0u32..(1 << all.len()))
            .map(|mask| {
                let set: BTreeSet<Permission> = all
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, p)| *p)
                    .collect();
                crate::policy::effective(&set)
            })
            .collect();
        for set in sets {
            if let Err(err) = build(&schema, &set).await {
                panic!("{err}");
            }
        }
    }
}
