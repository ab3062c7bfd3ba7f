//! The schema as the catalog describes it.
//!
//! Three pieces turn the catalog (`crate::catalog`) into async-graphql's
//! code-first schema, so that nothing the catalog says is written again:
//!
//! - [`Columns`]: the column fields of an entity. Each entity's `#[Object]`
//!   flattens one (`#[graphql(flatten)]`), which declares every column field
//!   of the catalog with its type and nullability, and resolves it from the
//!   sea-orm row by column name, after checking the field's permission (the
//!   second wall behind the gate's role validation) and noting an audited
//!   read in the operation's audit record.
//! - [`FromCatalog`]: the guard of the fields written as resolvers
//!   (relations, root lookups and lists): the permission comes from the
//!   catalog, from the field's name.
//! - [`CatalogRoot`]: wraps the query root; when async-graphql builds the
//!   registry it sets every catalog type's and field's description and
//!   visibility from the catalog. The role schemas, introspection and the
//!   printed SDL read the registry, so each role's view follows the catalog.
//!
//! async-graphql's registry is the crate's own (hidden from its docs but
//! public); the pinned version is the one this is written against, and the
//! tests check the result (every catalog field is in the schema with the
//! catalog's type, every role sees exactly what the catalog grants).

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::Field as GqlField;
use async_graphql::registry::{Deprecation, MetaField, MetaType, MetaTypeId, Registry};
use async_graphql::resolver_utils::ContainerType;
use async_graphql::{
    Context, ContextSelectionSet, ObjectType, OutputType, Positioned, ServerResult, Value,
};
use sea_orm::ModelTrait;

use super::error::ApiError;
use crate::catalog::{self, Need, Scalar, Source};
use crate::policy::Permission;

/// A GraphQL object type over a catalog entity's row.
pub trait Described: Send + Sync {
    /// Its catalog entity's name (the GraphQL type's).
    const ENTITY: &'static str;
    type Model: ModelTrait + Send + Sync;

    /// The row.
    fn model(&self) -> &Self::Model;

    /// Registers the GraphQL types its columns use (its enums).
    fn register_types(registry: &mut Registry);
}

/// Implements [`Described`] for a GraphQL object type over a sea-orm row,
/// registering the enums its columns use.
macro_rules! described {
    ($ty:ty, $entity:literal, $model:ty $(, $enum:ty)* $(,)?) => {
        impl $crate::graphql::described::Described for $ty {
            const ENTITY: &'static str = $entity;
            type Model = $model;

            fn model(&self) -> &Self::Model {
                &self.0
            }

            fn register_types(_registry: &mut async_graphql::registry::Registry) {
                $(<$enum as async_graphql::OutputType>::create_type_info(_registry);)*
            }
        }

        impl From<$model> for $ty {
            fn from(row: $model) -> Self {
                Self(row)
            }
        }
    };
}
pub(crate) use described;

/// Makes `$ty`, a [`Described`] type whose fields are all columns, a GraphQL
/// object of those fields alone (`InternalFlags`: an `#[Object]` needs one
/// field of its own).
macro_rules! columns_only {
    ($ty:ty) => {
        impl async_graphql::OutputType for $ty {
            fn type_name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(<$ty as $crate::graphql::described::Described>::ENTITY)
            }

            fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
                $crate::graphql::described::register_columns_object::<$ty>(registry)
            }

            async fn resolve(
                &self,
                ctx: &async_graphql::ContextSelectionSet<'_>,
                _field: &async_graphql::Positioned<async_graphql::parser::types::Field>,
            ) -> async_graphql::ServerResult<async_graphql::Value> {
                async_graphql::resolver_utils::resolve_container(ctx, self).await
            }
        }

        impl async_graphql::resolver_utils::ContainerType for $ty {
            async fn resolve_field(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::ServerResult<Option<async_graphql::Value>> {
                async_graphql::resolver_utils::ContainerType::resolve_field(
                    &$crate::graphql::described::Columns(self),
                    ctx,
                )
                .await
            }
        }

        impl async_graphql::ObjectType for $ty {}
    };
}
pub(crate) use columns_only;

