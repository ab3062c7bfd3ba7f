//! Tickets sorted by urgency (`orderBy: PRIORITY_DESC`, the queue an admin
//! page shows) rank each priority rather than sort its name: an index on the
//! same rank expression, then the id, serves that order and its keyset pages
//! instead of a sort of every ticket. The expression is the one the store
//! writes (`store::page::Sort::term`, over `catalog::TICKET_PRIORITIES`); both
//! PostgreSQL and SQLite use an expression index when a query's expression
//! is the same.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_support_tickets_priority_rank";

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX {INDEX} ON support_tickets \
                 ((CASE \"priority\" WHEN 'LOW' THEN 0 WHEN 'NORMAL' THEN 1 WHEN 'HIGH' THEN 2 WHEN 'URGENT' THEN 3 END), \"id\")"
            ))
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP INDEX {INDEX}"))
            .await
            .map(|_| ())
    }
}
