//! Backplane's database migrations.
//!
//! Append-only: an applied migration is never edited; a change to the schema is a
//! new migration with its own `up` and `down`. Every migration runs on SQLite and
//! PostgreSQL alike, so it is written with sea-query's portable builders.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261122_000002_idempotency;
mod m20261123_000003_audit_chain_links;
mod m20261202_000004_business_operations;
mod m20261202_000005_audit_prunes;
mod m20261203_000006_ticket_priority_order;

/// Runs the migrations in order; `backplane migrate` and every start-up call it.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261122_000002_idempotency::Migration),
            Box::new(m20261123_000003_audit_chain_links::Migration),
            Box::new(m20261202_000004_business_operations::Migration),
            Box::new(m20261202_000005_audit_prunes::Migration),
            Box::new(m20261203_000006_ticket_priority_order::Migration),
        ]
    }
}
