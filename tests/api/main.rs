//! Backplane's integration tests: one binary, the real stack (HTTP on loopback,
//! SQLite files and PostgreSQL databases, a test OIDC issuer with real keys).

mod helpers;

mod access;
mod audit;
mod authentication;
mod bulk;
mod business;
mod catalog;
mod compiled;
mod errors;
mod exports;
mod failures;
mod fair_use;
mod filters;
mod hidden_schema;
mod http;
mod limits;
mod network;
mod operations;
mod pagination;
mod playground;
mod refusals;
mod schema;
mod service_identities;
mod sessions;
mod sign_in;
mod snapshots;
mod statements;
mod step_up;
mod tls;
