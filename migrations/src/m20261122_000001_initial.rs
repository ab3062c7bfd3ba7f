//! The initial schema: the company's entities, their relations, and the indexes that
//! keyset pagination and the per-request DataLoaders need.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A big-integer surrogate key. The API never shows it raw: ids are opaque strings.
fn id<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn text<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).string().not_null().to_owned()
}

fn text_null<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).string().null().to_owned()
}

fn int<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

fn flag<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .boolean()
        .not_null()
        .default(false)
        .to_owned()
}

fn time<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn time_null<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn fk<F: IntoIden, T: IntoIden>(name: &str, from: (F, F), to: (T, T)) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

fn index<T: IntoIden + Clone + 'static, C: IntoIden + Clone + 'static>(
    name: &str,
    table: T,
    cols: &[C],
    unique: bool,
) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col.clone());
    }
    if unique {
        stmt.unique();
    }
    stmt.to_owned()
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plans::Table)
                    .col(id(Plans::Id))
                    .col(text(Plans::Code))
                    .col(text(Plans::Name))
                    .col(int(Plans::PriceCents))
                    .col(text(Plans::Currency))
                    .col(int(Plans::UnitCostCents))
                    .col(time(Plans::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ux_plans_code", Plans::Table, &[Plans::Code], true))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(id(Organizations::Id))
                    .col(text(Organizations::Name))
                    .col(text(Organizations::Slug))
                    .col(text(Organizations::Status))
                    .col(text(Organizations::Region))
                    .col(int(Organizations::MonthlyCostCents))
                    .col(int(Organizations::GrossMarginBps))
                    .col(flag(Organizations::FraudReview))
                    .col(flag(Organizations::Vip))
                    .col(flag(Organizations::ChurnRisk))
                    .col(flag(Organizations::BetaAccess))
                    .col(time(Organizations::CreatedAt))
                    .col(time(Organizations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        use Organizations as O;
        manager
            .create_index(index("ux_organizations_slug", O::Table, &[O::Slug], true))
            .await?;
        manager
            .create_index(index(
                "ix_organizations_name",
                O::Table,
                &[O::Name, O::Id],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_organizations_created",
                O::Table,
                &[O::CreatedAt, O::Id],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_organizations_status",
                O::Table,
                &[O::Status, O::Id],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Subscriptions::Table)
                    .col(id(Subscriptions::Id))
                    .col(int(Subscriptions::OrganizationId))
                    .col(int(Subscriptions::PlanId))
                    .col(int(Subscriptions::Seats))
                    .col(text(Subscriptions::Status))
                    .col(time(Subscriptions::CurrentPeriodStart))
                    .col(time(Subscriptions::CurrentPeriodEnd))
                    .col(int(Subscriptions::DiscountPercent))
                    .col(time(Subscriptions::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_subscriptions_organization",
                        (Subscriptions::Table, Subscriptions::OrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_subscriptions_plan",
                        (Subscriptions::Table, Subscriptions::PlanId),
                        (Plans::Table, Plans::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // One current subscription per organization.
        manager
            .create_index(index(
                "ux_subscriptions_organization",
                Subscriptions::Table,
                &[Subscriptions::OrganizationId],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_subscriptions_plan",
                Subscriptions::Table,
                &[Subscriptions::PlanId, Subscriptions::Id],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(id(Users::Id))
                    .col(int(Users::OrganizationId))
                    .col(text(Users::Email))
                    .col(text(Users::Name))
                    .col(text(Users::OrgRole))
                    .col(text(Users::Status))
                    .col(time_null(Users::LastSeenAt))
                    .col(time(Users::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_users_organization",
                        (Users::Table, Users::OrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("ux_users_email", Users::Table, &[Users::Email], true))
            .await?;
        manager
            .create_index(index(
                "ix_users_created",
                Users::Table,
                &[Users::CreatedAt, Users::Id],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_users_organization",
                Users::Table,
                &[Users::OrganizationId, Users::Id],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invoices::Table)
                    .col(id(Invoices::Id))
                    .col(int(Invoices::OrganizationId))
                    .col(text(Invoices::Number))
                    .col(int(Invoices::AmountCents))
                    .col(text(Invoices::Currency))
                    .col(text(Invoices::Status))
                    .col(time(Invoices::IssuedAt))
                    .col(time(Invoices::DueAt))
                    .col(time_null(Invoices::PaidAt))
                    .col(int(Invoices::ProcessingFeeCents))
                    .col(time(Invoices::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_invoices_organization",
                        (Invoices::Table, Invoices::OrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ux_invoices_number",
                Invoices::Table,
                &[Invoices::Number],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_invoices_organization_issued",
                Invoices::Table,
                &[Invoices::OrganizationId, Invoices::IssuedAt, Invoices::Id],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_invoices_issued",
                Invoices::Table,
                &[Invoices::IssuedAt, Invoices::Id],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(InvoiceLines::Table)
                    .col(id(InvoiceLines::Id))
                    .col(int(InvoiceLines::InvoiceId))
                    .col(text(InvoiceLines::Description))
                    .col(int(InvoiceLines::Quantity))
                    .col(int(InvoiceLines::UnitAmountCents))
                    .col(int(InvoiceLines::AmountCents))
                    .foreign_key(&mut fk(
                        "fk_invoice_lines_invoice",
                        (InvoiceLines::Table, InvoiceLines::InvoiceId),
                        (Invoices::Table, Invoices::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_invoice_lines_invoice",
                InvoiceLines::Table,
                &[InvoiceLines::InvoiceId, InvoiceLines::Id],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(StaffMembers::Table)
                    .col(id(StaffMembers::Id))
                    .col(text(StaffMembers::Subject))
                    .col(text(StaffMembers::Email))
                    .col(text(StaffMembers::Name))
                    .col(text(StaffMembers::Roles))
                    .col(time_null(StaffMembers::LastSeenAt))
                    .col(time(StaffMembers::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ux_staff_members_subject",
                StaffMembers::Table,
                &[StaffMembers::Subject],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SupportTickets::Table)
                    .col(id(SupportTickets::Id))
                    .col(int(SupportTickets::OrganizationId))
                    .col(int(SupportTickets::RequesterId))
                    .col(
                        ColumnDef::new(SupportTickets::AssigneeId)
                            .big_integer()
                            .null(),
                    )
                    .col(text(SupportTickets::Subject))
                    .col(text(SupportTickets::Status))
                    .col(text(SupportTickets::Priority))
                    .col(text_null(SupportTickets::InternalNotes))
                    .col(time(SupportTickets::CreatedAt))
                    .col(time(SupportTickets::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_support_tickets_organization",
                        (SupportTickets::Table, SupportTickets::OrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_support_tickets_requester",
                        (SupportTickets::Table, SupportTickets::RequesterId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_support_tickets_assignee",
                        (SupportTickets::Table, SupportTickets::AssigneeId),
                        (StaffMembers::Table, StaffMembers::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ix_support_tickets_organization",
                [SupportTickets::OrganizationId, SupportTickets::CreatedAt],
            ),
            (
                "ix_support_tickets_created",
                [SupportTickets::CreatedAt, SupportTickets::Id],
            ),
            (
                "ix_support_tickets_requester",
                [SupportTickets::RequesterId, SupportTickets::Id],
            ),
            (
                "ix_support_tickets_assignee",
                [SupportTickets::AssigneeId, SupportTickets::Id],
            ),
        ] {
            manager
                .create_index(index(name, SupportTickets::Table, &cols, false))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(TicketMessages::Table)
                    .col(id(TicketMessages::Id))
                    .col(int(TicketMessages::TicketId))
                    .col(
                        ColumnDef::new(TicketMessages::AuthorUserId)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(TicketMessages::AuthorStaffId)
                            .big_integer()
                            .null(),
                    )
                    .col(text(TicketMessages::Body))
                    .col(flag(TicketMessages::Internal))
                    .col(time(TicketMessages::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_ticket_messages_ticket",
                        (TicketMessages::Table, TicketMessages::TicketId),
                        (SupportTickets::Table, SupportTickets::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_ticket_messages_user",
                        (TicketMessages::Table, TicketMessages::AuthorUserId),
                        (Users::Table, Users::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_ticket_messages_staff",
                        (TicketMessages::Table, TicketMessages::AuthorStaffId),
                        (StaffMembers::Table, StaffMembers::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_ticket_messages_ticket",
                TicketMessages::Table,
                &[TicketMessages::TicketId, TicketMessages::Id],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(id(AuditEvents::Id))
                    .col(time(AuditEvents::OccurredAt))
                    .col(text(AuditEvents::ActorSubject))
                    .col(text(AuditEvents::ActorRoles))
                    .col(text_null(AuditEvents::ClientAddr))
                    .col(text_null(AuditEvents::RequestId))
                    .col(text(AuditEvents::OperationType))
                    .col(text_null(AuditEvents::OperationName))
                    .col(text(AuditEvents::DocumentHash))
                    .col(ColumnDef::new(AuditEvents::Variables).text().not_null())
                    .col(
                        ColumnDef::new(AuditEvents::SensitiveFields)
                            .text()
                            .not_null(),
                    )
                    .col(text(AuditEvents::Outcome))
                    .col(int(AuditEvents::DurationMs))
                    .col(ColumnDef::new(AuditEvents::Details).text().null())
                    .col(text(AuditEvents::PrevHash))
                    .col(text(AuditEvents::Hash))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_audit_events_occurred",
                AuditEvents::Table,
                &[AuditEvents::OccurredAt, AuditEvents::Id],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_audit_events_actor",
                AuditEvents::Table,
                &[AuditEvents::ActorSubject, AuditEvents::Id],
                false,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvents::Table.into_iden(),
            TicketMessages::Table.into_iden(),
            SupportTickets::Table.into_iden(),
            StaffMembers::Table.into_iden(),
            InvoiceLines::Table.into_iden(),
            Invoices::Table.into_iden(),
            Users::Table.into_iden(),
            Subscriptions::Table.into_iden(),
            Organizations::Table.into_iden(),
            Plans::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Plans {
    Table,
    Id,
    Code,
    Name,
    PriceCents,
    Currency,
    UnitCostCents,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    Id,
    Name,
    Slug,
    Status,
    Region,
    MonthlyCostCents,
    GrossMarginBps,
    FraudReview,
    Vip,
    ChurnRisk,
    BetaAccess,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Subscriptions {
    Table,
    Id,
    OrganizationId,
    PlanId,
    Seats,
    Status,
    CurrentPeriodStart,
    CurrentPeriodEnd,
    DiscountPercent,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    OrganizationId,
    Email,
    Name,
    OrgRole,
    Status,
    LastSeenAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Invoices {
    Table,
    Id,
    OrganizationId,
    Number,
    AmountCents,
    Currency,
    Status,
    IssuedAt,
    DueAt,
    PaidAt,
    ProcessingFeeCents,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum InvoiceLines {
    Table,
    Id,
    InvoiceId,
    Description,
    Quantity,
    UnitAmountCents,
    AmountCents,
}

#[derive(DeriveIden, Clone, Copy)]
enum StaffMembers {
    Table,
    Id,
    Subject,
    Email,
    Name,
    Roles,
    LastSeenAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SupportTickets {
    Table,
    Id,
    OrganizationId,
    RequesterId,
    AssigneeId,
    Subject,
    Status,
    Priority,
    InternalNotes,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TicketMessages {
    Table,
    Id,
    TicketId,
    AuthorUserId,
    AuthorStaffId,
    Body,
    Internal,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Id,
    OccurredAt,
    ActorSubject,
    ActorRoles,
    ClientAddr,
    RequestId,
    OperationType,
    OperationName,
    DocumentHash,
    Variables,
    SensitiveFields,
    Outcome,
    DurationMs,
    Details,
    PrevHash,
    Hash,
}
