//! The audit log's index of changes: which event touched which record's
//! which field. The values are in the event itself (hash-chained); this can
//! be rebuilt from the events and is what a record's history is found by.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_changes")]
pub struct Model {
    /// The catalog entity (`Organization`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub entity: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: i64,
    /// The field's path in the catalog (`status`, `internalFlags.vip`,
    /// `subscription.seats`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub field: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
