//! Business operations: a `version` on every entity that changes (raised by
//! every change, single or bulk, for optimistic concurrency), what trials,
//! payments and credits need, credit notes, and the audit log's index of
//! which records and fields each change touched (the history reads it).
//!
//! `audit_changes` holds no values: what changed, before and after, is in the
//! hash-chained audit event (`details`); this table only says which events
//! touched which record's which field, and can be rebuilt from the events.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `version INTEGER NOT NULL DEFAULT 1` on these tables.
const VERSIONED: [&str; 4] = [
    "organizations",
    "subscriptions",
    "invoices",
    "support_tickets",
];

fn add_column(table: &str, column: ColumnDef) -> TableAlterStatement {
    Table::alter()
        .table(Alias::new(table))
        .add_column(column)
        .to_owned()
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for table in VERSIONED {
            manager
                .alter_table(add_column(
                    table,
                    ColumnDef::new(Alias::new("version"))
                        .big_integer()
                        .not_null()
                        .default(1)
                        .to_owned(),
                ))
                .await?;
        }
        manager
            .alter_table(add_column(
                "organizations",
                ColumnDef::new(Alias::new("trial_ends_at"))
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
            ))
            .await?;
        manager
            .alter_table(add_column(
                "organizations",
                ColumnDef::new(Alias::new("trial_extension_days"))
                    .big_integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
            ))
            .await?;
        manager
            .alter_table(add_column(
                "invoices",
                ColumnDef::new(Alias::new("payment_reference"))
                    .string()
                    .null()
                    .to_owned(),
            ))
            .await?;
        manager
            .alter_table(add_column(
                "invoices",
                ColumnDef::new(Alias::new("credited_cents"))
                    .big_integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CreditNotes::Table)
                    .col(
                        ColumnDef::new(CreditNotes::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CreditNotes::InvoiceId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditNotes::AmountCents)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CreditNotes::Reason).text().not_null())
                    .col(
                        ColumnDef::new(CreditNotes::IssuedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CreditNotes::IssuedBy).string().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(CreditNotes::Table, CreditNotes::InvoiceId)
                            .to(Alias::new("invoices"), Alias::new("id")),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_credit_notes_invoice")
                    .table(CreditNotes::Table)
                    .col(CreditNotes::InvoiceId)
                    .col(CreditNotes::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditChanges::Table)
                    .col(
                        ColumnDef::new(AuditChanges::EventId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditChanges::Entity).string().not_null())
                    .col(
                        ColumnDef::new(AuditChanges::RecordId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditChanges::Field).string().not_null())
                    .primary_key(
                        Index::create()
                            .col(AuditChanges::Entity)
                            .col(AuditChanges::RecordId)
                            .col(AuditChanges::EventId)
                            .col(AuditChanges::Field),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_changes_event")
                    .table(AuditChanges::Table)
                    .col(AuditChanges::EventId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditChanges::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(CreditNotes::Table).to_owned())
            .await?;
        let mut drops: Vec<(&str, &str)> = VERSIONED.iter().map(|t| (*t, "version")).collect();
        drops.extend([
            ("organizations", "trial_ends_at"),
            ("organizations", "trial_extension_days"),
            ("invoices", "payment_reference"),
            ("invoices", "credited_cents"),
        ]);
        for (table, column) in drops {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum CreditNotes {
    Table,
    Id,
    InvoiceId,
    AmountCents,
    Reason,
    IssuedAt,
    IssuedBy,
}

#[derive(DeriveIden)]
enum AuditChanges {
    Table,
    EventId,
    Entity,
    RecordId,
    Field,
}
