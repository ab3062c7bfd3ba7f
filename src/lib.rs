//! Backplane: the internal GraphQL data layer.
//!
//! Data flows one way: `http` → `identity` → `graphql` → (`policy`, `domain`) →
//! `store`, each reading the `catalog`. Nothing below imports from above it.

/// Build, bind, serve, shut down gracefully.
pub mod app;
/// The audit log: each operation's record, the writer.
pub mod audit;
/// The catalog: one description of the domain (entities, fields and their
/// classes, relations, orderings) that the schema, guards, loaders and
/// compiled SQL derive from.
pub mod catalog;
/// The command line: every flag has a `BACKPLANE_…` variable.
pub mod cli;
/// Typed configuration, validated once.
pub mod config;
/// Business operations: the bulk engine and its rules.
pub mod domain;
pub mod export;
/// The GraphQL schema: types, loaders wiring, errors, pagination.
pub mod graphql;
/// The Router and its layers: /graphql, /playground, health.
pub mod http;
/// Who is calling: bearer tokens → `Principal`.
pub mod identity;

pub mod metrics;
/// The role matrix.
pub mod policy;
/// Data access: pool, entities, loaders, queries, seed.
pub mod store;
/// Logs and metrics.
pub mod telemetry;
