//! A customer account.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, backplane_macros::Catalog)]
#[catalog(entity = "Organization")]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[catalog(Public, "Opaque, stable id.")]
    pub id: i64,
    #[catalog(Public, "Display name.")]
    pub name: String,
    #[catalog(Public, "Unique, URL-safe short name.")]
    pub slug: String,
    #[catalog(Public, "Where the account is in its lifecycle.")]
    pub status: OrganizationStatus,
    #[catalog(Public, "Where the account's data lives (e.g. `eu-west-1`).")]
    pub region: String,
    #[catalog(
        CostData,
        nullable,
        "Cost data: what this account costs to serve per month, in minor units of USD. Only callers who may read cost data (`read:cost_data`) have this field: for others it does not exist."
    )]
    pub monthly_cost_cents: i64,
    /// Gross margin in basis points (1/100 of a percent); negative when it loses money.
    #[catalog(
        CostData,
        nullable,
        "Cost data: gross margin in basis points (10000 = 100 %); negative when the account loses money."
    )]
    pub gross_margin_bps: i64,
    #[catalog(Public, on = "InternalFlags", "Under review by the fraud team.")]
    pub fraud_review: bool,
    #[catalog(
        Public,
        on = "InternalFlags",
        "A very important customer: escalate everything."
    )]
    pub vip: bool,
    #[catalog(
        Public,
        on = "InternalFlags",
        "Likely to leave, by the customer-success model or by hand."
    )]
    pub churn_risk: bool,
    #[catalog(Public, on = "InternalFlags", "Has access to beta features.")]
    pub beta_access: bool,
    #[catalog(Public, "When the account was created.")]
    pub created_at: DateTimeUtc,
    #[catalog(Public, "When the account last changed.")]
    pub updated_at: DateTimeUtc,
    #[catalog(Public, "When the trial ends; null unless the account is a `TRIAL`.")]
    pub trial_ends_at: Option<DateTimeUtc>,
    #[catalog(
        Public,
        "Days the trial was extended by since it began, in all (at most 90)."
    )]
    pub trial_extension_days: i64,
    #[catalog(
        Public,
        "Raised by every change, bulk ones included; pass it back as `expectedVersion` to change the record only if nobody changed it since you read it."
    )]
    pub version: i64,
}

/// Lifecycle of a customer account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, serde::Serialize)]
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
