//! A customer account.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub status: OrganizationStatus,
    pub region: String,
    pub monthly_cost_cents: i64,
    /// Gross margin in basis points (1/100 of a percent); negative when it loses money.
    pub gross_margin_bps: i64,
    pub fraud_review: bool,
    pub vip: bool,
    pub churn_risk: bool,
    pub beta_access: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Lifecycle of a customer account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum OrganizationStatus {
    #[sea_orm(string_value = "TRIAL")]
    Trial,
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "SUSPENDED")]
    Suspended,
    #[sea_orm(string_value = "CHURNED")]
    Churned,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
