//! The GraphQL schema: building it, exporting its SDL, and the per-request data
//! resolvers read (the caller and the DataLoader).

pub mod admission;
pub mod budget;
pub mod compiled;
pub mod described;
pub mod error;
pub mod filter;
pub mod gate;
pub mod guard;
pub mod ids;
pub mod limits;
pub mod mutation;
pub mod operations;
pub mod pagination;
pub mod query;
pub mod role_schema;
pub mod role_sdl;
pub mod types;
pub mod visibility;

use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, SDLExportOptions, Schema};

use crate::domain::bulk::BulkLimits;
use crate::identity::Principal;
use crate::store::Store;
use crate::store::batch::Batcher;
use crate::store::loaders::StoreLoader;
use error::{ApiError, Code};

pub use mutation::Mutation;
pub use query::Query;

/// The schema type.
pub type BackplaneSchema =
    Schema<described::CatalogRoot<Query>, described::CatalogRoot<Mutation>, EmptySubscription>;

/// Builds the schema. `store` is absent only when the schema is built to print
/// it. The schema registers no async-graphql extension (see `gate`): requests
/// reach it through [`gate::Gate`], which checks limits and visibility and
/// audits. Its cursors are sealed with this process's key; a server uses
/// [`build_serving_schema`] with the configured one.
pub fn build_schema(
    store: Option<Store>,
    bulk: BulkLimits,
    limits: limits::Limits,
) -> BackplaneSchema {
    build_serving_schema(store, bulk, limits, pagination::Cursors::of_this_process())
}

/// [`build_schema`], with the cursors that seal and open this server's
/// pagination cursors.
pub fn build_serving_schema(
    store: Option<Store>,
    bulk: BulkLimits,
    limits: limits::Limits,
    cursors: pagination::Cursors,
) -> BackplaneSchema {
    let mut builder = Schema::build(
        described::CatalogRoot(Query),
        described::CatalogRoot(Mutation),
        EmptySubscription,
    )
    // Suggestions are built from every field, hidden ones too: they would name
    // what a role may not see.
    .disable_suggestions()
    .data(cursors);
    if let Some(store) = store {
        builder = builder.data(store);
    }
    builder
        .data(bulk)
        .data(limits)
        // async-graphql's own: nesting of selections, and of values and
        // selections while parsing (a deeply nested value must not exhaust the
        // stack).
        .limit_depth(limits.max_depth())
        .limit_recursive_depth(64)
        .finish()
}

/// The SDL, sorted so that diffs show real changes only.
pub fn sdl(schema: &BackplaneSchema) -> String {
    schema.sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}

/// Per-request data: who calls and the request's DataLoader.
pub fn request_data(store: &Store, principal: Principal) -> (Principal, RequestLoader) {
    let loader = Batcher::new(StoreLoader::new(store.clone()));
    (principal, Arc::new(loader))
}

/// The DataLoader of one HTTP request, shared by the operations of a batch.
pub type RequestLoader = Arc<Batcher<StoreLoader>>;

/// A resolver did not find `what` in the GraphQL context: a bug of ours.
fn missing(what: &'static str) -> async_graphql::Error {
    ApiError::MissingContext(what).into()
}

/// The request's DataLoader.
pub fn loader<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Batcher<StoreLoader>> {
    ctx.data::<RequestLoader>()
        .map(|l| l.as_ref())
        .map_err(|_| missing("loader"))
}

/// The pool, for root queries that are not relations.
pub fn store<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Store> {
    ctx.data::<Store>().map_err(|_| missing("store"))
}

/// The authenticated caller.
pub fn principal<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    ctx.data::<Principal>().map_err(|_| {
        async_graphql::Error::new("authentication required")
            .extend_with(|_, e| e.set("code", Code::Unauthenticated.as_str()))
    })
}

use async_graphql::ErrorExtensions;
