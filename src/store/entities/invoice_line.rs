//! One line of an invoice.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, backplane_macros::Catalog)]
#[catalog(entity = "InvoiceLine")]
#[sea_orm(table_name = "invoice_lines")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[catalog(Public, "Opaque, stable id.")]
    pub id: i64,
    #[catalog(skip)]
    pub invoice_id: i64,
    #[catalog(Public, "What the line is for, as the customer reads it.")]
    pub description: String,
    #[catalog(Public, "How many units.")]
    pub quantity: i64,
    #[catalog(Public, "Price of one unit, in minor units (negative for a discount).")]
    pub unit_amount_cents: i64,
    #[catalog(Public, "`quantity × unitAmountCents`.")]
    pub amount_cents: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
