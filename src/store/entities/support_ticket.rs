//! A customer's support request.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, backplane_macros::Catalog)]
#[catalog(entity = "SupportTicket")]
#[sea_orm(table_name = "support_tickets")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[catalog(Public, "Opaque, stable id.")]
    pub id: i64,
    #[catalog(skip)]
    pub organization_id: i64,
    #[catalog(skip)]
    pub requester_id: i64,
    #[catalog(skip)]
    pub assignee_id: Option<i64>,
    #[catalog(Public, "What the ticket is about, in the customer's words.")]
    pub subject: String,
    #[catalog(Public, "Where the ticket is in its life.")]
    pub status: TicketStatus,
    #[catalog(Public, "How urgent the ticket is.")]
    pub priority: TicketPriority,
    #[catalog(
        InternalNote,
        "Notes between staff, never shown to the customer; null when there are none."
    )]
    pub internal_notes: Option<String>,
    #[catalog(Public, "When the ticket was opened.")]
    pub created_at: DateTimeUtc,
    #[catalog(Public, "When the ticket last changed.")]
    pub updated_at: DateTimeUtc,
    #[catalog(
        Public,
        "Raised by every change, bulk ones included; pass it back as `expectedVersion` to change the record only if nobody changed it since you read it."
    )]
    pub version: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum TicketStatus {
    #[sea_orm(string_value = "OPEN")]
    Open,
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "SOLVED")]
    Solved,
    #[sea_orm(string_value = "CLOSED")]
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum TicketPriority {
    #[sea_orm(string_value = "LOW")]
    Low,
    #[sea_orm(string_value = "NORMAL")]
    Normal,
    #[sea_orm(string_value = "HIGH")]
    High,
    #[sea_orm(string_value = "URGENT")]
    Urgent,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
