//! Idempotency keys of bulk mutations: a replay with the same key and input
//! returns the first result instead of changing anything again.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(
                        ColumnDef::new(IdempotencyKeys::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::Principal)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyKeys::Key).string().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKeys::Operation)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::RequestHash)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyKeys::Result).text().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_idempotency_keys_principal_key")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::Principal)
                    .col(IdempotencyKeys::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_idempotency_keys_expires")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    Id,
    Principal,
    Key,
    Operation,
    RequestHash,
    Result,
    CreatedAt,
    ExpiresAt,
}