/// Registers `T` as an object of its catalog entity's column fields.
pub fn register_columns_object<T: Described + OutputType>(registry: &mut Registry) -> String {
    T::register_types(registry);
    registry.create_output_type::<T, _>(MetaTypeId::Object, |_| {
        object_type(T::ENTITY.to_owned(), column_fields(T::ENTITY))
    })
}

/// The column fields of a catalog entity, as the registry holds fields.
fn column_fields(entity: &str) -> IndexMap<String, MetaField> {
    catalog::expect_entity(entity)
        .fields()
        .filter_map(|f| Some((f.name.to_owned(), meta_field(f.name, f.column_type()?))))
        .collect()
}

/// The column fields of `T`'s catalog entity, flattened into `T`'s object.
pub struct Columns<'a, T>(pub &'a T);

impl<T: Described> OutputType for Columns<'_, T> {
    fn type_name() -> Cow<'static, str> {
        // Never referenced by a field, so removed from the schema once the
        // object that flattens it has copied its fields.
        Cow::Owned(format!("{}Columns", T::ENTITY))
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::register_types(registry);
        registry.create_output_type::<Self, _>(MetaTypeId::Object, |_| {
            object_type(Self::type_name().into_owned(), column_fields(T::ENTITY))
        })
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<GqlField>,
    ) -> ServerResult<Value> {
        async_graphql::resolver_utils::resolve_container(ctx, self).await
    }
}

impl<T: Described> ContainerType for Columns<'_, T> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        let entity = catalog::expect_entity(T::ENTITY);
        let name = ctx.item.node.name.node.as_str();
        let Some(field) = entity.field(name) else {
            return Ok(None);
        };
        let Source::Column {
            column,
            scalar,
            nullable,
        } = field.source
        else {
            return Ok(None);
        };
        allowed_field(ctx, entity, field)
            .map_err(|e| ctx.set_error_path(e.into_server_error(ctx.item.pos)))?;
        let value = crate::store::page::column_value(self.0.model(), column)
            .and_then(|v| graphql_value(v, scalar, entity.id_prefix))
            .filter(|v| nullable || *v != Value::Null);
        match value {
            Some(value) => Ok(Some(value)),
            None => {
                tracing::error!(
                    graphql.field = %format_args!("{}.{}", entity.name, name),
                    "a column's value does not fit its catalog type"
                );
                Err(ctx.set_error_path(super::error::internal_error()))
            }
        }
    }
}

/// The guard of a catalog field written as a resolver (a relation, a root
/// field of `Query`): the caller holds what the catalog says the field needs,
/// and an audited field's read is noted. `FromCatalog("Organization")` on
/// `Organization`'s resolvers, `FromCatalog("Query")` on the roots.
pub struct FromCatalog(pub &'static str);

impl async_graphql::Guard for FromCatalog {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        allowed(ctx, self.0, ctx.item.node.name.node.as_str())
    }
}

/// Whether the caller may read `entity.field`, a root field of `Query`
/// included (a FORBIDDEN error naming the missing permission when not; a
/// field the catalog does not know is refused); notes an audited read.
fn allowed(ctx: &Context<'_>, entity: &str, field: &str) -> async_graphql::Result<()> {
    if entity == "Query"
        && let Some(read) = catalog::root_needs(field)
    {
        return allow(ctx, entity, field, Need::One(read), false);
    }
    match catalog::entity(entity).and_then(|e| Some((e, e.field(field)?))) {
        Some((entity, field)) => allowed_field(ctx, entity, field),
        None => Err(ApiError::Forbidden("read a field the catalog does not describe").into()),
    }
}

/// [`allowed`] for a field already looked up.
fn allowed_field(
    ctx: &Context<'_>,
    entity: &catalog::Entity,
    field: &catalog::Field,
) -> async_graphql::Result<()> {
    let need = catalog::needs_of(entity, field);
    allow(ctx, entity.name, field.name, need, field.class.audited())
}

