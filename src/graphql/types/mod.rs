//! One module per domain: the GraphQL object types, their inputs and enums, and
//! the explicit mapping from store rows.

pub mod audit;
pub mod billing;
pub mod history;
pub mod node;
pub mod organization;
pub mod staff;
pub mod support;
pub mod user;

use async_graphql::Context;

use super::pagination::{Ordering, in_order, relay_request};
use crate::store::loaders::{ChildPage, ChildRelation, StoreLoader};
use crate::store::page::Page;

/// Maps a store enum to its GraphQL mirror and back, variant by variant, so that
/// neither can change without the other noticing at compile time.
macro_rules! mirror_enum {
    // An enum of a catalog column: visible with its entity (`described`).
    ($(#[$doc:meta])* $name:ident <=> $store:path { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        mirror_enum!(@ $(#[$doc])* $name <=> $store, [] { $($(#[$vdoc])* $variant),+ });
    };
    ($(#[$doc:meta])* $name:ident <=> $store:path, visible = $visible:literal { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        mirror_enum!(@ $(#[$doc])* $name <=> $store, [visible = $visible] { $($(#[$vdoc])* $variant),+ });
    };
    (@ $(#[$doc:meta])* $name:ident <=> $store:path, [$($args:tt)*] { $($(#[$vdoc:meta])* $variant:ident),+ }) => {
        $(#[$doc])*
        #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
        #[graphql($($args)*)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl From<$store> for $name {
            fn from(v: $store) -> Self {
                use $store as S;
                match v {
                    $(S::$variant => $name::$variant),+
                }
            }
        }

        impl From<$name> for $store {
            fn from(v: $name) -> Self {
                use $store as S;
                match v {
                    $($name::$variant => S::$variant),+
                }
            }
        }
    };
}
pub(crate) use mirror_enum;

/// Loads one parent's page of a one-to-many relation through the request's
/// DataLoader (every parent of the level shares one statement), and the
/// relation's order (from the catalog).
pub(crate) async fn child_page<R: ChildRelation>(
    ctx: &Context<'_>,
    parent: i64,
    (first, after): (Option<i32>, Option<String>),
    (last, before): (Option<i32>, Option<String>),
) -> async_graphql::Result<(Page<R::Model>, Ordering)>
where
    StoreLoader: async_graphql::dataloader::Loader<
            ChildPage<R>,
            Value = Page<R::Model>,
            Error = crate::store::loaders::LoadError,
        >,
{
    let (_, _, ordering) = R::relation();
    let req = relay_request(
        ctx,
        (first, after.as_deref()),
        (last, before.as_deref()),
        &ordering,
    )?;
    let page = super::loader(ctx)?
        .load_one(ChildPage::<R>::new(parent, req.clone()))
        .await
        .map_err(super::error::ApiError::from)?;
    let page = page.unwrap_or_else(|| Page::empty(req.with_total));
    Ok((in_order(page, &req), ordering))
}

/// The ordering a value of an entity's order enum stands for, from the
/// catalog (a test holds every enum value to a catalog ordering).
pub(crate) fn ordering_of<E: async_graphql::resolver_utils::EnumType + PartialEq + Copy>(
    entity: &str,
    value: E,
) -> Ordering {
    let name = E::items()
        .iter()
        .find(|item| item.value == value)
        .map(|item| item.name)
        .unwrap_or_default();
    let entity = crate::catalog::expect_entity(entity);
    entity.ordering(name).unwrap_or_else(|| {
        panic!(
            "{name} is not an ordering of {} in the catalog",
            entity.name
        )
    })
}

/// The related row of the to-one relation this resolver answers (its field
/// name, from the request), through the column of `row` the catalog says
/// holds the related id; null when the column is.
pub(crate) async fn to_one<T, K, M, W>(
    ctx: &Context<'_>,
    row: &T,
) -> async_graphql::Result<Option<W>>
where
    T: crate::graphql::described::Described,
    K: From<i64> + Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    M: Send + Sync + Clone + 'static,
    W: From<M>,
    StoreLoader:
        async_graphql::dataloader::Loader<K, Value = M, Error = crate::store::loaders::LoadError>,
{
    let column = crate::catalog::foreign_key(T::ENTITY, ctx.item.node.name.node.as_str());
    match crate::store::page::column_value(row.model(), column) {
        Some(sea_orm::Value::BigInt(Some(id))) => {
            Ok(load_one(ctx, K::from(id)).await?.map(W::from))
        }
        _ => Ok(None),
    }
}

/// The related row of a to-one relation every row has (the catalog's
/// `required`: a non-null foreign key), as [`to_one`] finds it. Its absence
/// is a broken foreign key: an internal error, logged.
pub(crate) async fn link<T, K, M, W>(ctx: &Context<'_>, row: &T) -> async_graphql::Result<W>
where
    T: crate::graphql::described::Described,
    K: From<i64> + Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    M: Send + Sync + Clone + 'static,
    W: From<M>,
    StoreLoader:
        async_graphql::dataloader::Loader<K, Value = M, Error = crate::store::loaders::LoadError>,
{
    to_one::<T, K, M, W>(ctx, row)
        .await?
        .ok_or_else(|| super::error::ApiError::MissingContext("the row of a required link").into())
}

/// Loads one row by key through the request's DataLoader.
pub(crate) async fn load_one<K, V>(ctx: &Context<'_>, key: K) -> async_graphql::Result<Option<V>>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    V: Send + Sync + Clone + 'static,
    StoreLoader:
        async_graphql::dataloader::Loader<K, Value = V, Error = crate::store::loaders::LoadError>,
{
    Ok(super::loader(ctx)?
        .load_one(key)
        .await
        .map_err(super::error::ApiError::from)?)
}
