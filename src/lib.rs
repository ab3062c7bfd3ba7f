//! Backplane: the internal GraphQL data layer.
//!
//! Data flows one way: `http` → `identity` → `graphql` → (`policy`, `domain`) →
//! `store`. Nothing below imports from above it.

/// Build, bind, serve, shut down gracefully.
pub mod app;
/// The audit log: each operation's record, the writer.
pub mod audit;
/// The command line: every flag has a `BACKPLANE_…` variable.
pub mod cli;
/// Typed configuration, validated once.
pub mod config;
/// Business operations: the bulk engine and its rules.
pub mod domain;
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