fn allow(
    ctx: &Context<'_>,
    entity: &str,
    field: &str,
    need: Need,
    audited: bool,
) -> async_graphql::Result<()> {
    if let Some(missing) = need.missing(|p| super::guard::can(ctx, p)) {
        return Err(ApiError::Forbidden(missing.as_str()).into());
    }
    if audited && let Some(operation) = crate::audit::operation(ctx) {
        operation.sensitive(&format!("{entity}.{field}"));
    }
    Ok(())
}

/// A column's value as the GraphQL value of its catalog type; `None` when it
/// does not fit.
fn graphql_value(value: sea_orm::Value, scalar: Scalar, prefix: Option<&str>) -> Option<Value> {
    use sea_orm::Value as V;
    Some(match (scalar, value) {
        (_, V::String(None) | V::BigInt(None) | V::Int(None) | V::Bool(None)) => Value::Null,
        (_, V::ChronoDateTimeUtc(None)) => Value::Null,
        (Scalar::Id, V::BigInt(Some(id))) => Value::String(format!("{}_{id}", prefix?)),
        (Scalar::Text, V::String(Some(text))) => Value::String(text),
        (Scalar::Int, V::BigInt(Some(n))) => Value::from(n),
        (Scalar::Int, V::Int(Some(n))) => Value::from(n),
        (Scalar::Bool, V::Bool(Some(b))) => Value::Boolean(b),
        (Scalar::Time, V::ChronoDateTimeUtc(Some(t))) => Value::String(t.to_rfc3339()),
        (Scalar::Enum(_), V::String(Some(name))) => Value::Enum(async_graphql::Name::new(name)),
        (Scalar::TextList, V::String(Some(list))) => Value::List(
            list.split(',')
                .filter(|r| !r.is_empty())
                .map(|r| Value::String(r.to_owned()))
                .collect(),
        ),
        _ => return None,
    })
}

/// A field of type `ty` with nothing else set (the catalog's description and
/// visibility are set on the whole registry by [`CatalogRoot`]).
fn meta_field(name: &str, ty: String) -> MetaField {
    MetaField {
        name: name.to_owned(),
        description: None,
        args: IndexMap::new(),
        ty,
        deprecation: Deprecation::NoDeprecated,
        cache_control: Default::default(),
        external: false,
        requires: None,
        provides: None,
        visible: None,
        shareable: false,
        inaccessible: false,
        tags: Vec::new(),
        override_from: None,
        compute_complexity: None,
        directive_invocations: Vec::new(),
        requires_scopes: Vec::new(),
    }
}

fn object_type(name: String, fields: IndexMap<String, MetaField>) -> MetaType {
    MetaType::Object {
        name,
        description: None,
        fields,
        cache_control: Default::default(),
        extends: false,
        shareable: false,
        resolvable: true,
        keys: None,
        visible: None,
        inaccessible: false,
        interface_object: false,
        tags: Vec::new(),
        is_subscription: false,
        rust_typename: None,
        directive_invocations: Vec::new(),
        requires_scopes: Vec::new(),
    }
}

/// The query root, with the catalog applied to the registry it builds.
pub struct CatalogRoot<Q>(pub Q);

impl<Q: ObjectType> OutputType for CatalogRoot<Q> {
    fn type_name() -> Cow<'static, str> {
        Q::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        let name = Q::create_type_info(registry);
        apply(registry);
        name
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<GqlField>,
    ) -> ServerResult<Value> {
        self.0.resolve(ctx, field).await
    }
}

impl<Q: ObjectType> ContainerType for CatalogRoot<Q> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        self.0.resolve_field(ctx).await
    }
}

impl<Q: ObjectType> ObjectType for CatalogRoot<Q> {}

