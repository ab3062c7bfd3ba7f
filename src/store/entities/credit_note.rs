//! Money given back on a paid invoice.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, backplane_macros::Catalog)]
#[catalog(entity = "CreditNote")]
#[sea_orm(table_name = "credit_notes")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[catalog(Public, "Opaque, stable id.")]
    pub id: i64,
    #[catalog(skip)]
    pub invoice_id: i64,
    #[catalog(
        Public,
        "What is given back, in minor units of the invoice's currency."
    )]
    pub amount_cents: i64,
    #[catalog(Public, "Why, as the issuer said.")]
    pub reason: String,
    #[catalog(Public, "When it was issued.")]
    pub issued_at: DateTimeUtc,
    /// The subject of whoever issued it.
    #[catalog(Public, "Who issued it: the identity provider's subject.")]
    pub issued_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
