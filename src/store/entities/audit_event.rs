//! One entry of the audit log.

use sea_orm::entity::prelude::*;

/// Serialized as `backplane audit export` writes an event (and reads it
/// back in `verify --from-file`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub occurred_at: DateTimeUtc,
    pub actor_subject: String,
    pub actor_roles: String,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    pub operation_type: String,
    pub operation_name: Option<String>,
    pub document_hash: String,
    pub variables: String,
    pub sensitive_fields: String,
    pub outcome: String,
    pub duration_ms: i64,
    pub details: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