/// Who sees a type or field that needs `need` beyond what its type needs.
fn visible_fn(need: Option<Need>) -> Option<fn(&Context<'_>) -> bool> {
    use super::guard::visible;
    Some(match need? {
        Need::Everything => visible::everything,
        Need::One(p) | Need::Both(_, p) => match p {
            Permission::ReadCustomers => visible::customers,
            Permission::ReadBilling => visible::billing,
            Permission::ReadCostData => visible::cost_data,
            Permission::ReadInternalFlags => visible::internal_flags,
            Permission::ReadAuditLog => visible::audit_log,
            Permission::WriteInternalFlags => visible::write_internal_flags,
            Permission::WriteTickets => visible::write_tickets,
            Permission::WriteInvoices => visible::write_invoices,
            Permission::BulkOrganizations => visible::bulk_organizations,
            Permission::WriteOrganizations => visible::write_organizations,
            Permission::WriteTrials => visible::write_trials,
            Permission::WriteSubscriptions => visible::write_subscriptions,
        },
    })
}

/// Sets every catalog type's and field's description and visibility.
fn apply(registry: &mut Registry) {
    describe_by_name(registry);
    for entity in catalog::ENTITIES {
        let visible = visible_fn(Some(Need::One(entity.read)));
        for name in entity.types() {
            if let Some(ty) = registry.types.get_mut(name.as_ref()) {
                set_type_visible(ty, visible);
            }
        }
        let Some(MetaType::Object {
            description,
            fields,
            ..
        }) = registry.types.get_mut(entity.name)
        else {
            panic!(
                "catalog entity {} is not an object of the schema",
                entity.name
            );
        };
        *description = Some(entity.description.to_owned());
        for f in entity.fields() {
            let Some(meta) = fields.get_mut(f.name) else {
                panic!(
                    "catalog field {}.{} is not in the schema",
                    entity.name, f.name
                );
            };
            meta.description = Some(f.description.to_owned());
            meta.visible = visible_fn(catalog::extra_need(entity.name, f.name).flatten());
        }
    }
    let query = Q_NAME;
    if let Some(MetaType::Object { fields, .. }) = registry.types.get_mut(query) {
        for root in catalog::ROOTS {
            let Some(meta) = fields.get_mut(root.name) else {
                panic!("catalog root {} is not a field of Query", root.name);
            };
            meta.description = Some(root.description.to_owned());
            meta.visible = visible_fn(catalog::root_needs(root.name).map(Need::One));
        }
    }
}

/// The query root's name.
const Q_NAME: &str = "Query";

/// What an argument of this name means, wherever it appears: written once.
const ARGUMENTS: &[(&str, &str)] = &[
    (
        "first",
        "Rows wanted: default 20, at most 100 (1,000 for service identities) unless configured.",
    ),
    (
        "after",
        "Continue after this row: a `pageInfo.endCursor` (or an edge's `cursor`) of the same list and order.",
    ),
    (
        "last",
        "Rows wanted from the end (with `before`, the page before it): default 20, at most 100 (1,000 for service identities) unless configured.",
    ),
    (
        "before",
        "Continue before this row: a `pageInfo.startCursor` (or an edge's `cursor`) of the same list and order.",
    ),
    (
        "filter",
        "Which rows: every condition given must hold; an empty list in a condition matches nothing.",
    ),
    ("orderBy", "The order; ties are broken by id."),
    (
        "id",
        "The row's opaque id, as the list or another field gave it.",
    ),
    ("slug", "The organization's slug (the URL name), exactly."),
    ("email", "The user's email, case-insensitively."),
    ("input", "What to do: see the input type's fields."),
];

/// What an input field of this name means in every input that has it.
const INPUT_FIELDS: &[(&str, &str)] = &[
    ("id", "The id of the record to change."),
    (
        "ids",
        "The records to change: at most the configured maximum (10,000 by default); a repeated id counts once.",
    ),
    ("organizationId", "The organization's id."),
    ("ticketId", "The ticket's id."),
    ("invoiceId", "The invoice's id."),
    (
        "expectedVersion",
        "The record's `version` as you read it: the change is refused with `CONFLICT` (and `extensions.currentVersion`) if somebody changed it since.",
    ),
    (
        "idempotencyKey",
        "Any string unique to this change: sending the same request again with the same key returns the first answer instead of changing twice (kept for a day by default).",
    ),
    (
        "reason",
        "Why: kept in the audit log and the record's history.",
    ),
    (
        "dryRun",
        "Validate and report what would change, without changing anything.",
    ),
    (
        "mode",
        "`ALL_OR_NOTHING` (the default): nothing changes if any record cannot; `BEST_EFFORT`: change what can.",
    ),
    ("flag", "Which internal flag."),
    ("value", "Set (true) or clear (false)."),
];

