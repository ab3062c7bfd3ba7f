//! Pruning the audit log: each prune removes the oldest events up to a row
//! and records that row's id and hash here, so that the chain that remains
//! still verifies (its first row follows that hash). A signed checkpoint of
//! the same row, outside the database, vouches for it
//! (`backplane audit verify --checkpoints`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditPrunes {
    Table,
    Id,
    ThroughId,
    ThroughHash,
    Before,
    Rows,
    PrunedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditPrunes::Table)
                    .col(
                        ColumnDef::new(AuditPrunes::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuditPrunes::ThroughId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditPrunes::ThroughHash).string().not_null())
                    .col(
                        ColumnDef::new(AuditPrunes::Before)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditPrunes::Rows).big_integer().not_null())
                    .col(
                        ColumnDef::new(AuditPrunes::PrunedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditPrunes::Table).to_owned())
            .await
    }
}
