//! A price plan.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, backplane_macros::Catalog)]
#[catalog(entity = "Plan")]
#[sea_orm(table_name = "plans")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[catalog(Public, "Opaque, stable id.")]
    pub id: i64,
    #[catalog(Public, "Short code, unique (e.g. `team`).")]
    pub code: String,
    #[catalog(Public, "Display name.")]
    pub name: String,
    #[catalog(Public, "List price per seat and month, in minor units of `currency`.")]
    pub price_cents: i64,
    #[catalog(Public, "ISO 4217 code of the prices.")]
    pub currency: String,
    #[catalog(
        CostData,
        nullable,
        "Cost data: what one seat costs us per month, in minor units. Only callers who may read cost data (`read:cost_data`) have this field: for others it does not exist."
    )]
    pub unit_cost_cents: i64,
    #[catalog(skip)]
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