/// What an output field of this name means wherever it appears.
const OUTPUT_FIELDS: &[(&str, &str)] = &[
    ("node", "The row."),
    (
        "change",
        "The change as the record's history and the audit log keep it.",
    ),
    (
        "organization",
        "The organization, as it is after the change.",
    ),
    (
        "subscription",
        "The subscription, as it is after the change.",
    ),
    ("invoice", "The invoice, as it is after the change."),
    ("ticket", "The ticket, as it is after the change."),
    ("message", "The message written."),
    ("creditNote", "The credit note issued."),
];

/// Describes, by name, every argument, input field and field the code left
/// undescribed (`first`, `after`, `expectedVersion`, a payload's `change`):
/// each such name means one thing across the schema, so its description is
/// written once, here.
fn describe_by_name(registry: &mut Registry) {
    let of = |table: &[(&str, &'static str)], name: &str| {
        table
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| (*d).to_owned())
    };
    if let Some(MetaType::Scalar { description, .. }) = registry.types.get_mut("JSON") {
        *description = Some(
            "Any JSON value, given as JSON itself (an object, a list, a string, a number, a boolean or null), not as text to parse.".to_owned(),
        );
    }
    for ty in registry.types.values_mut() {
        match ty {
            MetaType::Object { fields, .. } | MetaType::Interface { fields, .. } => {
                for (name, field) in fields.iter_mut() {
                    if field.description.is_none() {
                        field.description = of(OUTPUT_FIELDS, name);
                    }
                    for (arg, value) in field.args.iter_mut() {
                        if value.description.is_none() {
                            value.description = of(ARGUMENTS, arg);
                        }
                    }
                }
            }
            MetaType::InputObject { input_fields, .. } => {
                for (name, value) in input_fields.iter_mut() {
                    if value.description.is_none() {
                        value.description = of(INPUT_FIELDS, name);
                    }
                }
            }
            _ => {}
        }
    }
}

