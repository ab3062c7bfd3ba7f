//! An employee known from the identity provider.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, backplane_macros::Catalog)]
#[catalog(entity = "StaffMember")]
#[sea_orm(table_name = "staff_members")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[catalog(Public, "Opaque, stable id.")]
    pub id: i64,
    /// The identity provider's `sub`.
    #[catalog(Public, "The identity provider's subject (`sub`).")]
    pub subject: String,
    #[catalog(Public, "The employee's email at the company.")]
    pub email: String,
    #[catalog(Public, "The employee's full name.")]
    pub name: String,
    /// Roles last seen in a token, comma-separated.
    #[catalog(Public, list, "Roles as last seen in a token.")]
    pub roles: String,
    #[catalog(Public, "Last request; null when never seen.")]
    pub last_seen_at: Option<DateTimeUtc>,
    #[catalog(skip)]
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
