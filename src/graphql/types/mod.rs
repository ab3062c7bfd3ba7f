//! One module per domain: the GraphQL object types, their inputs and enums, and
//! the explicit mapping from store rows.

pub mod audit;
pub mod billing;
pub mod organization;
pub mod staff;
pub mod support;
pub mod user;

use async_graphql::Context;

use super::pagination::{Ordering, page_request};
use crate::store::loaders::{ChildPage, ChildRelation, StoreLoader};
use crate::store::page::Page;

/// Maps a store enum to its GraphQL mirror and back, variant by variant, so that
/// neither can change without the other noticing at compile time.
macro_rules! mirror_enum {
    ($(#[$doc:meta])* $name:ident <=> $store:path, visible = $visible:literal { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
        #[graphql(visible = $visible)]
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
/// DataLoader: every parent of the level shares one statement.
pub(crate) async fn child_page<R: ChildRelation>(
    ctx: &Context<'_>,
    parent: i64,
    first: Option<i32>,
    after: Option<String>,
    ordering: &Ordering,
) -> async_graphql::Result<Page<R::Model>>
where
    StoreLoader: async_graphql::dataloader::Loader<
            ChildPage<R>,
            Value = Page<R::Model>,
            Error = crate::store::loaders::LoadError,
        >,
{
    let req = page_request(ctx, first, after.as_deref(), ordering)?;
    let with_total = req.with_total;
    let page = super::loader(ctx)?
        .load_one(ChildPage::<R>::new(parent, req))
        .await
        .map_err(super::error::ApiError::from)?;
    Ok(page.unwrap_or_else(|| Page::empty(with_total)))
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
