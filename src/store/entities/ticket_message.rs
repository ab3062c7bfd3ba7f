//! One message on a support ticket, from the customer or from staff.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, backplane_macros::Catalog)]
#[catalog(entity = "TicketMessage")]
#[sea_orm(table_name = "ticket_messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[catalog(Public, "Opaque, stable id.")]
    pub id: i64,
    #[catalog(skip)]
    pub ticket_id: i64,
    #[catalog(skip)]
    pub author_user_id: Option<i64>,
    #[catalog(skip)]
    pub author_staff_id: Option<i64>,
    /// A customer's words, or staff's; an internal note's when `internal`.
    #[catalog(
        PersonalData,
        "The message's text: a customer's words or staff's (a note between staff when `internal`). Every read is audited."
    )]
    pub body: String,
    /// An internal note between staff, never shown to the customer.
    #[catalog(
        Public,
        "Whether this is a note between staff, never shown to the customer."
    )]
    pub internal: bool,
    #[catalog(Public, "When it was written.")]
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
