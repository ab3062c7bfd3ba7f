//! An organization's current plan.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, backplane_macros::Catalog)]
#[catalog(entity = "Subscription")]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key)]
    #[catalog(Public, "Opaque, stable id.")]
    pub id: i64,
    #[catalog(skip)]
    pub organization_id: i64,
    #[catalog(skip)]
    pub plan_id: i64,
    #[catalog(Public, "Seats paid for.")]
    pub seats: i64,
    #[catalog(Public, "Where the subscription is in its billing cycle.")]
    pub status: SubscriptionStatus,
    #[catalog(Public, "Start of the current billing period.")]
    pub current_period_start: DateTimeUtc,
    #[catalog(Public, "End of the current billing period.")]
    pub current_period_end: DateTimeUtc,
    #[catalog(Public, "Discount on the list price, in percent (0 to 100).")]
    pub discount_percent: i64,
    #[catalog(Public, "When the subscription started.")]
    pub created_at: DateTimeUtc,
    #[catalog(
        Public,
        "Raised by every change, bulk ones included; pass it back as `expectedVersion` to change the record only if nobody changed it since you read it."
    )]
    pub version: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum SubscriptionStatus {
    #[sea_orm(string_value = "TRIALING")]
    Trialing,
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "PAST_DUE")]
    PastDue,
    #[sea_orm(string_value = "CANCELED")]
    Canceled,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
