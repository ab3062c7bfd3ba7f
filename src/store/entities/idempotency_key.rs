//! A stored result of an idempotent mutation.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The subject that used the key: keys are per principal.
    pub principal: String,
    pub key: String,
    /// The mutation the key was used with.
    pub operation: String,
    /// SHA-256 of the input (without the key).
    pub request_hash: String,
    /// The first result, as JSON.
    pub result: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