fn set_type_visible(ty: &mut MetaType, to: Option<fn(&Context<'_>) -> bool>) {
    match ty {
        MetaType::Object { visible, .. }
        | MetaType::InputObject { visible, .. }
        | MetaType::Enum { visible, .. }
        | MetaType::Interface { visible, .. }
        | MetaType::Union { visible, .. }
        | MetaType::Scalar { visible, .. } => *visible = to,
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::resolver_utils::EnumType;

    use super::*;
    use crate::graphql::filter::ListOrder;
    use crate::graphql::types::billing::InvoiceOrder;
    use crate::graphql::types::organization::OrganizationOrder;
    use crate::graphql::types::staff::StaffMemberOrder;
    use crate::graphql::types::support::SupportTicketOrder;
    use crate::graphql::types::user::UserOrder;

    /// The schema's type of a field of `ty`, from the printed SDL.
    fn field_types(sdl: &str) -> std::collections::HashMap<(String, String), String> {
        let doc = async_graphql::parser::parse_schema(sdl).expect("the SDL parses");
        let mut out = std::collections::HashMap::new();
        for def in doc.definitions {
            if let async_graphql::parser::types::TypeSystemDefinition::Type(ty) = def
                && let async_graphql::parser::types::TypeKind::Object(object) = &ty.node.kind
            {
                for field in &object.fields {
                    out.insert(
                        (
                            ty.node.name.node.to_string(),
                            field.node.name.node.to_string(),
                        ),
                        field.node.ty.node.to_string(),
                    );
                }
            }
        }
        out
    }

    #[test]
    fn the_schema_is_the_catalog_field_by_field() {
        let schema = crate::graphql::build_schema(None, Default::default(), Default::default());
        let types = field_types(&crate::graphql::sdl(&schema));
        for entity in catalog::ENTITIES {
            for f in entity.fields() {
                let expected = match f.source {
                    Source::Column { .. } => f.column_type().expect("a column"),
                    Source::Embedded(t)
                    | Source::ToOne {
                        target: t,
                        required: false,
                        ..
                    } => t.to_owned(),
                    Source::ToOne {
                        target: t,
                        required: true,
                        ..
                    } => format!("{t}!"),
                    Source::Many { target, .. } => format!("{target}Connection!"),
                };
                assert_eq!(
                    types.get(&(entity.name.to_owned(), f.name.to_owned())),
                    Some(&expected),
                    "{}.{}",
                    entity.name,
                    f.name
                );
            }
            // Nothing of a catalog type escapes the catalog.
            for (ty, field) in types.keys() {
                if ty == entity.name && !(entity.history && field == "history") {
                    assert!(
                        entity.field(field).is_some(),
                        "{ty}.{field} is not in the catalog"
                    );
                }
            }
        }
        // The entities that keep a history have one, and no other.
        for entity in catalog::ENTITIES {
            assert_eq!(
                types.get(&(entity.name.to_owned(), "history".to_owned())),
                entity
                    .history
                    .then(|| "ChangeConnection!".to_owned())
                    .as_ref(),
                "{}.history",
                entity.name
            );
        }
        for root in catalog::ROOTS {
            assert!(
                types.contains_key(&("Query".to_owned(), root.name.to_owned())),
                "{}",
                root.name
            );
        }
    }

    fn orders_match<E: EnumType + PartialEq + Copy>(
        entity: &str,
        ordering: impl Fn(E) -> catalog::Ordering,
    ) {
        let entity = catalog::expect_entity(entity);
        let values: Vec<&str> = E::items().iter().map(|i| i.name).collect();
        let described: Vec<&str> = entity.orderings.iter().map(|(v, _)| *v).collect();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let mut described_sorted = described.clone();
        described_sorted.sort_unstable();
        assert_eq!(sorted, described_sorted, "{}", entity.name);
        for item in E::items() {
            assert_eq!(Some(ordering(item.value)), entity.ordering(item.name));
        }
    }

    #[test]
    fn every_order_enum_value_is_an_ordering_of_the_catalog() {
        orders_match::<OrganizationOrder>("Organization", OrganizationOrder::ordering);
        orders_match::<UserOrder>("User", UserOrder::ordering);
        orders_match::<InvoiceOrder>("Invoice", InvoiceOrder::ordering);
        orders_match::<SupportTicketOrder>("SupportTicket", SupportTicketOrder::ordering);
        orders_match::<StaffMemberOrder>("StaffMember", StaffMemberOrder::ordering);
    }

    /// A cursor holds the sort column's value: every ordering sorts by a
    /// text or instant column of its entity (what `Keyset::of` reads).
    #[test]
    fn every_catalog_ordering_sorts_by_a_text_or_instant_column_of_its_entity() {
        for entity in catalog::ENTITIES {
            for ordering in entity.every_ordering() {
                let Some(column) = ordering.sort.column else {
                    continue;
                };
                let scalar = entity.fields().find_map(|f| match f.source {
                    Source::Column {
                        column: c, scalar, ..
                    } if c == column => Some(scalar),
                    _ => None,
                });
                // An enum column sorts by its rank, and its cursor holds the
                // value's name.
                let ranked =
                    ordering.sort.rank.is_some() && matches!(scalar, Some(Scalar::Enum(_)));
                assert!(
                    ranked || matches!(scalar, Some(Scalar::Text | Scalar::Time)),
                    "{} sorts {} by {column}",
                    ordering.tag,
                    entity.name
                );
            }
        }
    }
}
